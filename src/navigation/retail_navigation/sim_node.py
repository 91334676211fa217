"""`/navigation/sim`: the simulated base and the store around it (what `sim:=true` starts).

Runs the Kobuki-protocol base simulator on a pseudo-terminal (the driver opens it like a real
serial port; see pty_sim) and, on ROS, what the robot's other sensors would see of the simulated
store:

- `/scan` (sensor_msgs/LaserScan, frame `laser`, 10 Hz, 360 beams, 0.15-12 m, ~1 cm noise): the
  lidar at `--laser-pose` on the robot, ray-cast on the store map plus the objects that are not
  on it (`--objects`) and the walking shoppers (`--people N`);
- `/navigation/sim/ground_truth` (nav_msgs/Odometry, frame `map`): where the robot really is;
- `/navigation/sim/people` (geometry_msgs/PoseArray, frame `map`) and `/navigation/sim/contacts`
  (std_msgs/UInt32, transient local): the shoppers and how often the robot touched one.

The last three are for tests and benchmarks only: no node of the robot reads them.
Options: those of `retailbot base sim` plus `--laser-pose X,Y,YAW`, `--scan-rate HZ` and the
honest lidar faults of real drivers: `--lidar-fault frozen:S|late:S|future:S|zero` (republish the
last scan with its old stamp after S seconds; stamps S seconds late or ahead; zero stamps),
`--lidar-range M` (a lidar shorter than the store: far beams +inf) and `--lidar-too-close nan`
(the NaN some drivers send instead of REP-117's -inf for something closer than range_min).
Exit codes: 0 stopped, 1 the link is used by another simulator, 2 bad arguments or map.
"""
from __future__ import annotations

import argparse
import math
import sys

from geometry_msgs.msg import Pose, PoseArray
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
from std_msgs.msg import UInt32

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.node_support import run_node
from retail_navigation.cli import add_sim_arguments, build_simulator
from retail_navigation.lidar import LidarConfig, ScanStamper, SimLidar, StampFault
from retail_navigation.pty_sim import LinkBusy



def _pose3(text: str) -> tuple[float, float, float]:
    try:
        values = [float(v) for v in text.strip().strip('[]').split(',')]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected X,Y,YAW numbers, got {text!r}') from None
    if len(values) == 4:             # x, y, z, yaw as in the params file: z does not matter here
        values = [values[0], values[1], values[3]]
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f'expected X,Y,YAW, got {text!r}')
    return values[0], values[1], values[2]


class SimNode(Node):
    def __init__(self, simulator, lidar: SimLidar | None, scan_rate_hz: float, stamper: ScanStamper | None = None,
                 **kwargs) -> None:
        super().__init__('sim', **kwargs)
        self.simulator = simulator
        self.lidar = lidar
        self.stamper = stamper or ScanStamper()
        self.scan_pub = self.create_publisher(LaserScan, names.SCAN, 5)
        self.truth_pub = self.create_publisher(Odometry, 'sim/ground_truth', 10)
        self.people_pub = self.create_publisher(PoseArray, 'sim/people', 5)
        self.contacts_pub = self.create_publisher(UInt32, 'sim/contacts', LATCHED)
        self._contacts = -1
        if lidar is not None:
            self.create_timer(1.0 / scan_rate_hz, self._on_scan)
        self.create_timer(0.05, self._on_truth)
        base = simulator.base
        self.get_logger().info(
            f'simulated base on {simulator.link} at ({base.state.x:.2f}, {base.state.y:.2f}); '
            f'lidar {"on" if lidar else "off (no map)"}; '
            f'{len(base.world.shoppers) if base.world else 0} shoppers; '
            f'drift {"on" if base.config.drift else "off"}')

    def _snapshot(self):
        with self.simulator._lock:
            s = self.simulator.base.state
            world = self.simulator.base.world
            circles = world.circles() if world is not None else None
            contacts = world.contacts if world is not None else 0
            return (s.x, s.y, s.theta), (s.left.speed, s.right.speed), circles, contacts

    def _on_scan(self) -> None:
        pose, _, circles, _ = self._snapshot()
        now_ns = self.get_clock().now().nanoseconds
        stamp_s, ranges = self.stamper(now_ns * 1e-9, self.lidar.scan(pose, circles))
        c = self.lidar.config
        msg = LaserScan()
        stamp_ns = max(0, int(round(stamp_s * 1e9)))
        msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000
        msg.header.frame_id = 'laser'
        msg.angle_min = float(c.angle_min)
        msg.angle_increment = float(c.angle_increment)
        msg.angle_max = float(c.angle_min + c.angle_increment * (c.beams - 1))
        msg.time_increment = 0.0
        msg.scan_time = float(1.0 / c.rate_hz)
        msg.range_min, msg.range_max = float(c.range_min), float(c.range_max)
        msg.ranges = ranges.tolist()
        self.scan_pub.publish(msg)

    def _on_truth(self) -> None:
        (x, y, theta), (left, right), circles, contacts = self._snapshot()
        stamp = self.get_clock().now().to_msg()
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = 'map'
        msg.child_frame_id = 'base_link'
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(x), float(y)
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(theta / 2), math.cos(theta / 2)
        wheelbase = self.simulator.base.config.wheelbase
        msg.twist.twist.linear.x = (left + right) / 2.0
        msg.twist.twist.angular.z = (right - left) / wheelbase
        self.truth_pub.publish(msg)
        if circles is not None:
            people = PoseArray()
            people.header.stamp = stamp
            people.header.frame_id = 'map'
            for cx, cy, _ in circles:
                p = Pose()
                p.position.x, p.position.y = float(cx), float(cy)
                p.orientation.w = 1.0
                people.poses.append(p)
            self.people_pub.publish(people)
        if contacts != self._contacts:
            if contacts > max(self._contacts, 0):
                self.get_logger().warning(f'the robot touched a shopper (contact {contacts})')
            self._contacts = contacts
            self.contacts_pub.publish(UInt32(data=int(contacts)))

    def destroy_node(self) -> None:
        try:
            self.simulator.stop()
        finally:
            super().destroy_node()


def main() -> None:
    argv = sys.argv[1:]
    if '--ros-args' in argv:
        argv = argv[:argv.index('--ros-args')]
    parser = argparse.ArgumentParser(prog='retail_navigation_base_sim',
                                     description='Simulated base on a pseudo-terminal, with lidar, shoppers and '
                                                 'ground truth on ROS.')
    add_sim_arguments(parser)
    parser.add_argument('--laser-pose', type=_pose3, default=(0.10, 0.0, 0.0), metavar='X,Y,YAW',
                        help='where the lidar sits on the robot (base_link -> laser); also [x, y, z, yaw]')
    parser.add_argument('--scan-rate', type=float, default=10.0, metavar='HZ', help='scans per second (1..40)')
    parser.add_argument('--lidar-fault', default='', metavar='frozen:S|late:S|future:S|zero',
                        help='a lidar driver fault: frozen after S seconds (old stamp republished), stamps S seconds '
                             'late or ahead, zero stamps')
    parser.add_argument('--lidar-range', type=float, default=12.0, metavar='M',
                        help='range_max of the lidar [m] (shorter than the store: far beams are +inf)')
    parser.add_argument('--lidar-too-close', choices=('-inf', 'nan'), default='-inf',
                        help='what a return closer than range_min reads: -inf (REP-117) or nan (some drivers)')
    args = parser.parse_args(argv)
    if not 1.0 <= args.scan_rate <= 40.0:
        print('retail_navigation_base_sim: --scan-rate must be between 1 and 40 Hz', file=sys.stderr)
        sys.exit(2)
    if not 0.5 <= args.lidar_range <= 100.0:
        print('retail_navigation_base_sim: --lidar-range must be between 0.5 and 100 m', file=sys.stderr)
        sys.exit(2)
    try:
        fault = StampFault.parse(args.lidar_fault)
    except ValueError as exc:
        print(f'retail_navigation_base_sim: {exc}', file=sys.stderr)
        sys.exit(2)
    try:
        simulator = build_simulator(args)
    except ValueError as exc:
        print(f'retail_navigation_base_sim: {exc}', file=sys.stderr)
        sys.exit(2)
    code = 0
    try:
        simulator.start()
        lidar = None
        if args.map:
            base = simulator.base
            world_map = base.world.world_map if base.world is not None else base.floor
            lidar = SimLidar(world_map, LidarConfig(mount=args.laser_pose, rate_hz=args.scan_rate,
                                                    range_max=args.lidar_range, too_close=args.lidar_too_close),
                             seed=args.seed)
        code = run_node(lambda: SimNode(simulator, lidar, args.scan_rate, ScanStamper(fault)))
    except LinkBusy as exc:
        print(f'retail_navigation_base_sim: {exc}', file=sys.stderr)
        code = 1
    except KeyboardInterrupt:          # Ctrl-C before ROS was up
        pass
    except Exception:
        import rclpy
        if rclpy.ok():
            raise
        # Ctrl-C while the node was being built: rclpy shut its context down under it
    finally:
        simulator.stop()
    sys.exit(code)
