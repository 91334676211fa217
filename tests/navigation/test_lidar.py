"""The simulated lidar: exact grid ray casting and people discs against brute-force references."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nav_maps_support import box_map  # noqa: E402

from retail_navigation.lidar import (LidarConfig, ScanStamper, SimLidar, StampFault, cast_circles, cast_grid,  # noqa: E402
                                     scan_points)
from retail_navigation.maps import OCCUPIED_AT, StoreMap  # noqa: E402


def brute_force(store_map, x, y, angle, max_range, step=0.0005):
    """March in tiny steps until a point falls in an occupied cell (or leaves the grid)."""
    for k in range(1, int(max_range / step) + 1):
        t = k * step
        i, j = store_map.world_to_cell(x + t * math.cos(angle), y + t * math.sin(angle))
        if not store_map.in_bounds(i, j):
            return math.inf
        if store_map.grid[j, i] >= OCCUPIED_AT:
            return t
    return math.inf


@pytest.mark.parametrize('origin_yaw', [0.0, 0.3])
def test_grid_ray_casting_matches_brute_force(origin_yaw):
    m = box_map()
    m = StoreMap(grid=m.grid, resolution=m.resolution, origin=(m.origin[0], m.origin[1], origin_yaw))
    rng = np.random.default_rng(3)
    occupied = m.grid >= OCCUPIED_AT
    checked = 0
    while checked < 6:
        x, y = rng.uniform(0.5, 9.5), rng.uniform(0.5, 7.5)
        if not m.is_free_world(x, y):
            continue
        angles = rng.uniform(-math.pi, math.pi, 25)
        fast = cast_grid(occupied, m, x, y, angles, 12.0)
        for a, r in zip(angles, fast):
            ref = brute_force(m, x, y, a, 12.0)
            assert (math.isinf(r) and math.isinf(ref)) or abs(r - ref) < 0.002, (x, y, a, r, ref)
        checked += 1


def test_beyond_max_range_is_inf_and_inside_an_obstacle_is_zero():
    m = box_map(width_m=30.0, height_m=4.0, shelves=())
    occupied = m.grid >= OCCUPIED_AT
    r = cast_grid(occupied, m, 1.0, 2.0, np.array([0.0, math.pi]), 12.0)
    assert math.isinf(r[0]) and abs(r[1] - 1.0) < 1e-6      # the far wall is 29 m away, the near one 1 m
    assert (cast_grid(occupied, m, -0.05, 2.0, np.array([0.0, 1.0]), 12.0) == 0).all()


def test_circles_against_geometry():
    circles = np.array([[3.0, 0.0, 0.5], [0.0, 2.0, 0.25]])
    r = cast_circles(circles, 0.0, 0.0, np.array([0.0, math.pi / 2, math.pi, math.atan2(0.4, 3.0)]))
    assert r[0] == pytest.approx(2.5)
    assert r[1] == pytest.approx(1.75)
    assert math.isinf(r[2])                                  # behind: nothing
    d = math.hypot(3.0, 0.4)
    b = 3.0 * 3.0 / d                                          # projection of the centre on the beam
    assert r[3] == pytest.approx(b - math.sqrt(0.25 - (9.0 + 0.0 - b * b)), abs=1e-9)


def test_simulated_scan_has_the_sensor_limits_noise_and_mount():
    m = box_map(shelves=())
    config = LidarConfig(mount=(0.1, 0.0, math.pi / 2), noise_std=0.01)
    lidar = SimLidar(m, config, seed=1)
    ranges = lidar.scan((5.0, 4.0, 0.0))
    assert ranges.shape == (360,)
    # beam 180 points along the laser's x axis = the robot's +y (mounted turned by 90 deg): wall at y = 8
    assert abs(ranges[180] - 4.0) < 0.05
    exact = SimLidar(m, LidarConfig(mount=(0.1, 0.0, math.pi / 2), noise_std=0.0)).scan((5.0, 4.0, 0.0))
    noise = (ranges - exact)[np.isfinite(exact)]
    assert 0.005 < float(np.std(noise)) < 0.015
    people = np.array([[5.1, 4.5, 0.2]])                       # someone 0.5 m to the left of the laser
    seen = lidar.scan((5.0, 4.0, 0.0), people)
    assert abs(seen[180] - 0.3) < 0.05
    close = SimLidar(m, config).scan((5.0, 4.0, 0.0), np.array([[5.1, 4.12, 0.05]]))
    assert np.isneginf(close[180])                             # inside the blind zone: -inf (REP-117)
    nan_driver = LidarConfig(mount=(0.1, 0.0, math.pi / 2), too_close='nan')
    assert np.isnan(SimLidar(m, nan_driver).scan((5.0, 4.0, 0.0), np.array([[5.1, 4.12, 0.05]]))[180])
    points = scan_points(exact, config.angle_min, config.angle_increment, 0.15, 12.0)
    assert len(points) == np.isfinite(exact).sum()


def test_a_short_range_lidar_reads_plus_inf_beyond_its_range():
    m = box_map(width_m=30.0, height_m=20.0, shelves=())
    ranges = SimLidar(m, LidarConfig(range_max=3.0)).scan((15.0, 10.0, 0.0))
    assert np.isposinf(ranges).all()


@pytest.mark.parametrize('fault, expect', [
    ('', [100.0, 100.1, 100.2, 100.3]),
    ('late:3', [97.0, 97.1, 97.2, 97.3]),
    ('future:1.5', [101.5, 101.6, 101.7, 101.8]),
    ('zero', [0.0, 0.0, 0.0, 0.0]),
    ('frozen:0.15', [100.0, 100.1, 100.1, 100.1]),      # the last scan again, with its old stamp
])
def test_stamp_faults_of_lidar_drivers(fault, expect):
    stamper = ScanStamper(StampFault.parse(fault))
    out = [stamper(100.0 + 0.1 * k, np.full(3, float(k))) for k in range(4)]
    assert [s for s, _ in out] == pytest.approx(expect)
    if fault.startswith('frozen'):
        assert out[3][1].tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize('text', ['melted', 'late:x', 'late:-1', 'frozen:1e9'])
def test_a_bad_stamp_fault_is_refused_in_one_line(text):
    with pytest.raises(ValueError, match='lidar fault'):
        StampFault.parse(text)
