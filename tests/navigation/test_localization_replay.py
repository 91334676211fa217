"""Re-running a recorded localisation exactly (localization_replay.RecordedUpdates), pure.

The live run here is what the CI saw on a loaded machine: the live node skipped some scans (its
sensor-data queue of 5 overflowed while its executor was busy, or a scan waited for late odometry
longer than `odom_window_s`) that the recorder kept, and the recorder missed some odometry
messages. A re-run that picks its own inputs from the recorded /scan and /odom then differs from
the live track (the CI's 1.19 cm); one that takes the live filter's update records does not."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nav_maps_support import box_map  # noqa: E402

from retail_navigation.lidar import LidarConfig, SimLidar  # noqa: E402
from retail_navigation.localization import AmclConfig, OdomHistory, ParticleFilter, compose  # noqa: E402
from retail_navigation.localization_replay import Missing, RecordedUpdates, Start, Update  # noqa: E402

T0 = 1_700_000_000_000_000_000
MOUNT = (0.1, 0.0, 0.0)


def _drive(m, seconds: float):
    """A robot driving the box map: odometry at 50 Hz and scans at 10 Hz, each (stamp ns, ...)."""
    lidar = SimLidar(m, LidarConfig(mount=MOUNT), seed=2)
    true, odom = (1.0, 1.0, 0.3), (0.0, 0.0, 0.0)
    odometry, scans = [], []
    for k in range(int(seconds * 50)):
        ahead = all(m.is_free_world(true[0] + d * math.cos(true[2]), true[1] + d * math.sin(true[2]))
                    for d in (0.3, 0.5, 0.7))
        v, w = (0.45, 0.15) if ahead else (0.0, 0.8)
        true = compose(true, (v * 0.02, 0.0, w * 0.02))
        odom = compose(odom, (v * 0.02 * 1.02, 0.0, w * 0.02 + 0.0001))
        stamp = T0 + k * 20_000_000 + 3_000_000 * (k % 3)          # odometry jitter
        odometry.append((stamp, odom))
        if k % 5 == 2:
            scans.append((stamp - 7_000_000, lidar.scan(true)))       # between two odometry messages
    return odometry, scans, lidar.config.angles()


def _live(m, odometry, scans, angles, skipped: set[int]):
    """The live node: every odometry message, the scans but `skipped`; its poses, update records
    (stamp -> odometry used) and checkpoints (stamp -> particles)."""
    pf = ParticleFilter(m, AmclConfig(), laser_mount=MOUNT, seed=7)
    pf.initialise((1.0, 1.0, 0.3))
    history = OdomHistory(keep_s=1e9)
    for stamp, pose in odometry:
        history.add(stamp * 1e-9, pose)
    poses, records, clouds = {}, {}, {}
    for i, (stamp, ranges) in enumerate(scans):
        if i in skipped:
            continue
        odom, verdict, _ = history.at(stamp * 1e-9)
        assert verdict == 'ok'
        est = pf.step(odom, ranges, angles, key=stamp)
        if est.updated:
            poses[stamp], records[stamp] = est.pose, odom
            if pf.checkpoint() is not None:
                clouds[stamp] = pf.checkpoint()
    return poses, records, clouds


def _rerun_on_recorded_topics(m, odometry, scans, angles, cloud_stamp, cloud):
    """The re-run before: its own inputs, every recorded scan after the checkpoint and the odometry
    interpolated from the recorded /odom."""
    history = OdomHistory(keep_s=1e9)
    for stamp, pose in odometry:
        history.add(stamp * 1e-9, pose)
    pf = ParticleFilter(m, AmclConfig(), laser_mount=MOUNT, seed=7)
    pf.restore(cloud, history.at(cloud_stamp * 1e-9)[0])
    poses = {}
    for stamp, ranges in scans:
        if stamp > cloud_stamp:
            est = pf.step(history.at(stamp * 1e-9)[0], ranges, angles, key=stamp)
            if est.updated:
                poses[stamp] = est.pose
    return poses


def _rerun_on_records(m, events, angles):
    """The re-run now: RecordedUpdates fed the recording in its (log time) order."""
    pf = ParticleFilter(m, AmclConfig(), laser_mount=MOUNT, seed=7)
    replay = RecordedUpdates()
    poses, missing = {}, []
    for kind, stamp, data in events:
        getattr(replay, f'add_{kind}')(stamp, data)
        for action in replay.ready():
            if isinstance(action, Start):
                pf.restore(action.particles, action.odom)
            elif isinstance(action, Missing):
                missing.append(action.stamp)
            else:
                poses[action.stamp] = pf.step(action.odom, action.scan, angles, force=True, key=action.stamp).pose
    return poses, missing


def _recording(odometry, scans, records, clouds, lost_odom: set[int], lost_scans: set[int] = frozenset()):
    """What the recorder logged, in log order: the scans (but `lost_scans`), odometry (but
    `lost_odom`), and each update record and cloud 30 ms after its scan (the live node's latency);
    the first cloud was latched before the recording began, so its update record is not in it."""
    events = [(stamp, 'scan', stamp, ranges) for i, (stamp, ranges) in enumerate(scans) if i not in lost_scans]
    events += [(stamp + 30_000_000, 'record', stamp, odom) for stamp, odom in records.items()
               if stamp > min(clouds)]
    events += [(stamp + 31_000_000, 'cloud', stamp, cloud) for stamp, cloud in clouds.items()]
    recorded_odom = [item for i, item in enumerate(odometry) if i not in lost_odom]
    return [event[1:] for event in sorted(events, key=lambda e: e[0])], recorded_odom


@pytest.fixture(scope='module')
def drive():
    m = box_map()
    return m, *_drive(m, 16.0)


def test_a_re_run_on_the_live_filters_update_records_gives_its_track_exactly(drive):
    m, odometry, scans, angles = drive
    skipped = {31, 32, 58, 77, 101}                  # dropped or refused by the loaded live node
    lost_odom = set(range(3, len(odometry), 9))      # missed by the recorder
    poses, records, clouds = _live(m, odometry, scans, angles, skipped)
    events, recorded_odom = _recording(odometry, scans, records, clouds, lost_odom)
    first = min(s for s in clouds if s > min(clouds))            # the first cloud with its record
    assert len([s for s in poses if s > first]) > 60

    rerun, missing = _rerun_on_records(m, events, angles)
    assert not missing
    assert min(rerun) > first and set(rerun) == {s for s in poses if s > first}    # the live's updates
    assert max(math.hypot(rerun[s][0] - poses[s][0], rerun[s][1] - poses[s][1]) for s in rerun) == 0.0

    # the control: the same recording re-run on its own choice of scans and odometry differs
    before = _rerun_on_recorded_topics(m, recorded_odom, scans, angles, first, clouds[first])
    assert set(before) - set(poses), 'the skipped scans are updates of the re-run only'
    common = [s for s in before if s in poses]
    assert max(math.hypot(before[s][0] - poses[s][0], before[s][1] - poses[s][1]) for s in common) > 1e-3


def test_a_scan_the_live_filter_used_but_the_recording_lacks_is_reported(drive):
    m, odometry, scans, angles = drive
    poses, records, clouds = _live(m, odometry, scans, angles, set())
    first = min(s for s in clouds if s > min(clouds))
    lost = next(i for i, (s, _) in enumerate(scans) if s > first and s in records)
    events, _ = _recording(odometry, scans, records, clouds, set(), lost_scans={lost})
    rerun, missing = _rerun_on_records(m, events, angles)
    assert missing == [scans[lost][0]]
    assert scans[lost][0] not in rerun and len(rerun) == len([s for s in poses if s > first]) - 1


def test_records_scans_and_clouds_in_any_order():
    replay = RecordedUpdates()
    cloud = np.zeros((3, 3))
    replay.add_cloud(100, cloud)                 # latched before the recording: no record at 100
    replay.add_cloud(150, cloud)                 # its record is recorded, its scan not (/scan matched later)
    replay.add_record(150, (1.5, 0.0, 0.0))
    replay.add_scan(170, 'scan 170')
    replay.add_cloud(200, cloud)
    replay.add_scan(200, 'scan 200')
    assert list(replay.ready()) == []
    replay.add_record(250, (2.5, 0.0, 0.0))     # the record before its scan
    replay.add_record(200, (2.0, 0.0, 0.0))
    actions = list(replay.ready())
    assert [type(a) for a in actions] == [Start] and actions[0].stamp == 200 and actions[0].odom == (2.0, 0.0, 0.0)
    replay.add_scan(240, 'not updated on live')
    replay.add_scan(250, 'scan 250')
    actions = list(replay.ready())
    assert actions == [Update(250, 'scan 250', (2.5, 0.0, 0.0))]
    replay.add_record(300, (3.0, 0.0, 0.0))
    replay.add_scan(310, 'scan 310')             # a later scan came: 300 was not recorded
    assert list(replay.ready()) == [Missing(300)] and replay.missing == 1
    replay.add_cloud(400, cloud)                 # started: later clouds are not needed
    replay.add_record(290, (0.0, 0.0, 0.0))     # before the last update taken: ignored
    assert list(replay.ready()) == []


def test_what_waits_is_bounded():
    replay = RecordedUpdates(max_held=10)
    for k in range(100):
        replay.add_scan(k, k)
        replay.add_record(k + 1000, (0.0, 0.0, 0.0))
        replay.add_cloud(k + 5000, np.zeros((1, 3)))
    assert len(replay._scans) == len(replay._records) == len(replay._clouds) == 10
