"""Camera frames delivered between two processes: Fast DDS defaults vs config/fastdds.xml.

    .venv/bin/python benches/dds_camera_frames.py [--repeat N] [--seconds S]

A publisher process sends 640x360 BGR frames (691 KB, sensor-data QoS) at 15 frames/s; a
subscriber process counts what arrives. Both run once with Fast DDS's built-in transports and
once with the robot's profile, alternately, in the same run; medians of the received rate.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROFILE = REPO / 'config' / 'fastdds.xml'
RATE_HZ = 15.0


def publisher(width: int, height: int) -> None:
    import array

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node('bench_camera')
    pub = node.create_publisher(Image, '/bench/image_raw', qos_profile_sensor_data)
    msg = Image(width=width, height=height, encoding='bgr8', step=width * 3)
    msg.data = array.array('B', bytes(width * height * 3))
    node.create_timer(1.0 / RATE_HZ, lambda: pub.publish(msg))
    try:
        rclpy.spin(node)
    except BaseException:
        pass


def subscriber(seconds: float) -> None:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    rclpy.init()
    node = rclpy.create_node('bench_faces')
    arrivals: list[float] = []
    node.create_subscription(Image, '/bench/image_raw', lambda _m: arrivals.append(time.monotonic()),
                             qos_profile_sensor_data)
    deadline = time.monotonic() + seconds + 3.0
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    steady = [t for t in arrivals if arrivals and t > arrivals[0] + 1.0]    # after discovery settled
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 2 else 0.0
    print(f'{rate:.2f}')


def measure(profile: str | None, seconds: float, domain: int) -> float:
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=str(domain))
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if profile:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    pub = subprocess.Popen([sys.executable, __file__, '--publisher'], env=env)
    try:
        out = subprocess.run([sys.executable, __file__, '--subscriber', str(seconds)], env=env,
                             capture_output=True, text=True, timeout=seconds + 60)
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        pub.terminate()
        pub.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seconds', type=float, default=6.0)
    parser.add_argument('--publisher', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--subscriber', type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publisher(640, 360)
        return 0
    if args.subscriber:
        subscriber(args.subscriber)
        return 0
    default, robot = [], []
    for i in range(args.repeat):
        default.append(measure(None, args.seconds, 150 + i))
        robot.append(measure(str(PROFILE), args.seconds, 150 + i))
    print(f'640x360 bgr8 frames at {RATE_HZ:g}/s, {args.repeat} alternating runs of {args.seconds:g} s')
    print(f'Fast DDS defaults      : received {statistics.median(default):5.1f} frames/s  (runs {default})')
    print(f'config/fastdds.xml     : received {statistics.median(robot):5.1f} frames/s  (runs {robot})')
    ratio = statistics.median(robot) / max(statistics.median(default), 1e-9)
    print(f'ratio: {ratio:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
