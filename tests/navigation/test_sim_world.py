"""The honest simulator: odometry drift like a shop floor, shoppers, objects not on the map, contacts,
and one simulator per link."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nav_maps_support import box_map  # noqa: E402

from retail_navigation import protocol as p  # noqa: E402
from retail_navigation.base_sim import Drift, SimConfig, SimulatedBase  # noqa: E402
from retail_navigation.lidar import LidarConfig, SimLidar  # noqa: E402
from retail_navigation.odometry import Odometry  # noqa: E402
from retail_navigation.pty_sim import LinkBusy, PtySimulator  # noqa: E402
from retail_navigation.sim_world import SimWorld, parse_rects  # noqa: E402
from rostest_support import wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def run_base(base, vx, wz, seconds, odom):
    left, right = vx - wz * p.WHEELBASE_M / 2, vx + wz * p.WHEELBASE_M / 2
    base.state.left.target, base.state.right.target = left, right
    for _ in range(int(seconds / 0.02)):
        base.step(0.02)
        b = base.feedback_items()
        basic, inertial = b[0], b[2]
        odom.update(basic.left_encoder, basic.right_encoder, inertial.angle_rad, base.state.time_ms / 1000)


def test_drift_makes_odometry_wrong_by_a_shop_floors_share():
    base = SimulatedBase(None, (0.0, 0.0, 0.0), SimConfig(drift=Drift.shop_floor(seed=1)))
    odom = Odometry()
    run_base(base, 0.4, 0.0, 25.0, odom)                    # 10 m straight
    true_distance = math.hypot(base.state.x, base.state.y)
    error = abs(math.hypot(odom.pose.x, odom.pose.y) - true_distance) / true_distance
    assert 0.008 < error < 0.025, error
    # a minute standing still: the gyro's heading wanders by its bias (~0.5-1 deg/min)
    before = odom.pose.theta
    base.state.left.target = base.state.right.target = 0.0
    run_base(base, 0.0, 0.0, 60.0, odom)
    drift_deg = abs(math.degrees(math.remainder(odom.pose.theta - before, math.tau)))
    assert 0.2 < drift_deg < 2.5, drift_deg
    assert abs(base.state.theta) < 1e-9                       # while the robot itself did not turn


def test_without_drift_odometry_is_exact():
    base = SimulatedBase(None, (0.0, 0.0, 0.0), SimConfig())
    odom = Odometry()
    run_base(base, 0.4, 0.0, 10.0, odom)
    assert abs(odom.pose.x - base.state.x) < 0.002


def test_shoppers_walk_between_places_at_walking_speed_and_stop_at_shelves():
    m = box_map()
    places = [(1.5, 1.0), (8.5, 6.5), (5.0, 3.5), (1.5, 7.0)]
    world = SimWorld(m, places, people=4, seed=3)
    positions = [world.circles()[:, :2].copy()]
    states = set()
    for _ in range(1200):                                     # 60 s at 20 Hz
        world.step(0.05)
        positions.append(world.circles()[:, :2].copy())
        states.update(s.state for s in world.shoppers)
    track = np.array(positions)                               # [t, person, 2]
    speeds = np.hypot(*np.diff(track, axis=0).transpose(2, 0, 1)) / 0.05
    moving = speeds[speeds > 0.01]
    assert len(moving) and 0.45 <= np.percentile(moving, 5) and moving.max() <= 1.25   # a path's last step is short
    assert {'walking', 'browsing'} <= states
    for s in world.shoppers:                                  # never inside a shelf
        assert m.is_free_world(s.x, s.y)


def test_a_trolley_not_on_the_map_is_seen_by_the_lidar_and_bumps_the_base():
    m = box_map(shelves=())
    world = SimWorld(m, [(1.0, 1.0)], objects=parse_rects('5.0,3.5,5.6,4.5'))
    assert not m.is_occupied_world(5.2, 4.0) and world.world_map.is_occupied_world(5.2, 4.0)
    scan = SimLidar(world.world_map, LidarConfig(noise_std=0.0)).scan((3.0, 4.0, 0.0))
    assert abs(scan[180] - 2.0) < 0.06
    base = SimulatedBase(world.world_map, (4.0, 4.0, 0.0), SimConfig(), world=world)
    base.state.left.target = base.state.right.target = 0.3
    for _ in range(400):
        base.step(0.02)
    assert base.state.x < 5.0 - 0.18 + 0.01
    assert base.feedback_items()[0].bumper & p.BUMPER_CENTRE


def test_driving_into_a_shopper_is_a_counted_contact_and_a_bumper_press():
    m = box_map(shelves=())
    world = SimWorld(m, [(5.0, 4.0)], people=1, seed=1)
    shopper = world.shoppers[0]
    shopper.x, shopper.y, shopper.state, shopper.until = 5.0, 4.0, 'browsing', 1e9
    base = SimulatedBase(m, (3.0, 4.0, 0.0), SimConfig(), world=world)
    base.state.left.target = base.state.right.target = 0.3
    for _ in range(500):
        base.step(0.02)
    assert world.contacts == 1
    assert base.feedback_items()[0].bumper & p.BUMPER_CENTRE
    assert math.hypot(base.state.x - 5.0, base.state.y - 4.0) >= 0.18 + world.person_radius - 0.01


def test_parse_rects_reports_the_bad_part():
    assert parse_rects('1,2,3,4; 5,6,4,5') == [(1.0, 2.0, 3.0, 4.0), (4.0, 5.0, 5.0, 6.0)]
    with pytest.raises(ValueError, match="'1,2,x,4'"):
        parse_rects('1,2,x,4')


def test_a_second_simulator_on_the_same_link_refuses_and_removes_nothing(tmp_path):
    link = tmp_path / 'base'
    first = PtySimulator(SimulatedBase(), link).start()
    try:
        target = link.resolve()
        second = PtySimulator(SimulatedBase(), link)
        with pytest.raises(LinkBusy, match='already used by a running base simulator'):
            second.start()
        second.stop()                                         # a refused simulator stops cleanly ...
        assert link.resolve() == target and Path(str(link) + '.ctl').exists()   # ... and deleted nothing
        assert first.handle_control({'cmd': 'state'})['ok']
    finally:
        first.stop()
    assert not link.exists() and not Path(str(link) + '.ctl').exists()
    again = PtySimulator(SimulatedBase(), link).start()      # the path is free again
    again.stop()


def test_retailbot_base_sim_twice_on_one_link_the_second_refuses_with_one_line(tmp_path):
    link = tmp_path / 'base'
    exe = str(Path(sys.executable).with_name('retailbot'))
    first = subprocess.Popen([exe, 'base', 'sim', '--link', str(link)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: Path(str(link) + '.ctl').exists(), 20.0, 'the first simulator')
        second = subprocess.run([exe, 'base', 'sim', '--link', str(link)], capture_output=True, text=True,
                                timeout=30)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and 'already used by a running base simulator' in lines[0], second.stderr
        assert link.exists() and first.poll() is None
    finally:
        first.terminate()
        first.wait(10)
    assert not link.exists()


@pytest.mark.parametrize('args, words', [
    (['--lidar-fault', 'melted'], 'lidar fault'),
    (['--lidar-fault', 'late:soon'], 'not a number'),
    (['--lidar-range', '0.1'], '--lidar-range'),
])
def test_the_simulators_lidar_faults_are_checked_with_one_line(tmp_path, args, words):
    exe = str(Path(sys.executable).with_name('retail_navigation_base_sim'))
    run = subprocess.run([exe, '--link', str(tmp_path / 'base'), '--map', str(REPO / 'config/stores/demo/map.yaml'),
                          *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], run.stderr
    assert not (tmp_path / 'base').exists()


@pytest.mark.parametrize('seed', range(6))
def test_shoppers_never_walk_into_a_robot_standing_on_their_way_or_their_shelf(seed):
    """A robot standing still cannot avoid anyone: a contact is the simulated shopper's doing, and
    people do not walk into a robot they face (the store day once counted one after a tour ended)."""
    m = box_map()
    places = [(1.5, 1.0), (8.5, 6.5), (5.0, 3.5), (1.5, 7.0)]
    robot = (5.0, 3.5, 0.0)                                   # on a shelf's spot, in everyone's way
    world = SimWorld(m, places, people=6, seed=seed)
    for _ in range(2400):                                     # 120 s at 20 Hz
        world.step(0.05, robot, 0.18)
        world.touching(robot, 0.18)
    assert world.contacts == 0
