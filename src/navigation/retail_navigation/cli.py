"""`retailbot base sim|jog|info|reset|simctl`: run the simulated base, test a base from a laptop,
clear a safety stop of the running robot.

jog and info talk to the port directly (no ROS): a technician can check a base with nothing else
running; reset calls the running driver's /navigation/reset_safety. Exit codes: 0 done,
1 the port could not be opened, the base did not answer or was lost during the jog, the stop was
not cleared, 2 bad arguments or map, 3 the jog ended in a safety stop.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

BASE_HELP = 'drive and inspect the mobile base (Kobuki protocol), or simulate one'
FAILED, BAD_INPUT, SAFETY_STOP = 1, 2, 3


def register(subparsers) -> None:
    base = subparsers.add_parser('base', help=BASE_HELP, description=BASE_HELP)
    commands = base.add_subparsers(dest='base_command', metavar='SUBCOMMAND', required=True)

    sim = commands.add_parser('sim', help='simulate the base on a pseudo-terminal linked at PATH',
                              description='Simulate the base firmware on a pseudo-terminal whose device is '
                                          'symlinked at PATH; streams feedback at 50 Hz until Ctrl-C. Events '
                                          'are injected with `retailbot base simctl`.')
    add_sim_arguments(sim)
    sim.set_defaults(func=run_sim)

    jog = commands.add_parser('jog', help='drive the base for a few seconds and print the odometry',
                              description='Send base-control commands at >= 10 Hz for SECONDS, then stop; '
                                          'prints the final odometry and frame counters.',
                              epilog='Exit codes: 0 done, 1 the base could not be opened, did not answer or '
                                     'was lost during the jog, 2 bad arguments, 3 the jog ended in a safety '
                                     'stop, 130/143 stopped by Ctrl-C/SIGTERM (the base is stopped first).')
    jog.add_argument('--port', required=True, help='serial device, e.g. /dev/ttyUSB0')
    jog.add_argument('--vx', type=float, default=0.0, help='forward speed [m/s]')
    jog.add_argument('--wz', type=float, default=0.0, help='turn rate [rad/s], positive = left')
    jog.add_argument('--seconds', type=float, required=True, metavar='S', help='how long to drive [s] (0..600)')
    jog.add_argument('--rate', type=float, default=20.0, help='command rate [Hz] (10..100, default 20)')
    jog.add_argument('--json', action='store_true',
                     help='last line: {"odom": {"x", "y", "theta"}, "frames_ok", "frames_bad", "disconnects", '
                          '"safety_stop", "error"}')
    jog.set_defaults(func=run_jog)

    info = commands.add_parser('info', help='print versions, unique id, battery and sensor states',
                               description='Ask the base for its hardware/firmware versions and unique id '
                                           'and print them with the battery and sensor states.')
    info.add_argument('--port', required=True, help='serial device, e.g. /dev/ttyUSB0')
    info.add_argument('--timeout', type=float, default=3.0, metavar='S',
                      help='seconds to wait for the answers (default 3)')
    info.add_argument('--json', action='store_true', help='print one JSON object')
    info.set_defaults(func=run_info)

    reset = commands.add_parser('reset', help='clear a safety stop (bumper, cliff, wheel drop) of the running robot',
                                description='Ask the running base driver to clear its latched safety stop '
                                            '(the /navigation/reset_safety service). The stop clears only when '
                                            'every sensor is clear: free the bumper, put the wheels back on the '
                                            'floor, move the robot away from a step first. Exit 0 cleared (or '
                                            'nothing to clear), 1 refused or no driver answering.')
    reset.add_argument('--service', default='/navigation/reset_safety',
                       help='the std_srvs/Trigger service of the base driver (default /navigation/reset_safety)')
    reset.add_argument('--timeout', type=float, default=10.0, metavar='S',
                       help='seconds to wait for the driver (default 10)')
    reset.add_argument('--json', action='store_true',
                       help='print {"cleared": bool, "was_latched": bool, "message": text}')
    reset.set_defaults(func=run_reset)

    ctl = commands.add_parser('simctl', help='inject an event into a running simulator',
                              description='Send one JSON request to `retailbot base sim --link PATH` '
                                          '(e.g. \'{"cmd": "bumper", "bits": 2}\', {"cmd": "unplug"}, '
                                          '{"cmd": "state"}); prints the JSON reply.')
    ctl.add_argument('--link', required=True, help='the PATH the simulator was started with')
    ctl.add_argument('request', help='JSON object, see retail_navigation.pty_sim')
    ctl.set_defaults(func=run_simctl)


# --- sim ---------------------------------------------------------------------------------------

def _triple(text: str) -> tuple[float, float, float]:
    parts = text.split(',')
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f'expected X,Y[,THETA], got {text!r}')
    try:
        values = [float(v) for v in parts] + [0.0] * (3 - len(parts))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers X,Y[,THETA], got {text!r}') from None
    return values[0], values[1], values[2]


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ('true', '1', 'yes', 'on'):
        return True
    if value in ('false', '0', 'no', 'off'):
        return False
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--link', required=True, metavar='PATH', help='where to symlink the pseudo-terminal (e.g. /tmp/robot/base)')
    parser.add_argument('--map', help='store map YAML (map_server format): shelves bump, unknown cells are cliffs')
    parser.add_argument('--pose', type=_triple, metavar='X,Y,THETA', help='start pose X,Y,THETA in the map frame '
                                                     '(default: the dock from zones.yaml beside the map, else 0,0,0)')
    parser.add_argument('--dock', type=_triple, metavar='X,Y,THETA', help='dock pose X,Y,THETA (default: zone `dock` of zones.yaml)')
    parser.add_argument('--battery', type=float, default=16.2, metavar='VOLTS', help='battery voltage at start [V]')
    parser.add_argument('--noise', type=float, default=0.0, metavar='SHARE', help='share of feedback frames damaged by line noise')
    parser.add_argument('--drop', type=float, default=0.0, metavar='SHARE', help='share of feedback frames lost')
    parser.add_argument('--seed', type=int, help='random seed of the fault injection, drift and shoppers')
    parser.add_argument('--drift', nargs='?', const=True, default=False, type=_bool, metavar='true|false',
                        help='wheel slip, encoder scale error and gyro bias drift like a real shop floor '
                             '(--drift alone: on)')
    parser.add_argument('--people', type=int, default=0, metavar='N',
                        help='N shoppers walking between the zones (needs --map and zones.yaml beside it)')
    parser.add_argument('--objects', default='', metavar='X0,Y0,X1,Y1[;...]',
                        help='boxes not on the map (a trolley left in an aisle), map frame, metres')


def _dock_from_zones(map_path: Path) -> tuple[float, float, float] | None:
    import yaml
    zones_path = map_path.with_name('zones.yaml')
    if not zones_path.exists():
        return None
    try:
        pose = (yaml.safe_load(zones_path.read_text(encoding='utf-8')) or {}).get('zones', {})['dock']['pose']
        return float(pose[0]), float(pose[1]), float(pose[2])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, yaml.YAMLError):
        return None


def _zone_places(map_path: Path) -> list[tuple[float, float]]:
    import yaml
    zones_path = map_path.with_name('zones.yaml')
    try:
        zones = (yaml.safe_load(zones_path.read_text(encoding='utf-8')) or {}).get('zones', {})
        return [(float(z['pose'][0]), float(z['pose'][1])) for name, z in zones.items() if name != 'dock']
    except (OSError, KeyError, TypeError, ValueError, IndexError, AttributeError, yaml.YAMLError):
        return []


def build_simulator(args: argparse.Namespace):
    """The PtySimulator the arguments describe; ValueError with a one-line reason on bad input."""
    from retail_navigation.base_sim import Drift, LineFaults, SimConfig, SimulatedBase
    from retail_navigation.pty_sim import PtySimulator
    people, objects = getattr(args, 'people', 0), getattr(args, 'objects', '')
    if people < 0 or people > 200:
        raise ValueError(f'--people must be between 0 and 200, got {people}')
    floor, dock = _sim_floor(args, people, objects)
    pose = args.pose or (dock if dock is not None else (0.0, 0.0, 0.0))
    if floor is not None and not floor.is_free_world(pose[0], pose[1]):
        raise ValueError(f'start pose {pose[0]:.2f},{pose[1]:.2f} is not on free floor of {args.map}')
    _check_line(args)
    world = None
    if floor is not None and (people or objects):
        world = _sim_world(args, floor, pose, people, objects)
        floor = world.world_map
    drift = Drift.shop_floor(args.seed) if getattr(args, 'drift', False) else None
    base = SimulatedBase(floor, pose, SimConfig(dock_pose=dock, battery_v=args.battery, drift=drift), world=world)
    return PtySimulator(base, Path(args.link), faults=LineFaults(args.noise, args.drop, args.seed))


def _sim_floor(args: argparse.Namespace, people: int, objects: str):
    """(the map or None, the dock pose: --dock, else the store's dock zone)."""
    dock = args.dock
    if not args.map:
        if people or objects:
            raise ValueError('--people and --objects need --map')
        return None, dock
    from retail_navigation.maps import MapError, load_map
    map_path = Path(args.map)
    try:
        floor = load_map(map_path)
    except MapError as exc:
        raise ValueError(f'cannot load map: {exc}') from None
    return floor, dock or _dock_from_zones(map_path)


def _check_line(args: argparse.Namespace) -> None:
    """The serial line's fault rates and the folder of its link."""
    for name, rate in (('--noise', args.noise), ('--drop', args.drop)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f'{name} must be between 0 and 1, got {rate}')
    link = Path(args.link)
    if not link.parent.is_dir():
        raise ValueError(f'folder of --link does not exist: {link.parent}')


def _sim_world(args: argparse.Namespace, floor, pose, people: int, objects: str):
    """Simulated people walking between the store's zones and objects on the floor."""
    from retail_navigation.sim_world import SimWorld, parse_rects
    places = _zone_places(Path(args.map))
    if people and not places:
        raise ValueError(f'--people needs zones in {Path(args.map).with_name("zones.yaml")}')
    return SimWorld(floor, places or [pose[:2]], people=people, objects=parse_rects(objects),
                    seed=args.seed, avoid=[pose[:2]])


def run_sim(args: argparse.Namespace) -> int:
    try:
        simulator = build_simulator(args)
    except ValueError as exc:
        print(f'retailbot base sim: {exc}', file=sys.stderr)
        return BAD_INPUT
    from retail_navigation.pty_sim import LinkBusy
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        simulator.start()
    except LinkBusy as exc:
        print(f'retailbot base sim: {exc}', file=sys.stderr)
        return FAILED
    with simulator:
        x, y, theta = simulator.base.state.x, simulator.base.state.y, simulator.base.state.theta
        print(f'base simulator on {simulator.link} at ({x:.2f}, {y:.2f}, {math.degrees(theta):.0f} deg); '
              f'control socket {simulator.control_path}', flush=True)
        stop.wait()
    print('base simulator stopped', flush=True)
    return 0


def run_simctl(args: argparse.Namespace) -> int:
    from retail_navigation.pty_sim import send_control
    try:
        request = json.loads(args.request)
        if not isinstance(request, dict):
            raise ValueError('expected a JSON object')
    except ValueError as exc:
        print(f'retailbot base simctl: bad request: {exc}', file=sys.stderr)
        return BAD_INPUT
    try:
        reply = send_control(args.link, request)
    except OSError as exc:
        import glob
        running = sorted(p[:-4] for p in glob.glob('/tmp/retailbot-base-sim*.ctl') if p[:-4] != args.link)
        hint = f' (simulators running here: {", ".join(running)}; a launch links its simulator at ' \
               f'/tmp/retailbot-base-sim-<ROS_DOMAIN_ID>)' if running else ''
        print(f'retailbot base simctl: no simulator at {args.link}: {exc}{hint}', file=sys.stderr)
        return FAILED
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get('ok') else FAILED


# --- jog and info ------------------------------------------------------------------------------

def _open_base(port: str, timeout: float):
    from retail_navigation.base_driver import DriverCore
    from retail_navigation.serial_base import SerialBase
    link = SerialBase(port, DriverCore()).start()
    if not link.wait_connected(timeout):
        error = link.stats.last_error or f'no answer on {port}'
        link.close()
        raise ConnectionError(error)
    return link


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def run_jog(args: argparse.Namespace) -> int:
    if not 10.0 <= args.rate <= 100.0:
        print('retailbot base jog: --rate must be between 10 and 100 Hz', file=sys.stderr)
        return BAD_INPUT
    if not (math.isfinite(args.vx) and math.isfinite(args.wz)) or not 0.0 <= args.seconds <= 600.0:
        print('retailbot base jog: --vx/--wz must be numbers and --seconds between 0 and 600', file=sys.stderr)
        return BAD_INPUT
    try:
        link = _open_base(args.port, 3.0)
    except ConnectionError as exc:
        print(f'retailbot base jog: {exc}', file=sys.stderr)
        return FAILED
    core = link.core
    limits = core.limits
    if not -limits.max_reverse_vx <= args.vx <= limits.max_vx or abs(args.wz) > limits.max_wz:
        print(f'retailbot base jog: limited to vx {-limits.max_reverse_vx}..{limits.max_vx} m/s, '
              f'|wz| <= {limits.max_wz} rad/s', file=sys.stderr)
    safety_stop = link_lost = ''
    try:
        if not _wait_for(lambda: core.basic is not None, 2.0):
            print(f'retailbot base jog: no feedback from the base on {args.port}', file=sys.stderr)
            return FAILED
        disconnects = link.stats.disconnects
        link.commanding = True
        period = 1.0 / args.rate
        with _jog_progress(args) as progress:
            start = time.monotonic()
            next_send = start
            while (elapsed := time.monotonic() - start) < args.seconds:
                link.set_velocity(args.vx, args.wz)
                if core.safety.latched:
                    safety_stop = core.safety.reason
                    break
                link_lost = _link_trouble(link, disconnects)
                if link_lost:
                    break
                progress(elapsed, core.pose)
                next_send += period
                time.sleep(max(0.0, next_send - time.monotonic()))
        pose = core.pose           # odometry up to the loss: the driver starts afresh on reconnect
        link.stop_motion()
        if not link_lost:
            # Let the base come to rest so the odometry includes the braking distance.
            _wait_for(lambda: abs(core.pose.vx) < 1e-3 and abs(core.pose.wz) < 1e-3, 2.0)
            time.sleep(0.1)
            link_lost = _link_trouble(link, disconnects)
            pose = core.pose if not link_lost else pose
        frames_ok, frames_bad = link.decoder.frames_ok, link.decoder.frames_bad
        lost_count = link.stats.disconnects - disconnects
    finally:
        link.close()
    if link_lost:
        print(f'retailbot base jog: {link_lost}; the base may have moved further than the odometry '
              'below shows', file=sys.stderr)
    if safety_stop:
        print(f'safety stop during the jog: {safety_stop}', file=sys.stderr)
    if args.json:
        print(json.dumps({'odom': {'x': round(pose.x, 4), 'y': round(pose.y, 4), 'theta': round(pose.theta, 4)},
                          'frames_ok': frames_ok, 'frames_bad': frames_bad, 'disconnects': lost_count,
                          'safety_stop': safety_stop, 'error': link_lost}, ensure_ascii=False))
    else:
        print(f'odometry: x {pose.x:+.3f} m, y {pose.y:+.3f} m, heading {math.degrees(pose.theta):+.1f} deg; '
              f'frames ok {frames_ok}, bad {frames_bad}, disconnects {lost_count}')
    if link_lost:
        return FAILED
    return SAFETY_STOP if safety_stop else 0


def _link_trouble(link, disconnects_before: int) -> str:
    """'' while the link is healthy, else one line on how the jog lost the base."""
    from retail_navigation.serial_base import LinkState
    if link.stats.disconnects > disconnects_before or link.state == LinkState.DISCONNECTED:
        return f'lost the base on {link.port} during the jog (cable pulled or base switched off?): ' \
               f'{link.stats.last_error or "port closed"}'
    if link.state == LinkState.SILENT:
        return f'the base on {link.port} stopped answering during the jog'
    return ''


@contextmanager
def _jog_progress(args: argparse.Namespace):
    """A progress bar on a terminal (stderr), nothing when piped or with --json."""
    if args.json or not sys.stderr.isatty():
        yield lambda elapsed, pose: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn
    with Progress(TextColumn('jogging'), BarColumn(), TextColumn('{task.description}'),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task('', total=args.seconds)

        def update(elapsed: float, pose) -> None:
            progress.update(task, completed=elapsed,
                            description=f'x {pose.x:+.2f} m  y {pose.y:+.2f} m  {math.degrees(pose.theta):+.0f} deg')
        yield update


CHARGER_STATES = {0: 'discharging', 2: 'docked, charged', 6: 'docked, charging',
                  18: 'adapter, charged', 22: 'adapter, charging'}


def run_info(args: argparse.Namespace) -> int:
    from retail_navigation.base_driver import SafetyState
    if not 0.0 < args.timeout <= 60.0:
        print('retailbot base info: --timeout must be between 0 and 60 s', file=sys.stderr)
        return BAD_INPUT
    try:
        link = _open_base(args.port, args.timeout)
    except ConnectionError as exc:
        print(f'retailbot base info: {exc}', file=sys.stderr)
        return FAILED
    core = link.core
    try:
        complete = _wait_for(lambda: core.basic is not None and core.info.hardware_version
                             and core.info.firmware_version and core.info.unique_id, args.timeout)
        frames_ok, frames_bad = link.decoder.frames_ok, link.decoder.frames_bad
    finally:
        link.close()
    if core.basic is None:
        print(f'retailbot base info: no feedback from the base on {args.port}', file=sys.stderr)
        return FAILED
    b = core.basic
    sensors = SafetyState(b.bumper, b.cliff, b.wheel_drop)
    report = {
        'port': args.port, 'hardware_version': core.info.hardware_version,
        'firmware_version': core.info.firmware_version, 'unique_id': core.info.unique_id,
        'battery_v': b.battery_v, 'charger': CHARGER_STATES.get(b.charger, f'unknown ({b.charger})'),
        'bumper': b.bumper, 'cliff': b.cliff, 'wheel_drop': b.wheel_drop, 'buttons': b.buttons,
        'over_current': b.over_current, 'sensors': sensors.describe_sensors() or 'all clear',
        'encoders': [b.left_encoder, b.right_encoder],
        'heading_deg': round(math.degrees(core.inertial.angle_rad), 2) if core.inertial else None,
        'cliff_adc': [core.cliff_adc.right, core.cliff_adc.centre, core.cliff_adc.left] if core.cliff_adc else None,
        'docking_ir': [core.docking_ir.right, core.docking_ir.centre, core.docking_ir.left] if core.docking_ir else None,
        'current_ma': [10 * core.current.left_10ma, 10 * core.current.right_10ma] if core.current else None,
        'frames_ok': frames_ok, 'frames_bad': frames_bad,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f'{key.replace("_", " "):<{width}}  {value if value not in ("", None) else "-"}')
    if not complete:
        print('retailbot base info: the base did not answer every request (versions / unique id)', file=sys.stderr)
        return FAILED
    return 0


# --- reset -------------------------------------------------------------------------------------

def run_reset(args: argparse.Namespace) -> int:
    """Call the driver's reset_safety (std_srvs/Trigger) and say whether the stop cleared and why not."""
    import os
    if not 0.0 < args.timeout <= 600.0:
        print('retailbot base reset: --timeout must be between 0 and 600 s', file=sys.stderr)
        return BAD_INPUT
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from retail_ros.qos import LATCHED
    from std_srvs.srv import Trigger

    from retail_ros.node_support import use_robot_dds_profile
    from retail_interfaces.msg import BaseSafety
    use_robot_dds_profile()
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    try:
        node = rclpy.create_node('retailbot_base_reset', context=context, start_parameter_services=False)
        safety: list[BaseSafety] = []
        namespace = args.service.rsplit('/', 1)[0]
        node.create_subscription(BaseSafety, f'{namespace}/safety', safety.append, LATCHED)
        client = node.create_client(Trigger, args.service)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + args.timeout
        while not client.service_is_ready() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        if not client.service_is_ready():
            print(f'retailbot base reset: no base driver answers on {args.service} within {args.timeout:g} s '
                  '(is the robot launched, with the same ROS_DOMAIN_ID?)', file=sys.stderr)
            return FAILED
        # The latched safety state says whether there is a stop to clear (it arrives right after matching).
        settle = min(deadline, time.monotonic() + 1.0)
        while not safety and time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.05)
        was_latched = bool(safety[-1].latched) if safety else None
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=max(0.1, deadline - time.monotonic()))
        if not future.done() or future.result() is None:
            print(f'retailbot base reset: the base driver did not answer on {args.service} within '
                  f'{args.timeout:g} s', file=sys.stderr)
            return FAILED
        response = future.result()
        executor.shutdown(timeout_sec=0.5)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    message = response.message
    if args.json:
        from retail_common.cli_output import print_json
        print_json({'cleared': bool(response.success), 'was_latched': was_latched if response.success
                    else True, 'message': message})
    elif not response.success:
        reason = message.removeprefix('cannot reset: ')
        steps = [step for word, step in (('bumper', 'free the bumper'),
                                         ('cliff', 'move the robot away from the step or edge'),
                                         ('wheel drop', 'put both wheels back on the floor')) if word in reason]
        print(f'safety stop NOT cleared: {reason} ({", ".join(steps) or "clear the sensor"}, '
              'then run this again)')
    elif message == 'not latched':
        print('no safety stop to clear: the base can drive')
    else:
        print('safety stop cleared: the base drives again on the next command')
    return 0 if response.success else FAILED
