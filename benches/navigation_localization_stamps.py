"""Bench: localisation with each scan used at its own stamp vs the latest odometry, under CPU load.

Real nodes on DDS in one process (as a robot's busy executor would run them): the simulated base
with shop-floor drift on a pty and its lidar (`SimNode`), the base driver on pyserial, and TWO
localisation nodes reading the same /scan and /odom:

- ours: `LocalizationNode` as shipped: the odometry interpolated to each scan's header stamp
  (a scan stamped after the newest odometry waits for it);
- the peer: the same node using the latest odometry values when the scan is processed (what the
  filter did before; under load the scan is processed late and the robot has moved since).

The robot drives back and forth along the demo store's front aisle (steered on the ground truth
by the bench, 0.5 m/s, turning on the spot at the ends, with a slight weave) while `--load`
processes spin busy loops. The error is what the rest of the robot sees: at each ground-truth
message (20 Hz) the believed pose map->odom (the node's latest) composed with the odometry at
that moment, against the truth. Reports medians, p95 and max of both and the ratio peer / ours.

    .venv/bin/python benches/navigation_localization_stamps.py [--seconds 60] [--load 2]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / 'config' / 'stores' / 'demo'
LASER = [0.10, 0.0, 0.20, 0.0]
ENDS = ((5.5, 3.2), (13.5, 3.2))
START = (5.5, 3.2, 0.0)


def busy() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF


def run(seconds: float, load: int) -> dict:
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    import rclpy
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from retail_ros.executor import RobotExecutor
    from retail_navigation.base_driver_node import BaseDriverNode
    from retail_navigation.base_sim import Drift, SimConfig, SimulatedBase
    from retail_navigation.lidar import LidarConfig, SimLidar
    from retail_navigation.localization import OdomHistory, compose
    from retail_navigation.localization_node import LocalizationNode
    from retail_navigation.maps import load_map
    from retail_navigation.pty_sim import PtySimulator
    from retail_navigation.sim_node import SimNode
    from retail_ros.tf_support import yaw_of

    class LatestValuesLocalization(LocalizationNode):
        """The peer: the odometry as it is when the scan is processed, whatever the scan's stamp."""

        def odom_for_scan(self, stamp):
            if not self._odom.poses:
                return None, 'none', math.inf
            return self._odom.poses[-1], 'ok', 0.0

    class Recorder(Node):
        def __init__(self, sim, nodes) -> None:
            super().__init__('bench_recorder')
            self.sim, self.nodes = sim, nodes
            self.odom = OdomHistory(keep_s=1e6, window_s=1.0)
            self.samples: list[tuple[float, tuple, list]] = []
            self.pub = self.create_publisher(Twist, '/cmd_vel', 10)
            self.create_subscription(Odometry, '/odom', self._on_odom, 50)
            self.create_subscription(Odometry, '/navigation/sim/ground_truth', self._on_truth, 50)
            self.target = 1
            self.t0 = time.monotonic()
            self.create_timer(0.05, self._drive)

        def _on_odom(self, msg) -> None:
            p = msg.pose.pose
            self.odom.add(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
                          (p.position.x, p.position.y, yaw_of(p.orientation)))

        def _on_truth(self, msg) -> None:
            p = msg.pose.pose
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            self.samples.append((stamp, (p.position.x, p.position.y), [n._map_to_odom for n in self.nodes]))

        def _drive(self) -> None:
            x, y, theta = self.sim.state()['pose']
            tx, ty = ENDS[self.target]
            d = math.hypot(tx - x, ty - y)
            if d < 0.15:
                self.target = 1 - self.target
                return
            err = math.remainder(math.atan2(ty - y, tx - x) - theta, math.tau)
            cmd = Twist()
            if abs(err) > 0.3:
                cmd.angular.z = 1.2 * math.copysign(1.0, err)
            else:
                cmd.linear.x = 0.5
                cmd.angular.z = 2.0 * err + 0.25 * math.sin(time.monotonic() - self.t0)
            self.pub.publish(cmd)

    workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(load)]
    for w in workers:
        w.start()
    tmp = Path(tempfile.mkdtemp(prefix='bench_loc_'))
    store_map = load_map(DEMO / 'map.yaml')
    base = SimulatedBase(store_map, START, SimConfig(drift=Drift.shop_floor(7)))
    sim = PtySimulator(base, tmp / 'base').start()
    rclpy.init()
    try:
        lidar = SimLidar(store_map, LidarConfig(mount=(LASER[0], LASER[1], LASER[3])), seed=1)
        common = [Parameter('laser_pose', value=LASER)]
        loc = [Parameter('store_dir', value=str(DEMO)), Parameter('initial_pose', value=list(START))]
        sim_node = SimNode(sim, lidar, 10.0, namespace='navigation')
        driver = BaseDriverNode(namespace='navigation', parameter_overrides=common + [
            Parameter('port', value=str(sim.link)), Parameter('max_vx', value=0.7)])
        ours = LocalizationNode(namespace='navigation', parameter_overrides=common + loc)
        peer = LatestValuesLocalization(namespace='peer', parameter_overrides=common + loc)
        recorder = Recorder(sim, [ours, peer])
        executor = RobotExecutor()
        for node in (sim_node, driver, ours, peer, recorder):
            executor.add_node(node)
        threading.Thread(target=executor.spin, daemon=True).start()
        assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.2)
        odometer = sim.state()['odometer_m']
        executor.shutdown(timeout_sec=2.0)
        refused = {'ours': ours.refused_total, 'peer': peer.refused_total}
    finally:
        sim.stop()
        rclpy.try_shutdown()
        for w in workers:
            w.terminate()
    errors: dict[str, list[float]] = {'ours': [], 'peer': []}
    series = []
    start = recorder.samples[0][0] + 5.0 if recorder.samples else 0.0
    for stamp, truth, m2os in recorder.samples:
        if stamp < start:
            continue
        odom, verdict, _ = recorder.odom.at(stamp)
        if odom is None:
            continue
        row = [stamp, truth]
        for name, m2o in zip(('ours', 'peer'), m2os):
            if m2o is not None:
                believed = compose(m2o, odom)
                errors[name].append(math.hypot(believed[0] - truth[0], believed[1] - truth[1]))
                row.append(errors[name][-1])
        series.append(row)
    return {'errors': errors, 'odometer_m': odometer, 'refused': refused, 'series': series}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=60.0, help='driving time')
    parser.add_argument('--load', type=int, default=2, help='busy-loop processes running meanwhile')
    args = parser.parse_args()
    result = run(args.seconds, args.load)
    e = result['errors']
    print(f'{args.seconds:.0f} s, {result["odometer_m"]:.1f} m driven, {args.load} busy processes; '
          f'scans refused: ours {result["refused"]["ours"]}, peer {result["refused"]["peer"]}')
    stats = {}
    for name, label in (('ours', 'scan at its stamp (odometry interpolated)'), ('peer', 'latest odometry values')):
        v = np.asarray(e[name])
        if not len(v):
            print(f'{label}: no samples')
            return
        stats[name] = (float(np.median(v)), float(np.percentile(v, 95)), float(v.max()))
        print(f'{label:44s} n={len(v):5d}  median {stats[name][0] * 100:5.1f} cm  p95 {stats[name][1] * 100:5.1f} cm  '
              f'max {stats[name][2] * 100:5.1f} cm')
    ratio = [stats['peer'][k] / stats['ours'][k] for k in range(3)]
    print(f'ratio peer / ours: median {ratio[0]:.2f}x, p95 {ratio[1]:.2f}x, max {ratio[2]:.2f}x')


if __name__ == '__main__':
    main()
