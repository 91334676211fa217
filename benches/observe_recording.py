"""Recording overhead on the robot: `retailbot record` against the graph it records.

    .venv/bin/python benches/observe_recording.py [--repeat N] [--seconds S]

A talker process publishes what the base and lidar publish (a 360-ray scan at 10 Hz, odometry and
TF at 50 Hz); `retailbot record` records it for S seconds. Reported per run: the recorder's CPU
time as a share of one core and as a ratio to the talker's own CPU (the peer, same run), and the
file size extrapolated to an hour; medians over the runs. Each run has its own ROS domain. The talker's
messages repeat (constant ranges), so zstd shrinks them far more than a real store's scans: the
size is a lower bound. The recorder's CPU includes its start (Python imports, discovery).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def talker() -> None:
    import math

    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan
    from tf2_msgs.msg import TFMessage
    from geometry_msgs.msg import TransformStamped
    rclpy.init()
    node = rclpy.create_node('bench_talker')
    scan_pub = node.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
    odom_pub = node.create_publisher(Odometry, '/odom', 10)
    tf_pub = node.create_publisher(TFMessage, '/tf', 10)
    scan = LaserScan(angle_increment=math.radians(1.0), range_max=12.0, ranges=[3.0] * 360)

    def fast():
        now = node.get_clock().now().to_msg()
        odom = Odometry()
        odom.header.stamp = now
        odom_pub.publish(odom)
        tf_pub.publish(TFMessage(transforms=[TransformStamped()]))
    node.create_timer(0.1, lambda: scan_pub.publish(scan))
    node.create_timer(0.02, fast)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass


def cpu_of(proc: subprocess.Popen) -> float:
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return usage.ru_utime + usage.ru_stime


def one_run(seconds: float, domain: int) -> tuple[float, float, float]:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / 'bench.mcap'
        peer = subprocess.Popen([sys.executable, __file__, '--talker'], env=env)
        time.sleep(2.0)
        start = time.monotonic()
        recorder = subprocess.Popen([str(BIN / 'retailbot'), 'record', '--out', str(out), '--duration', str(seconds),
                                     '--json'], env=env, stdout=subprocess.DEVNULL)
        recorder_cpu = cpu_of(recorder)
        wall = time.monotonic() - start
        peer.send_signal(2)
        peer_cpu = cpu_of(peer)
        size = out.stat().st_size
    return recorder_cpu / wall, recorder_cpu / max(peer_cpu, 1e-6), size / wall * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=15.0)
    parser.add_argument('--talker', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.talker:
        talker()
        return
    runs = [one_run(args.seconds, 150 + i) for i in range(args.repeat)]
    for i, (share, ratio, per_hour) in enumerate(runs):
        print(f'run {i + 1}: recorder CPU {share * 100:.1f} % of a core, {ratio:.2f}x the talker, '
              f'{per_hour / 1e6:.0f} MB/hour')
    print(f'median: recorder CPU {statistics.median(r[0] for r in runs) * 100:.1f} % of a core, '
          f'{statistics.median(r[1] for r in runs):.2f}x the talker, '
          f'{statistics.median(r[2] for r in runs) / 1e6:.0f} MB/hour (zstd chunks)')


if __name__ == '__main__':
    main()
