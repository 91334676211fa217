"""The 1 cm claim: a recording re-run through the localisation gives the same pose track.

    .venv/bin/python benches/observe_replay_localization.py [--seconds S] [--replays N] [--rate R]

Live: the simulated navigation stack (`navigation.launch.yaml sim:=true`) guides the robot from
the dock towards the service desk while `retailbot record` records /scan, /odom, /tf, /tf_static and
/navigation/pose (what an incident recording holds). Re-run: the localisation node alone
(`use_sim_time:=true`, the same parameters and seed, `start_from_recording:=true`: it starts from
the first recorded particle cloud, the live filter's checkpoint, and updates on the scans the live
filter updated on, with the odometry it used: its update records on /navigation/localization_updates)
with `retailbot replay --clock` of /scan, /odom, /tf_static, /navigation/particle_cloud and
/navigation/localization_updates (not /tf: its map -> odom is the live localisation's own answer). Each recorded
/navigation/pose is compared with the re-run's at the same header stamp (interpolated between the
re-run's neighbouring poses, at most 0.5 s apart, when it has none there); reported per re-run: poses
compared, median and maximum distance (cm) and maximum heading difference; also how many of the
re-run's poses have the stamp of a recorded one (the same scans used for updates); the peer is the
spread between two re-runs of the same file.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOPICS = ['/scan', '/odom', '/tf', '/tf_static', '/navigation/pose', '/navigation/particle_cloud',
          '/navigation/localization_updates']
REPLAYED = ['/scan', '/odom', '/tf_static', '/navigation/particle_cloud', '/navigation/localization_updates']


def yaw_of(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


class Listener:
    """Collects /navigation/pose (stamp ns -> x, y, yaw) in its own context; sends a GuideTo goal."""

    def __init__(self, domain: int) -> None:
        import rclpy
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from retail_interfaces.action import GuideTo

        self.rclpy, self.GuideTo = rclpy, GuideTo
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node('bench_listener', context=self.context)
        self.poses: dict[int, tuple[float, float, float]] = {}
        self.node.create_subscription(PoseWithCovarianceStamped, '/navigation/pose', self.on_pose, 100)
        self.guide = ActionClient(self.node, GuideTo, '/navigation/guide_to')
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def on_pose(self, msg) -> None:
        p = msg.pose.pose
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.poses[stamp] = (p.position.x, p.position.y, yaw_of(p.orientation))

    def guide_to(self, zone: str) -> None:
        if self.guide.wait_for_server(timeout_sec=60):
            self.guide.send_goal_async(self.GuideTo.Goal(zone=zone))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def recorded_poses(path: Path) -> dict[int, tuple[float, float, float]]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    poses = {}
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for _, _, _, msg in reader.iter_decoded_messages(topics=['/navigation/pose']):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            p = msg.pose.pose
            poses[stamp] = (p.position.x, p.position.y, yaw_of(p.orientation))
    return poses


MAX_GAP_NS = 500_000_000  # interpolate the other track only between poses at most 0.5 s apart


def at(track: dict, stamp: int) -> tuple[float, float, float] | None:
    """The track's pose at `stamp`: its own, or interpolated between its neighbours (None if too far)."""
    if stamp in track:
        return track[stamp]
    stamps = sorted(track)
    later = next((i for i, s in enumerate(stamps) if s > stamp), None)
    if later is None or later == 0 or stamps[later] - stamps[later - 1] > MAX_GAP_NS:
        return None
    t0, t1 = stamps[later - 1], stamps[later]
    (x0, y0, a0), (x1, y1, a1) = track[t0], track[t1]
    f = (stamp - t0) / (t1 - t0)
    turn = math.atan2(math.sin(a1 - a0), math.cos(a1 - a0))
    return x0 + f * (x1 - x0), y0 + f * (y1 - y0), a0 + f * turn


def compare(a: dict, b: dict) -> tuple[int, float, float, float]:
    """(poses of `a` compared, median cm, max cm, max heading difference in degrees): each pose of
    `a` against `b`'s at the same stamp (interpolated between b's neighbours when b has none there:
    the filter publishes a pose only when it updates, and a re-run may update on other scans)."""
    pairs = [(a[s], at(b, s)) for s in sorted(a)]
    pairs = [(p, q) for p, q in pairs if q is not None]
    if not pairs:
        return 0, math.nan, math.nan, math.nan
    dist = [math.hypot(p[0] - q[0], p[1] - q[1]) * 100 for p, q in pairs]
    turn = [abs(math.degrees(math.atan2(math.sin(p[2] - q[2]), math.cos(p[2] - q[2])))) for p, q in pairs]
    return len(pairs), statistics.median(dist), max(dist), max(turn)


def live(folder: Path, seconds: float, domain: int, env: dict) -> Path:
    out = folder / 'live.mcap'
    launch = subprocess.Popen(
        [str(BIN / 'retailbot'), 'launch', str(REPO / 'launch' / 'navigation.launch.yaml'), 'sim:=true',
         f'base_link_path:={folder / "pty"}', f'data_dir:={folder / "data"}'],
        env=env, stdout=open(folder / 'live.log', 'w'), stderr=subprocess.STDOUT, start_new_session=True)
    listener = Listener(domain)
    try:
        if not wait(lambda: listener.poses, 120):
            raise SystemExit(f'no /navigation/pose from the live stack in 120 s (see {folder / "live.log"})')
        record = subprocess.Popen([str(BIN / 'retailbot'), 'record', '--out', str(out), '--duration', str(seconds),
                                   '--topics', *TOPICS], env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        time.sleep(3.0)  # the recorder subscribes first
        listener.guide_to('service_desk')
        record.wait(timeout=seconds + 120)
    finally:
        listener.close()
        stop(launch)
    return out


def rerun(folder: Path, recording: Path, domain: int, env: dict, index: int, rate: float) -> dict:
    launch_file = folder / 'localization.launch.yaml'
    launch_file.write_text(f"""launch:
- node:
    pkg: retail_navigation
    exec: retail_navigation_localization
    name: localization
    namespace: navigation
    param:
    - {{from: "{REPO / 'config' / 'navigation.yaml'}"}}
    - {{name: store_dir, value: "{REPO / 'config' / 'stores' / 'demo'}"}}
    - {{name: data_dir, value: "{folder / f'rerun{index}'}"}}
    - {{name: use_sim_time, value: true}}
    - {{name: start_from_recording, value: true}}
    - {{name: scan_queue_depth, value: 1000}}
    - {{name: odom_queue_depth, value: 5000}}
""")
    launch = subprocess.Popen([str(BIN / 'retailbot'), 'launch', str(launch_file)], env=env,
                              stdout=open(folder / f'rerun{index}.log', 'w'), stderr=subprocess.STDOUT,
                              start_new_session=True)
    listener = Listener(domain)
    try:
        # the localisation node has loaded its map and subscribed to the scan and the odometry (a
        # replay started earlier would feed it a recording without its start)
        if not wait(lambda: listener.node.count_subscribers('/scan') > 0 and listener.node.count_subscribers('/odom') > 0
                    and listener.node.count_publishers('/navigation/pose') > 0, 120):
            raise SystemExit(f'the localisation node did not come up (see {folder / f"rerun{index}.log"})')
        time.sleep(2.0)
        subprocess.run([str(BIN / 'retailbot'), 'replay', str(recording), '--clock', '--rate', str(rate),
                        '--topics', *REPLAYED],
                       env=env, stdout=subprocess.DEVNULL, timeout=600)
        time.sleep(2.0)
        return dict(listener.poses)
    finally:
        listener.close()
        stop(launch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0, help='length of the live recording')
    parser.add_argument('--replays', type=int, default=2, help='re-runs of the recording (2: a peer)')
    parser.add_argument('--domain', type=int, default=171)
    parser.add_argument('--rate', type=float, default=1.0, help='replay rate (below 1: slower than recorded)')
    parser.add_argument('--keep', default='', help='keep the recording and the nodes\' logs in this folder')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(args.keep or name)
        folder.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ROS_DOMAIN_ID=str(args.domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
        recording = live(folder, args.seconds, args.domain, env)
        original = recorded_poses(recording)
        print(f'live: {len(original)} poses recorded in {args.seconds:.0f} s ({recording.stat().st_size} bytes)')
        runs = [rerun(folder, recording, args.domain, env, i, args.rate) for i in range(args.replays)]
        for i, poses in enumerate(runs):
            n, median, worst, turn = compare(original, poses)
            same = len(set(poses) & set(original))
            print(f're-run {i + 1} vs recording: {n}/{len(original)} poses compared (same stamp or interpolated), median {median:.2f} cm, '
                  f'max {worst:.2f} cm, max heading {turn:.2f} deg; re-run poses {len(poses)}, {same} at a recorded '
                  f'pose\'s stamp; recorded poses after the re-run\'s first: '
                  f'{sum(1 for s in original if poses and s >= min(poses))}')
        if len(runs) > 1:
            n, median, worst, turn = compare(runs[0], runs[1])
            print(f'peer: re-run 1 vs re-run 2: {n} poses compared, median {median:.2f} cm, max {worst:.2f} cm, '
                  f'max heading {turn:.2f} deg')
        worst_all = max(compare(original, p)[2] for p in runs)
        print(f'within 1 cm: {"yes" if worst_all <= 1.0 else "no"} (worst {worst_all:.2f} cm)')


if __name__ == '__main__':
    main()
