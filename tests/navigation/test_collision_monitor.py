"""Collision monitor core: stop and slowdown polygons on raw laser points, growing with speed; sources judged
by their header stamps (frozen, late, future, zero); REP-117 ranges (-inf too close, +inf free, NaN invalid);
velocity commands that are not finite or absurd never pass, others are clamped."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retail_navigation.collision_monitor import (CollisionMonitor, MonitorConfig, Observation, ScanSource,
                                                 SourceConfig, rep117_points)

NOW = 1_765_000_000.0          # node clock [s]
LASER = (0.10, 0.0, 0.0)        # base_link -> laser
BEAMS = 360
ANGLE_MIN = -math.pi
INC = 2 * math.pi / BEAMS


def pts(*xy):
    return np.array(xy, dtype=float).reshape(-1, 2)


def seen(points):
    """Points from a source that looks all round (a beam every degree each way)."""
    every_degree = np.radians(np.arange(-60, 61))
    return [Observation('scan', points, angles_ahead=every_degree, angles_behind=every_degree)]


def scan(ranges=None, **beams):
    """360 beams of +inf (nothing in range) with some set: scan(front=0.5) puts 0.5 m on the beams
    within 10 deg of the laser's x axis; other keys: 'all'."""
    r = np.full(BEAMS, np.inf) if ranges is None else np.asarray(ranges, dtype=float)
    angles = ANGLE_MIN + INC * np.arange(BEAMS)
    if 'front' in beams:
        r[np.abs(angles) <= math.radians(10)] = beams['front']
    if 'front_wide' in beams:
        r[np.abs(angles) <= math.radians(70)] = beams['front_wide']
    return r


def source_with(ranges, stamp=NOW - 0.05, config=None):
    s = ScanSource('/scan', LASER, config or SourceConfig())
    assert s.update(stamp, ranges, ANGLE_MIN, INC, 0.15, 12.0) == ''
    return s


def decide(vx, wz, source, now=NOW, monitor=None):
    return (monitor or CollisionMonitor()).decide(vx, wz, [source.observe(now)])


# --- polygons -----------------------------------------------------------------------------------

def test_points_in_the_stop_polygon_stop_the_robot():
    d = CollisionMonitor().decide(0.4, 0.2, seen(pts((0.45, 0.0), (0.46, 0.05))))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stop')


def test_points_in_the_slowdown_polygon_scale_the_command():
    config = MonitorConfig()
    d = CollisionMonitor(config).decide(0.4, 0.2, seen(pts((1.0, 0.1), (1.02, 0.12))))
    assert d.action == 'slowdown'
    assert d.vx == config.slowdown_ratio * 0.4 and d.wz == config.slowdown_ratio * 0.2


def test_a_clear_way_passes_the_command_unchanged():
    far_or_aside = pts((3.0, 0.0), (3.1, 0.0), (0.5, 0.9), (0.5, -0.9), (-0.5, 0.0), (-0.6, 0.0))
    d = CollisionMonitor().decide(0.4, -0.3, seen(far_or_aside))
    assert (d.vx, d.wz, d.action) == (0.4, -0.3, 'pass')


def test_a_shelf_the_guide_passes_at_its_clearance_does_not_slow_it_but_a_person_ahead_does():
    """The guide plans robot_radius + safety_margin (0.18 + 0.12 m) clear of shelves; a slowdown zone
    wider than that slowed every aisle to 40 % (the store day's guide crawled at 0.1 m/s)."""
    monitor = CollisionMonitor()
    shelf_row = pts(*[(x / 10, side * 0.30) for x in range(0, 16) for side in (1, -1)])
    assert monitor.decide(0.45, 0.0, seen(shelf_row)).action == 'pass'
    person_ahead = pts((1.0, 0.05), (1.0, -0.05), (1.02, 0.0))
    assert monitor.decide(0.45, 0.0, seen(person_ahead)).action == 'slowdown'


def test_polygons_grow_with_speed():
    monitor = CollisionMonitor()
    obstacle = seen(pts((0.45, 0.0), (0.46, 0.0)))
    assert monitor.decide(0.1, 0.0, obstacle).action == 'slowdown'
    assert monitor.decide(0.45, 0.0, obstacle).action == 'stop'


def test_a_longer_stop_margin_reaches_further_from_the_next_command():
    """stop_margin_m changed on the running monitor (a desired state's safety_distance_m): the stop
    polygon reaches that much further and a person 0.6 m ahead, a slowdown before, is now a stop."""
    monitor = CollisionMonitor()
    person = seen(pts((0.6, 0.0), (0.61, 0.05)))
    before = monitor.config.polygon('stop', 0.4)[1]
    assert monitor.decide(0.4, 0.0, person).action == 'slowdown'
    monitor.set_stop_margin(0.5)
    assert monitor.config.polygon('stop', 0.4)[1] == pytest.approx(before + 0.4)
    d = monitor.decide(0.4, 0.0, person)
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stop')


def test_stop_margin_is_live_on_the_node_within_its_bounds(ros_context):
    """The node takes stop_margin_m while it runs (into the monitor it decides with) and refuses a
    value outside its ParamSpec bounds with the key named, keeping the old one."""
    from rclpy.parameter import Parameter

    from retail_navigation.collision_monitor_node import CollisionMonitorNode
    node = CollisionMonitorNode(context=ros_context)
    try:
        assert node.monitor.config.stop_margin_m == pytest.approx(0.10)
        refused = node.set_parameters_atomically([Parameter('stop_margin_m', value=2.5)])
        assert not refused.successful and 'stop_margin_m' in refused.reason
        assert node.monitor.config.stop_margin_m == pytest.approx(0.10)
        assert node.set_parameters_atomically([Parameter('stop_margin_m', value=0.5)]).successful
        assert node.monitor.config.stop_margin_m == pytest.approx(0.5)
    finally:
        node.destroy_node()


def test_a_single_return_is_not_enough():
    assert CollisionMonitor().decide(0.4, 0.0, seen(pts((0.3, 0.0)))).action == 'pass'


def test_turning_on_the_spot_is_allowed_unless_something_touches_the_robot():
    monitor = CollisionMonitor()
    assert monitor.decide(0.0, 0.8, seen(pts((0.35, 0.0), (0.36, 0.02)))).action == 'pass'
    assert monitor.decide(0.0, 0.8, seen(pts((0.19, 0.0), (0.2, 0.01)))).action == 'stop'


def test_reversing_looks_behind():
    monitor = CollisionMonitor()
    behind = seen(pts((-0.3, 0.0), (-0.31, 0.0)))
    assert monitor.decide(-0.1, 0.0, behind).action == 'stop'
    assert monitor.decide(0.1, 0.0, behind).action == 'pass'


# --- the age of a scan is its header stamp against the node clock --------------------------------

@pytest.mark.parametrize('stamp, words', [
    (NOW - 14.0, '14.00 s old by its stamp'),        # frozen driver republishing its last scan
    (NOW - 3.0, '3.00 s old by its stamp'),          # scans stamped 3 s late
    (NOW - 0.6, '0.60 s old by its stamp'),          # just beyond source_timeout
    (NOW + 5.0, 'in the future'),                    # lidar clock ahead
    (NOW + 0.5, 'in the future'),
    (0.0, 'no stamp'),                               # zero stamp
])
def test_a_scan_judged_stale_by_its_stamp_stops_the_robot_with_the_reason(stamp, words):
    source = source_with(scan(), stamp=stamp)             # a clear way: only the stamp is wrong
    d = decide(0.3, 0.2, source)
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stale')
    assert words in d.reason


@pytest.mark.parametrize('stamp', [NOW - 0.05, NOW - 0.45, NOW + 0.05])
def test_a_scan_fresh_by_its_stamp_lets_the_robot_drive(stamp):
    assert decide(0.3, 0.0, source_with(scan(), stamp=stamp)).action == 'pass'


def test_a_frozen_driver_republishing_the_same_scan_goes_stale_however_often_it_arrives():
    ranges = scan()
    source = source_with(ranges, stamp=NOW)
    for k in range(30):                               # 3 s of the same message arriving at 10 Hz
        source.update(NOW, ranges, ANGLE_MIN, INC, 0.15, 12.0)
        now = NOW + 0.1 * (k + 1)
        action = decide(0.3, 0.0, source, now=now).action
        assert action == ('pass' if now - NOW <= 0.5 else 'stale'), (now - NOW, action)


def test_no_scan_yet_and_no_source_stop():
    d = decide(0.3, 0.5, ScanSource('/scan'))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stale') and 'no scan yet' in d.reason
    assert CollisionMonitor().decide(0.3, 0.0, []).action == 'stale'


def test_every_source_follows_the_same_rule():
    good = source_with(scan(), stamp=NOW - 0.05)
    frozen = ScanSource('/scan_rear', (-0.1, 0.0, math.pi))
    frozen.update(NOW - 9.0, scan(), ANGLE_MIN, INC, 0.15, 12.0)
    d = CollisionMonitor().decide(0.3, 0.0, [good.observe(NOW), frozen.observe(NOW)])
    assert d.action == 'stale' and '/scan_rear' in d.reason


def test_an_older_scan_arriving_after_a_newer_one_is_ignored():
    source = source_with(scan(), stamp=NOW - 0.1)
    assert 'before the previous one' in source.update(NOW - 0.3, scan(front=0.3), ANGLE_MIN, INC, 0.15, 12.0)
    assert decide(0.3, 0.0, source).action == 'pass'


@pytest.mark.parametrize('kwargs, words', [
    ({'angle_increment': float('nan')}, 'non-finite'),
    ({'angle_increment': 0.0}, 'geometry'),
    ({'range_min': 5.0, 'range_max': 1.0}, 'geometry'),
    ({'ranges': []}, '0 ranges'),
])
def test_a_malformed_scan_stops_until_a_good_one_comes(kwargs, words):
    source = source_with(scan())
    args = dict(stamp_s=NOW, ranges=scan(), angle_min=ANGLE_MIN, angle_increment=INC, range_min=0.15, range_max=12.0)
    args.update(kwargs)
    assert words in source.update(**args)
    d = decide(0.3, 0.0, source)
    assert d.action == 'stale' and words in d.reason
    source.update(NOW, scan(), ANGLE_MIN, INC, 0.15, 12.0)
    assert decide(0.3, 0.0, source).action == 'pass'


# --- REP-117 ranges ---------------------------------------------------------------------------------

def test_rep117_reading_of_ranges():
    ranges = np.array([-np.inf, np.inf, np.nan, 0.0, 0.1, 0.5, 13.0])
    angles = np.zeros(len(ranges))
    points, _, invalid = rep117_points(ranges, angles, 0.15, 12.0)
    assert points[:, 0].tolist() == [0.15, 0.5]          # -inf at range_min; the 0.5 m return
    assert invalid.tolist() == [False, False, True, True, True, False, True]


def test_a_box_at_the_bumper_read_as_minus_inf_stops_0_3_m_s():
    """The laser sits 0.10 m behind the bumper's front (radius 0.18 at x 0.10): a box there is closer
    than range_min (0.15) and a REP-117 driver reports -inf across the front."""
    d = decide(0.3, 0.0, source_with(scan(front=-np.inf)))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stop')


def test_plus_inf_is_free_space():
    assert decide(0.3, 0.0, source_with(scan())).action == 'pass'


def test_nan_beams_are_ignored_but_a_front_full_of_them_is_not_trusted():
    few = scan(front=np.nan)                          # 21 of ~120 beams ahead: some dust on the window
    assert decide(0.3, 0.0, source_with(few)).action == 'pass'
    blinded = scan(front_wide=np.nan)                 # everything ahead invalid (a driver sending NaN for too close)
    d = decide(0.3, 0.0, source_with(blinded))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'blind') and 'ahead' in d.reason
    assert decide(-0.1, 0.0, source_with(blinded)).action == 'pass'   # the way behind is seen
    assert decide(0.0, 0.8, source_with(blinded)).action == 'pass'   # turning on the spot sweeps nothing


def test_zero_ranges_of_drivers_without_a_return_are_invalid_not_obstacles():
    zeros = scan(front=0.0)
    assert decide(0.3, 0.0, source_with(zeros)).action == 'pass'
    assert decide(0.3, 0.0, source_with(scan(front_wide=0.0))).action == 'blind'


def test_the_laser_mount_is_applied():
    turned = ScanSource('/scan', (0.0, 0.0, math.pi / 2))       # laser x axis = robot's left
    turned.update(NOW, scan(front=0.8), ANGLE_MIN, INC, 0.15, 12.0)
    assert decide(0.3, 0.0, turned).action == 'pass'            # the obstacle is to the left
    assert (turned.points[:, 1] > 0.78).all()
    straight = source_with(scan(front=0.8))
    assert decide(0.3, 0.0, straight).action == 'slowdown'      # the same obstacle straight ahead


# --- the command itself ---------------------------------------------------------------------------

@pytest.mark.parametrize('vx, wz', [
    (float('nan'), 0.0), (0.0, float('nan')), (float('inf'), 0.0), (float('-inf'), 0.0),
    (0.0, float('inf')), (1e308, 0.0), (-1e308, 0.0), (0.0, 1e308), (5.0, 0.0), (0.2, 40.0),
])
def test_non_finite_or_absurd_commands_never_pass(vx, wz):
    d = decide(vx, wz, source_with(scan()))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'invalid_command')
    assert 'velocity command' in d.reason
    assert math.isfinite(d.vx) and math.isfinite(d.wz)


@pytest.mark.parametrize('vx, wz, expected', [
    (0.9, 0.0, (0.7, 0.0)), (-0.3, 0.0, (-0.2, 0.0)), (0.2, 2.0, (0.2, 1.5)), (0.2, -2.5, (0.2, -1.5)),
])
def test_commands_over_the_limits_are_clamped(vx, wz, expected):
    d = decide(vx, wz, source_with(scan()))
    assert d.action == 'pass' and d.clamped
    assert (d.vx, d.wz) == pytest.approx(expected)


def test_an_invalid_command_is_refused_even_with_a_stale_scan_and_reported_as_such():
    d = decide(float('nan'), 0.0, ScanSource('/scan'))
    assert d.action == 'invalid_command'


# --- attack round (issue 21 variants the first fix missed) -------------------------------------------

@pytest.mark.parametrize('range_min', [0.05, 0.15, 0.30, 0.45, 0.60, 1.0])
@pytest.mark.parametrize('vx', [0.1, 0.3, 0.7])
def test_minus_inf_across_the_front_stops_whatever_the_lidars_blind_zone(range_min, vx):
    """REP-117 -inf says 'closer than range_min', not 'at range_min': with a lidar whose blind zone
    reaches past the stop polygon a box at the bumper let 0.12-0.28 m/s through (slowdown)."""
    s = ScanSource('/scan', LASER, SourceConfig())
    assert s.update(NOW - 0.05, scan(front=-np.inf), ANGLE_MIN, INC, range_min, 12.0) == ''
    d = decide(vx, 0.0, s)
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stop')


def test_minus_inf_at_the_bumper_still_lets_the_robot_turn_away():
    s = ScanSource('/scan', LASER, SourceConfig())
    s.update(NOW - 0.05, scan(front=-np.inf), ANGLE_MIN, INC, 0.6, 12.0)
    assert decide(0.0, 0.8, s).wz == 0.8


@pytest.mark.parametrize('ranges', [scan(front=0.14), scan(front_wide=np.nan), scan(front=-np.inf)],
                         ids=['wall at 0.24 m', 'blind ahead', 'minus inf ahead'])
@pytest.mark.parametrize('vx', [0.019, 0.01, 0.001])
def test_a_creep_under_the_turn_in_place_speed_never_moves_towards_what_is_ahead(ranges, vx):
    """A command just under turn_in_place_vx skipped the stop polygon and the blind check."""
    s = ScanSource('/scan', LASER, SourceConfig())
    assert s.update(NOW - 0.05, ranges, ANGLE_MIN, INC, 0.10, 12.0) == ''
    d = decide(vx, 0.5, s)
    assert d.vx == 0.0


def test_a_creep_on_a_clear_way_passes():
    assert decide(0.01, 0.5, source_with(scan())).vx == 0.01


@pytest.mark.parametrize('glitch', [1.0, 1000.0, 3e9])
def test_one_scan_stamped_in_the_future_does_not_hold_the_robot_for_good(glitch):
    """A single glitched stamp (GPS/PTP jump) was kept, and every later (correct, so older) scan was
    ignored as out of order: the robot stayed 'stale' until the wrong time was reached."""
    s = ScanSource('/scan', LASER, SourceConfig())
    assert s.update(NOW - 0.05, scan(), ANGLE_MIN, INC, 0.15, 12.0, now_s=NOW) == ''
    assert s.update(NOW + glitch, scan(), ANGLE_MIN, INC, 0.15, 12.0, now_s=NOW) == ''
    assert decide(0.3, 0.0, s).action == 'stale'
    assert s.update(NOW + 0.05, scan(), ANGLE_MIN, INC, 0.15, 12.0, now_s=NOW + 0.1) == ''
    assert decide(0.3, 0.0, s, now=NOW + 0.1).action == 'pass'


def test_an_older_scan_is_still_ignored_when_the_kept_one_is_not_from_the_future():
    s = ScanSource('/scan', LASER, SourceConfig())
    assert s.update(NOW, scan(), ANGLE_MIN, INC, 0.15, 12.0, now_s=NOW) == ''
    assert 'before the previous' in s.update(NOW - 0.2, scan(front=0.5), ANGLE_MIN, INC, 0.15, 12.0, now_s=NOW)


@pytest.mark.parametrize('frame', ['rear_laser', 'base_scan', '', 'laser2'])
def test_a_scan_from_another_lidar_on_the_topic_is_never_read_as_this_ones(frame):
    """Attack round: the frame_id was ignored, so a second lidar publishing on /scan (a rear one
    with nothing behind the robot) was read as the front lidar, with fresh stamps."""
    s = ScanSource('/scan', LASER, SourceConfig(), frame='laser')
    assert s.update(NOW - 0.05, scan(front=0.3), ANGLE_MIN, INC, 0.15, 12.0, frame_id='laser') == ''
    assert 'frame' in s.update(NOW, scan(), ANGLE_MIN, INC, 0.15, 12.0, frame_id=frame)
    d = decide(0.3, 0.0, s)
    assert (d.vx, d.action) == (0.0, 'stale') and 'another lidar' in d.reason
    assert s.update(NOW, scan(), ANGLE_MIN, INC, 0.15, 12.0, frame_id='/laser') == ''   # its own frame again
    assert decide(0.3, 0.0, s).action == 'pass'


# --- what no beam looks at is not free (attack, session 12) ----------------------------------------

def _source(ranges, angle_min, inc, rmin=0.05, rmax=12.0, mount=(0.1, 0.0, 0.0)):
    s = ScanSource('scan', mount, frame='laser')
    assert s.update(NOW, ranges, angle_min, inc, rmin, rmax, now_s=NOW, frame_id='laser') == ''
    return s


def test_a_scan_with_no_beam_ahead_is_blind_forwards():
    s = _source([5.0], math.pi, 0.01)                  # one beam, looking backwards
    d = CollisionMonitor().decide(0.5, 0.0, [s.observe(NOW)])
    assert (d.vx, d.action) == (0.0, 'blind') and 'no beam looks at' in d.reason, d


def test_a_scan_cropped_to_one_side_of_the_way_is_blind_and_creeps_nowhere():
    angles = np.radians(np.arange(0, 180))              # only the left half
    s = _source(np.full(len(angles), np.inf), float(angles[0]), math.radians(1))
    assert CollisionMonitor().decide(0.3, 0.0, [s.observe(NOW)]).action == 'blind'
    turning = CollisionMonitor().decide(0.01, 0.5, [s.observe(NOW)])
    assert (turning.vx, turning.wz) == (0.0, 0.5)        # turning on the spot sweeps nothing; no creep


def test_a_front_lidar_drives_forwards_but_not_backwards():
    angles = np.radians(np.arange(-135, 136))           # a 270 degree lidar looking forwards
    s = _source(np.full(len(angles), np.inf), float(angles[0]), math.radians(1))
    assert CollisionMonitor().decide(0.5, 0.0, [s.observe(NOW)]).action == 'pass'
    assert CollisionMonitor().decide(-0.1, 0.0, [s.observe(NOW)]).action == 'blind'


def test_a_sparse_scan_is_blind_and_a_second_source_can_fill_its_gaps():
    sparse = _source(np.full(45, np.inf), -math.pi, math.radians(8))   # a beam every 8 degrees
    assert CollisionMonitor().decide(0.3, 0.0, [sparse.observe(NOW)]).action == 'blind'
    offset = _source(np.full(45, np.inf), -math.pi + math.radians(4), math.radians(8))
    assert CollisionMonitor().decide(0.3, 0.0, [sparse.observe(NOW), offset.observe(NOW)]).action == 'pass'


@pytest.mark.parametrize('angle_min, inc, n', [(1e17, 2 * math.pi / 360, 360),       # every beam one direction
                                               (-math.pi, 0.1, 360),                   # 36 radians of beams
                                               (-20.0, 2 * math.pi / 360, 360)])
def test_a_scan_beyond_a_turn_is_malformed_and_stops(angle_min, inc, n):
    s = ScanSource('scan', (0.1, 0.0, 0.0))
    assert 'more than a turn' in s.update(NOW, [0.3] * n, angle_min, inc, 0.05, 12.0, now_s=NOW)
    d = CollisionMonitor().decide(0.5, 0.0, [s.observe(NOW)])
    assert (d.vx, d.action) == (0.0, 'stale'), d


@pytest.mark.parametrize('rmax', [0.3, 0.12])
def test_inf_past_a_range_max_shorter_than_the_stop_zone_is_not_free(rmax):
    s = _source([math.inf] * 360, -math.pi, 2 * math.pi / 360, rmax=rmax)
    d = CollisionMonitor().decide(0.7, 0.0, [s.observe(NOW)])
    assert (d.vx, d.action) == (0.0, 'blind') and 'range_max' in d.reason, d
    turning = CollisionMonitor().decide(0.01, 0.5, [s.observe(NOW)])
    assert turning.vx == 0.0


def test_a_short_range_lidar_caps_the_speed_to_the_stop_zone_it_sees():
    monitor = CollisionMonitor()
    s = _source([math.inf] * 360, -math.pi, 2 * math.pi / 360, rmax=0.6)   # sees 0.5 m from the centre
    d = monitor.decide(0.7, 0.0, [s.observe(NOW)])
    x_near, x_far, half_width = monitor.config.polygon('stop', d.vx)
    assert 0.0 < d.vx < 0.7 and d.clamped, d
    assert math.hypot(x_far, half_width) == pytest.approx(0.5)    # its far corner just seen
    assert monitor.decide(0.1, 0.0, [s.observe(NOW)]).vx == 0.1  # slower than the cap: untouched
    far = _source([math.inf] * 360, -math.pi, 2 * math.pi / 360, rmax=12.0)
    assert monitor.decide(0.7, 0.0, [far.observe(NOW)]).vx == 0.7


def test_a_second_publisher_on_the_scan_topic_stops_the_robot(ros_context, spin):
    """Attack (session 13): two lidar drivers on /scan in the same frame (a driver started twice, a
    bench lidar on the robot's graph): the monitor judged each command on whichever scan came last,
    so a lidar that does not see the person in front let every other command through at full speed.
    The frame check cannot tell them apart; two publishers on the topic stop the robot."""
    from geometry_msgs.msg import Twist
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import LaserScan

    from retail_navigation.collision_monitor_node import CollisionMonitorNode
    from rostest_support import wait_for
    monitor = CollisionMonitorNode(context=ros_context, parameter_overrides=[Parameter('laser_tf_timeout_s', value=0.1)])
    rig = Node('scan_rig', context=ros_context)
    lidars = [rig.create_publisher(LaserScan, '/scan', qos_profile_sensor_data) for _ in range(2)]
    guide = rig.create_publisher(Twist, '/navigation/guide/cmd_vel', 10)
    out: list[float] = []
    rig.create_subscription(Twist, '/cmd_vel', lambda m: out.append(m.linear.x), 50)

    def tick() -> None:
        for lidar, person_at in zip(lidars, (0.4, math.inf)):          # only the first sees the person
            msg = LaserScan()
            msg.header.frame_id = 'laser'
            msg.header.stamp = rig.get_clock().now().to_msg()
            msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max = ANGLE_MIN, INC, 0.15, 12.0
            msg.ranges = [float(r) for r in scan(front=person_at)]
            lidar.publish(msg)
        twist = Twist()
        twist.linear.x = 0.3
        guide.publish(twist)
    rig.create_timer(0.05, tick)
    spin(monitor, rig)
    wait_for(lambda: monitor.count_publishers('/scan') == 2 and monitor.laser_mount.value is not None, 10,
             'the monitor seeing both lidars and knowing the mount')
    start = len(out)
    wait_for(lambda: len(out) >= start + 60, 20, 'three seconds of checked commands')
    assert max(out[start:]) == 0.0
