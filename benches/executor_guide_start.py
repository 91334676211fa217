"""Guiding on rclpy's MultiThreadedExecutor vs RobotExecutor (retail_bringup/executor.py).

    .venv/bin/python benches/executor_guide_start.py [--repeat N]

The real guide node, a kinematic base answering /cmd_vel with 50 Hz /odom (the test helper of
tests/navigation) and an action client share one executor, as in the navigation tests. A GuideTo
goal to the kitchen is sent; measured: seconds until the base drives (vx > 0.1), cmd_vel
messages in the next 3 s (10 Hz control loop: 30 expected) and the largest number of entries
in the executor's task list (the re-queueing this executor removes). Each run is a fresh
process on its own ROS_DOMAIN_ID; the two executors alternate; medians are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / 'config' / 'stores' / 'demo'


def one_run(executor_name: str) -> dict:
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    sys.path.insert(0, str(REPO / 'tests' / 'navigation'))
    from guide_support import KinematicBase
    from retail_ros.executor import RobotExecutor
    from retail_ros.node_support import use_robot_dds_profile
    from retail_interfaces.action import GuideTo
    from retail_navigation.guide_node import GuideNode

    use_robot_dds_profile()
    rclpy.init()
    base = KinematicBase()
    guide = GuideNode(namespace='navigation', parameter_overrides=[Parameter('store_dir', value=str(DEMO))])
    client_node = rclpy.create_node('bench_client')
    client = ActionClient(client_node, GuideTo, '/navigation/guide_to')
    executor = (RobotExecutor if executor_name == 'RobotExecutor' else MultiThreadedExecutor)()
    for node in (base, guide, client_node):
        executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    largest = 0

    def wait(predicate, timeout):
        nonlocal largest
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            largest = max(largest, len(executor._futures))
            time.sleep(0.01)
        return predicate()

    wait(lambda: guide._pose is not None and client.server_is_ready(), 20)
    started = time.monotonic()
    client.send_goal_async(GuideTo.Goal(zone='kitchen'))
    driving = wait(lambda: base.vx > 0.1, 40)
    to_drive = time.monotonic() - started if driving else float('nan')
    before = len(base.commands)
    wait(lambda: False, 3.0)
    result = {'to_drive_s': to_drive, 'cmd_vel_in_3s': len(base.commands) - before, 'largest_task_list': largest}
    print(json.dumps(result), flush=True)
    os._exit(0)                      # a measurement: no orderly ROS shutdown needed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=4)
    parser.add_argument('--one', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(args.one)
        return 0
    results: dict[str, list[dict]] = {'MultiThreadedExecutor': [], 'RobotExecutor': []}
    with tempfile.TemporaryDirectory() as logs:
        for i in range(args.repeat):
            for k, name in enumerate(results):
                env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                           ROS_DOMAIN_ID=str(160 + 2 * i + k), ROS_LOG_DIR=logs)
                out = subprocess.run([sys.executable, __file__, '--one', name], env=env, capture_output=True,
                                     text=True, timeout=180)
                results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f'GuideTo kitchen on the demo store, {args.repeat} alternating runs each (medians; every run listed)')
    for name, runs in results.items():
        print(f'{name:22} to driving {statistics.median(r["to_drive_s"] for r in runs):6.2f} s   '
              f'cmd_vel in 3 s {statistics.median(r["cmd_vel_in_3s"] for r in runs):4.0f}/30   '
              f'largest task list {statistics.median(r["largest_task_list"] for r in runs):6.0f}   '
              f'runs {[(round(r["to_drive_s"], 2), r["cmd_vel_in_3s"], r["largest_task_list"]) for r in runs]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
