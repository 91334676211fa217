"""Costmap obstacle layer from the lidar (marking, ray-traced clearing, decay), replanning around a
blocked aisle, slowing and stopping for obstacles, and a person standing in front at the start."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from retail_navigation.costmap import Costmap
from retail_navigation.follower import FollowerConfig, PathFollower
from retail_navigation.guide import GuideConfig, Mission, Stop
from retail_navigation.lidar import LidarConfig, SimLidar
from retail_navigation.maps import load_map
from retail_navigation.planner import GlobalPlanner
from retail_navigation.sim_world import paint_objects

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo_map():
    return load_map(DEMO / 'map.yaml')


def feed(costmap, lidar, pose, now, circles=None):
    ranges = lidar.scan(pose, circles).astype(float)
    angles = pose[2] + lidar.config.angles()
    hit = np.isfinite(ranges)
    usable = hit | np.isposinf(ranges)
    costmap.update_scan(pose[:2], angles[usable], np.where(hit, ranges, 12.0)[usable], hit[usable], now)


def integrate(pose: list, tick, dt: float) -> None:
    pose[0] += tick.vx * math.cos(pose[2]) * dt
    pose[1] += tick.vx * math.sin(pose[2]) * dt
    pose[2] += tick.wz * dt


def test_marks_what_is_not_on_the_map_clears_by_ray_tracing_and_decays(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12, scan_decay_s=3.0)
    lidar = SimLidar(demo_map, LidarConfig(noise_std=0.005), seed=1)
    pose = (12.0, 3.0, 0.0)
    feed(costmap, lidar, pose, 0.0)
    assert not [o for o in costmap.dynamic if o.kind == 'scan'], 'shelves and walls of the map are not obstacles'
    person = np.array([[14.0, 3.0, 0.25]])
    feed(costmap, lidar, pose, 0.1, person)
    marked = [o for o in costmap.dynamic if o.kind == 'scan']
    assert marked and all(13.6 < o.x < 14.1 and abs(o.y - 3.0) < 0.35 for o in marked)
    assert not costmap.is_traversable(13.5, 3.0)
    feed(costmap, lidar, pose, 0.2)                           # they walked away: the beams pass through
    assert not [o for o in costmap.dynamic if o.kind == 'scan']
    assert costmap.is_traversable(13.5, 3.0)
    feed(costmap, lidar, pose, 0.3, person)                   # seen once, then never looked at again
    costmap.expire(2.0)
    assert [o for o in costmap.dynamic if o.kind == 'scan']
    costmap.expire(3.5)
    assert not [o for o in costmap.dynamic if o.kind == 'scan']


def test_replans_around_a_trolley_blocking_the_aisle(demo_map):
    # the aisle between the computer gondolas (y 7.3 .. 9.3) is blocked by a trolley across it
    world = paint_objects(demo_map, [(13.2, 7.3, 13.8, 9.3)])
    lidar_clear = SimLidar(demo_map, LidarConfig(), seed=2)
    lidar_trolley = SimLidar(world, LidarConfig(), seed=2)    # pushed into the aisle after a second
    costmap = Costmap(demo_map, 0.18, 0.12, scan_decay_s=5.0)
    planner = GlobalPlanner(costmap)
    goal = (15.0, 8.3, 0.0)
    mission = Mission('guide', [Stop('computers', goal)], planner,
                      config=GuideConfig(replan_after_s=1.0, blocked_timeout_s=30.0), period_s=0.1)
    pose, now, states, min_gap = [11.0, 8.3, 0.0], 0.0, [], math.inf
    while now < 150:
        feed(costmap, lidar_trolley if now >= 1.0 else lidar_clear, tuple(pose), now)
        costmap.expire(now)
        tick = mission.step(now, tuple(pose))
        states.append(tick.state)
        if tick.outcome:
            break
        integrate(pose, tick, 0.1)
        min_gap = min(min_gap, max(13.2 - pose[0], pose[0] - 13.8) if 7.3 < pose[1] < 9.3 else math.inf)
        now += 0.1
    assert tick.outcome is not None and tick.outcome.reason == 'arrived', states[-5:]
    assert 'waiting_for_obstacle' in states or 'replanning' in states
    assert min_gap > 0.18                                     # never drove through the trolley
    assert math.dist(pose[:2], goal[:2]) < 0.2


def test_follower_slows_near_and_stops_for_an_obstacle_on_its_path(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12)
    lidar = SimLidar(demo_map, LidarConfig(noise_std=0.0))
    follower = PathFollower(FollowerConfig())
    follower.set_path([(12.0, 3.0), (18.0, 3.0)])
    for _ in range(40):
        free = follower.step((12.0, 3.0, 0.0), 0.1, costmap)
    aside = np.array([[12.9, 3.9, 0.25]])                     # someone beside the way
    feed(costmap, lidar, (12.0, 3.0, 0.0), 0.0, aside)
    follower2 = PathFollower(FollowerConfig())
    follower2.set_path([(12.0, 3.0), (18.0, 3.0)])
    for _ in range(40):
        slowed = follower2.step((12.0, 3.0, 0.0), 0.1, costmap)
    assert slowed.state == 'driving' and slowed.vx < 0.8 * free.vx
    feed(costmap, lidar, (12.0, 3.0, 0.0), 0.1, np.array([[13.2, 3.0, 0.25]]))
    assert follower2.step((12.0, 3.0, 0.0), 0.1, costmap).state == 'waiting_for_obstacle'


def test_person_in_front_at_the_start_is_asked_to_step_aside_and_the_robot_goes_around(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12, person_decay_s=1e9)
    planner = GlobalPlanner(costmap)
    start = (12.0, 3.0, 0.0)
    person = (12.45, 3.0)                                     # 45 cm ahead, between the robot and the goal
    costmap.set_people([person], 0.0)
    goal = (18.0, 3.0, 0.0)
    mission = Mission('guide', [Stop('checkout', goal)], planner, config=GuideConfig(blocked_timeout_s=15.0),
                      period_s=0.1)
    pose, now, states, closest = list(start), 0.0, [], math.inf
    while now < 60:
        tick = mission.step(now, tuple(pose))
        states.append(tick.state)
        if tick.outcome:
            break
        integrate(pose, tick, 0.1)
        closest = min(closest, math.dist(pose[:2], person))
        now += 0.1
    assert states[0] == 'asking_to_step_aside'
    assert tick.outcome.reason == 'arrived' and now < 45     # 6 m, slowly past the person, not a 15 s wait
    assert closest >= 0.45 - 1e-3                             # never closer to them than at the start


# --- REP-117 readings in the obstacle layer (issue 21: -inf "too close" was discarded) ------------
ROBOT = (12.0, 3.0, 0.0)
LASER = (12.1, 3.0, 0.0)                                      # mounted 10 cm ahead of the centre
BEAMS = 360
ANGLE_MIN, INCREMENT = -math.pi, 2 * math.pi / BEAMS
RANGE_MIN, RANGE_MAX = 0.15, 12.0


def beam_angles() -> np.ndarray:
    return ANGLE_MIN + INCREMENT * np.arange(BEAMS)


def ahead(value: float, elsewhere: float = math.inf, half_angle: float = 0.5) -> np.ndarray:
    ranges = np.full(BEAMS, elsewhere)
    ranges[np.abs(beam_angles()) < half_angle] = value
    return ranges


def lay(costmap, ranges, now: float = 0.0, laser=LASER, robot=ROBOT) -> bool:
    return costmap.update_laser(laser, robot[:2], ranges, ANGLE_MIN, INCREMENT, RANGE_MIN, RANGE_MAX, now)


def scan_marks(costmap):
    return [o for o in costmap.dynamic if o.kind == 'scan']


def test_minus_inf_too_close_is_an_obstacle_at_range_min_but_never_in_the_robots_footprint(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12, scan_decay_s=1e9)
    assert lay(costmap, ahead(-math.inf))                     # a box at the bumper
    marks = scan_marks(costmap)
    assert marks, 'a -inf reading ahead must mark an obstacle'
    for o in marks:
        assert math.dist((o.x, o.y), LASER[:2]) < RANGE_MIN + costmap.scan_cell_m    # at range_min along the beam
        assert o.x > ROBOT[0]                                                         # ahead of the robot
        assert math.dist((o.x, o.y), ROBOT[:2]) >= costmap.robot_radius              # never its own footprint
    assert costmap.dynamic_blocked(*ROBOT[:2]).kind == 'scan'   # the mission asks and goes around it


def test_a_box_at_the_bumper_leaves_the_robot_a_way_out(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12, scan_decay_s=1e9)
    lay(costmap, ahead(-math.inf))
    goal = (10.0, 3.0, math.pi)                               # behind the robot
    assert costmap.is_traversable(*goal[:2])
    mission = Mission('guide', [Stop('behind', goal)], GlobalPlanner(costmap),
                      config=GuideConfig(blocked_timeout_s=15.0), period_s=0.1)
    pose, now = list(ROBOT), 0.0
    while now < 60:
        tick = mission.step(now, tuple(pose))
        if tick.outcome:
            break
        integrate(pose, tick, 0.1)
        now += 0.1
    assert tick.outcome is not None and tick.outcome.reason == 'arrived', tick.outcome
    assert pose[0] < 10.3


def test_minus_inf_from_a_laser_at_the_centre_marks_nothing_inside_the_footprint(demo_map):
    costmap = Costmap(demo_map, 0.18, 0.12)
    lay(costmap, ahead(-math.inf), laser=ROBOT)               # range_min 0.15 < the robot's radius
    assert scan_marks(costmap) == [] and costmap.is_traversable(*ROBOT[:2])


@pytest.mark.parametrize('reading,kept', [
    (math.inf, False),         # +inf: nothing within range_max: the beams pass through, the mark is cleared
    (math.nan, True),          # NaN: no information: neither an obstacle nor free space
    (0.0, True),               # finite below range_min (a driver's "no return"): invalid, ignored
    (1e308, True),             # finite beyond range_max: invalid, ignored
    (-1.0, True),              # negative: invalid, ignored
])
def test_plus_inf_is_free_and_invalid_readings_are_ignored(demo_map, reading, kept):
    costmap = Costmap(demo_map, 0.18, 0.12, scan_decay_s=1e9)
    lay(costmap, ahead(1.5))                                   # something 1.5 m ahead
    before = [(o.x, o.y) for o in scan_marks(costmap)]
    assert before and all(13.4 < x < 13.8 for x, _ in before)
    lay(costmap, np.full(BEAMS, reading), now=1.0)
    after = [(o.x, o.y) for o in scan_marks(costmap)]
    assert after == (before if kept else [])
