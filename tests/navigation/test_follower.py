"""Regulated pure pursuit and the mission state machine, driven by a perfect unicycle."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_navigation.costmap import Costmap, exact_clearance
from retail_navigation.follower import FollowerConfig, PathFollower
from retail_navigation.guide import GuideConfig, Mission, Stop
from retail_navigation.maps import load_map
from retail_navigation.planner import GlobalPlanner

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def store():
    store_map = load_map(DEMO / 'map.yaml')
    return store_map, load_store(DEMO).zones


def drive(follower, pose, costmap=None, dt=0.05, limit_s=120.0):
    pose, t, log = list(pose), 0.0, []
    while t < limit_s:
        command = follower.step(tuple(pose), dt, costmap)
        command.x = pose[0]
        log.append(command)
        if command.state in ('arrived', 'waiting_for_obstacle'):
            break
        integrate(pose, command, dt)
        t += dt
    return tuple(pose), log


def integrate(pose: list, command, dt: float) -> None:
    """A perfect unicycle obeying `command` (vx, wz) for dt."""
    pose[0] += command.vx * math.cos(pose[2]) * dt
    pose[1] += command.vx * math.sin(pose[2]) * dt
    pose[2] += command.wz * dt


def test_follows_a_demo_route_to_the_goal_pose_within_limits(store):
    store_map, zones = store
    costmap = Costmap(store_map, 0.18, 0.12)
    plan = GlobalPlanner(costmap).plan(zones['dock'].pose[:2], zones['vip_lounge'].pose[:2])
    config = FollowerConfig()
    follower = PathFollower(config)
    follower.set_path(plan.path, zones['vip_lounge'].pose[2])
    pose, log = drive(follower, zones['dock'].pose, costmap)
    assert log[-1].state == 'arrived'
    assert math.dist(pose[:2], zones['vip_lounge'].pose[:2]) <= config.goal_tolerance_m
    assert abs(math.remainder(pose[2] - zones['vip_lounge'].pose[2], math.tau)) <= config.goal_yaw_tolerance_rad
    assert max(c.vx for c in log) <= config.max_vx + 1e-9
    assert max(abs(c.wz) for c in log) <= config.max_wz + 1e-9
    assert all(b.vx - a.vx <= config.max_accel * 0.05 + 1e-9 for a, b in zip(log, log[1:]))
    assert any(c.state == 'rotating' for c in log[:5])         # the dock faces the wall: turn first
    assert log[len(log) // 2].remaining_m < plan.length_m


def test_slows_in_a_narrow_aisle_and_near_people(store):
    store_map, _ = store
    costmap = Costmap(store_map, 0.18, 0.12)
    follower = PathFollower()
    open_floor = [(12.0, 3.0), (18.0, 3.0)]
    corridor = [(2.3, 14.5), (2.3, 17.5)]           # restroom corridor: 0.7 m to each wall
    speeds = {}
    for name, path in (('open', open_floor), ('narrow', corridor)):
        follower.set_path(path)
        start = (*path[0], math.atan2(path[1][1] - path[0][1], path[1][0] - path[0][0]))
        _, log = drive(follower, start, costmap, limit_s=4.0)
        speeds[name] = max(c.vx for c in log)
    assert speeds['narrow'] < 0.9 * speeds['open']
    follower.set_path(open_floor)
    costmap.set_people([(14.0, 3.9)], now=0.0)       # beside the path, not on it
    _, log = drive(follower, (12.0, 3.0, 0.0), costmap, limit_s=8.0)
    assert max(c.vx for c in log if 13.5 < c.x < 14.5) < 0.8 * speeds['open']
    assert log[-1].state != 'waiting_for_obstacle'


@pytest.mark.parametrize('max_vx, near_people_vx', [(0.6, 0.2), (0.45, 0.3), (0.3, 0.5)])
def test_near_people_the_speed_never_exceeds_the_near_people_cap(store, max_vx, near_people_vx):
    """A person beside the path (1.3 m off it, within person_slow_m = 1.6 m): while the robot is
    within person_slow_m of them no command exceeds near_people_vx; far from people max_vx applies
    (a cap above max_vx changes nothing)."""
    store_map, _ = store
    costmap = Costmap(store_map, 0.18, 0.12)
    costmap.set_people([(15.0, 4.3)], now=0.0)
    config = FollowerConfig(max_vx=max_vx, near_people_vx=near_people_vx)
    follower = PathFollower(config)
    follower.set_path([(12.0, 3.0), (18.0, 3.0)])
    _, log = drive(follower, (12.0, 3.0, 0.0), costmap)
    assert log[-1].state == 'arrived'
    near = [c.vx for c in log if math.hypot(c.x - 15.0, 1.3) < config.person_slow_m]
    far = [c.vx for c in log if math.hypot(c.x - 15.0, 1.3) > config.person_slow_m + 0.3]
    assert near and max(near) <= min(max_vx, near_people_vx) + 1e-9
    assert max(far) == pytest.approx(max_vx)


def test_stops_for_a_person_on_the_path(store):
    store_map, _ = store
    costmap = Costmap(store_map, 0.18, 0.12)
    costmap.set_people([(15.0, 3.0)], now=0.0)
    follower = PathFollower()
    follower.set_path([(12.0, 3.0), (18.0, 3.0)])
    pose, log = drive(follower, (12.0, 3.0, 0.0), costmap)
    assert log[-1].state == 'waiting_for_obstacle' and 'person' in log[-1].reason
    assert log[-1].vx == 0.0 and log[-1].wz == 0.0
    assert exact_clearance(store_map, *pose[:2], 2.0) > 0.3
    assert math.dist(pose[:2], (15.0, 3.0)) > 0.3 + 0.18


def test_mission_waits_replans_around_a_person_and_arrives(store):
    store_map, zones = store
    costmap = Costmap(store_map, 0.18, 0.12, person_decay_s=1e9)
    planner = GlobalPlanner(costmap)
    mission = Mission('guide', [Stop('somewhere', (18.0, 3.0, 0.0))], planner,
                      config=GuideConfig(replan_after_s=1.0, blocked_timeout_s=30.0), period_s=0.05)
    pose, now, states, paths = [12.0, 3.0, 0.0], 0.0, [], 0
    while now < 120:
        if now >= 1.0 and not costmap.people():
            costmap.set_people([(15.0, 3.0)], now)      # someone steps into the way after a second
        tick = mission.step(now, tuple(pose))
        states.append(tick.state)
        paths += tick.new_path is not None
        if tick.outcome:
            break
        integrate(pose, tick, 0.05)
        now += 0.05
    assert tick.outcome.success and tick.outcome.reason == 'arrived' and tick.arrived.label == 'somewhere'
    assert 'waiting_for_obstacle' in states and paths == 2
    assert mission.travelled_m > 6.0


def test_mission_blocked_after_timeout_and_unreachable_at_once(store):
    store_map, zones = store
    costmap = Costmap(store_map, 0.18, 0.12, person_decay_s=1e9)
    planner = GlobalPlanner(costmap)
    unreachable = Mission('guide', [Stop('rooms', (2.3, 19.0, 0.0))], planner)
    assert unreachable.step(0.0, (0.7, 6.5, 0.0)).outcome.reason == 'unreachable'
    costmap.set_people([(2.3, 15.0)], 0.0)
    blocked = Mission('guide', [Stop('restroom', zones['restroom'].pose)], planner,
                      config=GuideConfig(replan_after_s=0.5, blocked_timeout_s=3.0))
    outcomes = [blocked.step(t / 10, (0.7, 6.5, math.pi)).outcome for t in range(0, 40)]
    assert outcomes[20] is None and outcomes[-1].reason == 'blocked'


def test_after_a_bumper_hit_the_mission_backs_away_slowly_and_goes_on(store):
    store_map, _ = store
    costmap = Costmap(store_map, 0.18, 0.12, bumper_decay_s=1e9)
    planner = GlobalPlanner(costmap)
    pose = [12.0, 3.0, 0.0]
    costmap.add_bumper_hit(pose[0] + 0.23, pose[1], 0.0)     # a display stand right in front
    mission = Mission('guide', [Stop('somewhere', (18.0, 3.0, 0.0))], planner,
                      config=GuideConfig(replan_after_s=1.0, blocked_timeout_s=30.0), period_s=0.05)
    now, states, lowest_vx = 0.0, [], 0.0
    while now < 120:
        tick = mission.step(now, tuple(pose))
        states.append(tick.state)
        lowest_vx = min(lowest_vx, tick.vx)
        if tick.outcome:
            break
        integrate(pose, tick, 0.05)
        now += 0.05
    assert tick.outcome.success and tick.outcome.reason == 'arrived'
    assert states[0] == 'backing_up' and lowest_vx == pytest.approx(-0.1)
    assert now < 60                                            # no waiting out the blocked timeout


def test_no_backing_up_against_a_wall(store):
    store_map, zones = store
    costmap = Costmap(store_map, 0.18, 0.12, bumper_decay_s=1e9)
    planner = GlobalPlanner(costmap)
    x, y, _ = zones['dock'].pose
    pose = (x, y, 0.0)                                         # the wall is right behind the dock
    costmap.add_bumper_hit(x + 0.23, y, 0.0)
    mission = Mission('guide', [Stop('service desk', zones['service_desk'].pose)], planner)
    assert {mission.step(t / 10, pose).state for t in range(20)} <= {'planning', 'replanning'}
