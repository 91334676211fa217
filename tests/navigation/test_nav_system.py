"""Navigation in simulation, every part real: base simulator with shop-floor drift on a pty, lidar,
shoppers, the base driver on pyserial, localisation, collision monitor and guide over DDS.

- the TF tree has odom -> base_link (/tf, driver), base_link -> laser (/tf_static, driver) and
  map -> odom (/tf, localisation);
- guiding to a far zone ends within tolerance of the ground truth, where the pure odometry of the
  same drive is off by more;
- a shopper crossing the robot's way makes it slow down or stop, and it never touches anyone;
- a lidar driver's faults stop the robot before the wall: a frozen driver republishing its last
  scan with the old stamp, stamps 3 s late, in the future or zero; a box at the bumper closer
  than the lidar's range_min (-inf per REP-117, or NaN from drivers that send it).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_guide_node  # noqa: E402
from guide_support import Client, guiding_on_localisation, result_of  # noqa: E402

from retail_interfaces.action import GuideTo  # noqa: E402
from retail_navigation.base_driver_node import BaseDriverNode  # noqa: E402
from retail_common.store import load_store  # noqa: E402
from retail_navigation.base_sim import Drift, SimConfig, SimulatedBase  # noqa: E402
from retail_navigation.collision_monitor_node import CollisionMonitorNode  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from retail_navigation.lidar import LidarConfig, ScanStamper, SimLidar, StampFault  # noqa: E402
from retail_navigation.localization import compose  # noqa: E402
from retail_navigation.localization_node import LocalizationNode  # noqa: E402
from retail_navigation.maps import load_map  # noqa: E402
from retail_navigation.pty_sim import PtySimulator  # noqa: E402
from retail_navigation.sim_node import SimNode  # noqa: E402
from retail_navigation.sim_world import SimWorld  # noqa: E402
from retail_ros.tf_support import TF_QOS, TF_STATIC_QOS, TFMessage  # noqa: E402
from rostest_support import wait_for  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
from retail_ros.qos import LATCHED  # noqa: E402
LASER = [0.10, 0.0, 0.20, 0.0]
pytestmark = [pytest.mark.timeout(150), pytest.mark.slow]
store = test_guide_node.store          # the guide tests' small store (a fixture)


class Watcher(Node):
    """Records TF frames and the collision monitor's states."""

    def __init__(self, **kwargs) -> None:
        super().__init__('nav_watcher', **kwargs)
        self.tf: set[tuple[str, str]] = set()
        self.static: set[tuple[str, str]] = set()
        self.monitor_states: list[str] = []
        self.create_subscription(TFMessage, '/tf', lambda m: self.tf.update(
            (t.header.frame_id, t.child_frame_id) for t in m.transforms), TF_QOS)
        self.create_subscription(TFMessage, '/tf_static', lambda m: self.static.update(
            (t.header.frame_id, t.child_frame_id) for t in m.transforms), TF_STATIC_QOS)
        self.create_subscription(String, '/navigation/collision_monitor/state',
                                 lambda m: self.monitor_states.append(m.data), LATCHED)


def bring_up(ros_context, spin, tmp_path, world=None, drift_seed=4):
    store_map = load_map(DEMO / 'map.yaml')
    zones = load_store(DEMO).zones
    dock = zones['dock'].pose
    floor = world.world_map if world is not None else store_map
    base = SimulatedBase(floor, dock, SimConfig(dock_pose=dock, drift=Drift.shop_floor(drift_seed)), world=world)
    sim = PtySimulator(base, tmp_path / 'base').start()
    lidar = SimLidar(floor, LidarConfig(mount=(LASER[0], LASER[1], LASER[3])), seed=1)
    common = [Parameter('laser_pose', value=LASER)]
    nodes = [
        SimNode(sim, lidar, 10.0, context=ros_context, namespace='navigation'),
        BaseDriverNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('port', value=str(sim.link)), Parameter('max_vx', value=0.7)]),
        LocalizationNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('store_dir', value=str(DEMO)), Parameter('pose_file', value=str(tmp_path / 'pose.json'))]),
        CollisionMonitorNode(context=ros_context, namespace='navigation', parameter_overrides=common),
        GuideNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('store_dir', value=str(DEMO)), Parameter('max_vx', value=0.7)]),
    ]
    client, watcher = Client(context=ros_context), Watcher(context=ros_context)
    spin(*nodes, client, watcher)
    driver, guide = nodes[1], nodes[4]
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: guide._pose is not None, 20, 'the guide to know where it is on the map')
    return sim, driver, guide, client, watcher, zones


@pytest.fixture
def stack(ros_context, spin, tmp_path):
    started = []

    def _up(**kwargs):
        parts = bring_up(ros_context, spin, tmp_path, **kwargs)
        started.append(parts[0])
        return parts
    yield _up
    for sim in started:
        sim.stop()


@pytest.mark.timeout(300)
def test_tf_tree_and_guiding_far_with_drift_ends_on_the_truth_where_odometry_alone_would_not(stack):
    sim, driver, guide, client, watcher, zones = stack()
    wait_for(lambda: {('odom', 'base_link'), ('map', 'odom')} <= watcher.tf, 10, 'odom and map transforms on /tf')
    wait_for(lambda: ('base_link', 'laser') in watcher.static, 10, 'the laser mount on /tf_static')
    assert ('base_link', 'camera') in watcher.static
    target = zones['kitchen'].pose                            # ~27 m across the store from the dock
    result = result_of(client.send(client.guide, GuideTo.Goal(zone='kitchen')), 240)   # ~27 m; a loaded machine slows the robot (it waits for localisation)
    assert result.success and result.reason == 'arrived', result.reason
    truth = sim.state()['pose']
    assert math.hypot(truth[0] - target[0], truth[1] - target[1]) < 0.25
    believed = guide._pose
    assert math.hypot(believed[0] - truth[0], believed[1] - truth[1]) < 0.15
    odom = driver.core.pose
    dead_reckoning = compose(zones['dock'].pose, (odom.x, odom.y, odom.theta))
    odometry_error = math.hypot(dead_reckoning[0] - truth[0], dead_reckoning[1] - truth[1])
    assert odometry_error > 0.2, f'pure odometry ended only {odometry_error:.2f} m off'
    assert odometry_error > 2 * math.hypot(believed[0] - truth[0], believed[1] - truth[1])


def test_a_shopper_crossing_makes_the_robot_slow_or_stop_and_nobody_is_touched(stack):
    store_map = load_map(DEMO / 'map.yaml')
    world = SimWorld(store_map, [(12.0, 1.5)], people=1, seed=2)
    shopper = world.shoppers[0]
    # waiting beside the front aisle, then crossing it (y 1.2 -> 5.8 at x 8.0) while the robot drives along it
    shopper.x, shopper.y, shopper.state, shopper.until = 8.0, 5.8, 'browsing', 1e9
    sim, driver, guide, client, watcher, zones = stack(world=world)
    handle = client.send(client.guide, GuideTo.Goal(target_pose=_pose(14.0, 3.2)))
    wait_for(lambda: sim.state()['pose'][0] > 5.5, 40, 'the robot driving along the front aisle')
    with sim._lock:
        shopper.path, shopper.state, shopper.speed = [(8.0, 1.0)], 'walking', 0.6
    result = result_of(handle, 90)
    assert result.success, result.reason
    assert world.contacts == 0
    assert {'slowdown', 'stop'} & set(watcher.monitor_states) or any(
        f.state in ('waiting_for_obstacle', 'replanning') for f in client.feedback)


def _pose(x, y):
    from geometry_msgs.msg import PoseStamped
    goal = PoseStamped()
    goal.header.frame_id = 'map'
    goal.pose.position.x, goal.pose.position.y = x, y
    goal.pose.orientation.w = 1.0
    return goal


# --- the collision monitor on real nodes: a lidar driver's faults stop the robot before the wall --------------

class Commander(Node):
    """Sends the guide's velocity command at 10 Hz (what the guide does while driving) and records the
    collision monitor's diagnostics."""

    def __init__(self, **kwargs) -> None:
        super().__init__('commander', **kwargs)
        self.vx = 0.0
        self.sent = 0
        self.diagnostics: list = []
        self.monitor_states: list[str] = []
        self.pub = self.create_publisher(Twist, '/navigation/guide/cmd_vel', 10)
        self.create_subscription(DiagnosticArray, '/diagnostics', lambda m: self.diagnostics.extend(
            s for s in m.status if s.name == 'navigation/collision_monitor'), 10)
        self.create_subscription(String, '/navigation/collision_monitor/state',
                                 lambda m: self.monitor_states.append(m.data), LATCHED)
        self.out: list[tuple[float, float]] = []
        self.create_subscription(Twist, '/cmd_vel', lambda m: self.out.append((m.linear.x, m.angular.z)), 10)
        self.create_timer(0.1, self._tick)

    def _tick(self) -> None:
        msg = Twist()
        msg.linear.x = float(self.vx)
        self.pub.publish(msg)
        self.sent += 1


FACING_WALL = (2.2, 6.5, math.pi)      # demo store: the wall at x = 0 is 2.2 m ahead (2.0 m from the bumper)


def bring_up_base_and_monitor(ros_context, spin, tmp_path, stamper, objects=(), too_close='-inf'):
    store_map = load_map(DEMO / 'map.yaml')
    world = SimWorld(store_map, [], objects=list(objects), seed=1)
    base = SimulatedBase(world.world_map, FACING_WALL, SimConfig(), world=world)
    sim = PtySimulator(base, tmp_path / 'base').start()
    lidar = SimLidar(world.world_map, LidarConfig(mount=(LASER[0], LASER[1], LASER[3]), too_close=too_close), seed=1)
    common = [Parameter('laser_pose', value=LASER)]
    sim_node = SimNode(sim, lidar, 10.0, stamper, context=ros_context, namespace='navigation')
    driver = BaseDriverNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
        Parameter('port', value=str(sim.link)), Parameter('max_vx', value=0.7)])
    monitor = CollisionMonitorNode(context=ros_context, namespace='navigation', parameter_overrides=common)
    commander = Commander(context=ros_context)
    spin(sim_node, driver, monitor, commander)
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    return sim, monitor, commander


def watch(sim, commander, commands, what):
    """Poll the ground truth while the commander sends `commands` more commands; (closest x, bumper seen)."""
    closest, bumper = math.inf, 0
    end = commander.sent + commands

    def done():
        nonlocal closest, bumper
        state = sim.state()
        closest = min(closest, state['pose'][0])
        bumper |= state['bumper']
        return commander.sent >= end
    wait_for(done, commands * 0.1 * 4 + 10, what)
    return closest, bumper


@pytest.fixture
def sims():
    started = []
    yield started
    for sim in started:
        sim.stop()


def test_a_frozen_lidar_stamp_stops_the_robot_before_the_wall(ros_context, spin, tmp_path, sims):
    stamper = ScanStamper()
    sim, monitor, commander = bring_up_base_and_monitor(ros_context, spin, tmp_path, stamper)
    sims.append(sim)
    commander.vx = 0.3
    wait_for(lambda: sim.state()['pose'][0] < FACING_WALL[0] - 0.2, 20, 'the robot driving towards the wall')
    assert 'pass' in commander.monitor_states
    stamper.freeze()                      # the driver republishes its last scan, with its old stamp, at 10 Hz
    frozen_at = sim.state()['pose'][0]
    at_freeze = monitor.sources[0].scans
    closest, bumper = watch(sim, commander, 60, '6 s of commands towards the wall')
    # the frozen scans kept arriving (an arrival clock would call them fresh): counted, not timed
    # (a loaded machine delivers fewer of the 10 Hz scans in the 6 s)
    wait_for(lambda: monitor.sources[0].scans - at_freeze >= 20, 60, '20 frozen scans reaching the monitor')
    assert commander.monitor_states[-1] == 'stale'
    assert frozen_at - closest < 0.35, f'drove {frozen_at - closest:.2f} m on a frozen lidar'
    assert closest > 1.0 and bumper == 0
    assert sim.state()['wheel_speeds'] == [0.0, 0.0]
    wait_for(lambda: any('old by its stamp' in s.message and s.level == b'\x02' for s in commander.diagnostics),
             5, 'diagnostics naming the stale stamp')


@pytest.mark.parametrize('fault', ['late:3', 'future:5', 'zero'])
def test_lidar_stamps_late_in_the_future_or_zero_never_let_the_robot_drive(ros_context, spin, tmp_path, sims, fault):
    stamper = ScanStamper(StampFault.parse(fault))
    sim, monitor, commander = bring_up_base_and_monitor(ros_context, spin, tmp_path, stamper)
    sims.append(sim)
    wait_for(lambda: monitor.sources[0].scans >= 5, 20, 'scans reaching the collision monitor')
    commander.vx = 0.3
    closest, bumper = watch(sim, commander, 30, '3 s of commands towards the wall')
    assert FACING_WALL[0] - closest < 0.01 and bumper == 0
    assert set(commander.monitor_states) == {'stale'}


@pytest.mark.parametrize('too_close, action', [('-inf', 'stop'), ('nan', 'blind')])
def test_a_box_at_the_bumper_closer_than_the_lidar_range_stops_0_3_m_s(ros_context, spin, tmp_path, sims, too_close,
                                                                      action):
    front = FACING_WALL[0] - 0.18                          # the bumper; a box 4 cm ahead of it, 60 cm wide
    box = (front - 0.30, FACING_WALL[1] - 0.30, front - 0.04, FACING_WALL[1] + 0.30)
    sim, monitor, commander = bring_up_base_and_monitor(ros_context, spin, tmp_path, ScanStamper(), [box], too_close)
    sims.append(sim)
    wait_for(lambda: monitor.sources[0].scans >= 5, 20, 'scans reaching the collision monitor')
    commander.vx = 0.3
    closest, bumper = watch(sim, commander, 20, '2 s of commands into the box')
    assert FACING_WALL[0] - closest < 0.01 and bumper == 0
    assert commander.monitor_states[-1] == action


@pytest.mark.parametrize('vx', [float('nan'), float('inf'), float('-inf'), 1e308])
def test_non_finite_or_absurd_commands_never_reach_cmd_vel(ros_context, spin, tmp_path, sims, vx):
    sim, monitor, commander = bring_up_base_and_monitor(ros_context, spin, tmp_path, ScanStamper())
    sims.append(sim)
    wait_for(lambda: monitor.sources[0].scans >= 5, 20, 'scans reaching the collision monitor')
    commander.vx = vx
    closest, bumper = watch(sim, commander, 20, '2 s of broken commands')
    wait_for(lambda: len(commander.out) >= 10, 10, 'the monitor answering on /cmd_vel')
    assert all(out == (0.0, 0.0) for out in commander.out), commander.out[:5]
    assert FACING_WALL[0] - closest < 0.01
    assert commander.monitor_states[-1] == 'invalid_command'
    assert monitor.counts['invalid_command'] >= 10


def test_a_localisation_that_is_not_sure_stops_the_guide_like_lost(ros_context, spin, store):
    """Two identical aisles: the localisation says `not_sure`; the guide stops and calls staff."""
    base, guide, client, handle, say_state, timer = guiding_on_localisation(ros_context, spin, store)
    say_state('not_sure')
    result = result_of(handle, 10)
    timer.cancel()
    assert not result.success and result.reason == 'lost'
    wait_for(lambda: base.vx == 0.0 and base.wz == 0.0, 2, 'the base stopped')
