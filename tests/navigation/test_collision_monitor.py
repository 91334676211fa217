"""Collision monitor core: stop and slowdown polygons on raw laser points, growing with speed; stale scans."""
from __future__ import annotations

import numpy as np

from retail_navigation.collision_monitor import CollisionMonitor, MonitorConfig


def pts(*xy):
    return np.array(xy, dtype=float).reshape(-1, 2)


def test_points_in_the_stop_polygon_stop_the_robot():
    monitor = CollisionMonitor(MonitorConfig())
    d = monitor.decide(0.4, 0.2, pts((0.45, 0.0), (0.46, 0.05)), scan_age_s=0.05)
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stop')


def test_points_in_the_slowdown_polygon_scale_the_command():
    config = MonitorConfig()
    monitor = CollisionMonitor(config)
    d = monitor.decide(0.4, 0.2, pts((1.0, 0.1), (1.02, 0.12)), scan_age_s=0.05)
    assert d.action == 'slowdown'
    assert d.vx == config.slowdown_ratio * 0.4 and d.wz == config.slowdown_ratio * 0.2


def test_a_clear_way_passes_the_command_unchanged():
    monitor = CollisionMonitor()
    far_or_aside = pts((3.0, 0.0), (3.1, 0.0), (0.5, 0.9), (0.5, -0.9), (-0.5, 0.0), (-0.6, 0.0))
    d = monitor.decide(0.4, -0.3, far_or_aside, scan_age_s=0.05)
    assert (d.vx, d.wz, d.action) == (0.4, -0.3, 'pass')


def test_polygons_grow_with_speed():
    monitor = CollisionMonitor()
    obstacle = pts((0.45, 0.0), (0.46, 0.0))
    assert monitor.decide(0.1, 0.0, obstacle, 0.05).action == 'slowdown'
    assert monitor.decide(0.45, 0.0, obstacle, 0.05).action == 'stop'


def test_a_single_return_is_not_enough():
    assert CollisionMonitor().decide(0.4, 0.0, pts((0.3, 0.0)), 0.05).action == 'pass'


def test_stale_or_missing_scan_stops():
    monitor = CollisionMonitor(MonitorConfig(scan_timeout_s=0.5))
    assert monitor.decide(0.3, 0.0, pts((5.0, 0.0)), scan_age_s=0.8).action == 'stale'
    d = monitor.decide(0.3, 0.5, None, scan_age_s=float('inf'))
    assert (d.vx, d.wz, d.action) == (0.0, 0.0, 'stale')


def test_turning_on_the_spot_is_allowed_unless_something_touches_the_robot():
    monitor = CollisionMonitor()
    in_front = pts((0.35, 0.0), (0.36, 0.02))
    assert monitor.decide(0.0, 0.8, in_front, 0.05).action == 'pass'
    touching = pts((0.19, 0.0), (0.2, 0.01))
    assert monitor.decide(0.0, 0.8, touching, 0.05).action == 'stop'


def test_reversing_looks_behind():
    monitor = CollisionMonitor()
    behind = pts((-0.3, 0.0), (-0.31, 0.0))
    assert monitor.decide(-0.1, 0.0, behind, 0.05).action == 'stop'
    assert monitor.decide(0.1, 0.0, behind, 0.05).action == 'pass'
