"""Bench: localisation and guiding in a simulated store day, against pure odometry in the same run.

For the demo store and a second store drawn here (a 40 x 26 m hypermarket floor with long gondola
rows, 12 zones), the robot is guided through every zone in turn (>= 150 m) by the real mission
core (planner + regulated pure pursuit + lidar obstacle layer) through the real collision monitor
core, on the pose the particle filter believes. The base is the simulated firmware with shop-floor
drift (encoder scale error and slip, gyro bias walk), its odometry computed from its encoder
ticks and gyro by the driver's own odometry code, the lidar ray-cast at 10 Hz, and 8 shoppers
walk between the zones. Everything runs in one process on simulated time (no DDS), so the figures
do not depend on the machine's load except the CPU times.

Reports per store: position error median / p95 / max and heading error max of the filter, and of
pure odometry from the start pose (the peer); goals reached, contacts with shoppers, driving time
against the same goals in an empty store; CPU time of a filter update and of a lidar scan (share
of one core at 10 Hz); relocalisation from a uniform prior: simulated driving time until the
estimate stays within 0.2 m.

    .venv/bin/python benches/navigation_localization.py [--stores demo,second] [--people 8] [--zones N]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from retail_common.store import load_zones_file
from retail_navigation import protocol as p
from retail_navigation.base_sim import Drift, SimConfig, SimulatedBase
from retail_navigation.collision_monitor import CollisionMonitor, ScanSource
from retail_navigation.costmap import Costmap
from retail_navigation.follower import FollowerConfig
from retail_navigation.guide import GuideConfig, Mission, Stop
from retail_navigation.lidar import LidarConfig, SimLidar
from retail_navigation.localization import AmclConfig, ParticleFilter, compose
from retail_navigation.maps import FREE, OCCUPIED, StoreMap, load_map
from retail_navigation.odometry import Odometry
from retail_navigation.planner import GlobalPlanner
from retail_navigation.sim_world import SimWorld

REPO = Path(__file__).resolve().parents[1]
LASER = (0.10, 0.0, 0.0)


def second_store(res: float = 0.05) -> tuple[StoreMap, dict[str, tuple[float, float, float]]]:
    """A hypermarket floor unlike the demo store: 40 x 26 m, an L-shaped back office, eight long
    gondola rows with a cross aisle, a pillar grid, checkout lanes; 12 zones."""
    w_m, h_m, margin = 40.0, 26.0, 0.5
    w, h = int(round((w_m + 2 * margin) / res)), int(round((h_m + 2 * margin) / res))
    grid = np.full((h, w), -1, dtype=np.int8)

    def paint(x0, y0, x1, y1, value):
        i0, i1 = int(round((x0 + margin) / res)), int(round((x1 + margin) / res))
        j0, j1 = int(round((y0 + margin) / res)), int(round((y1 + margin) / res))
        grid[max(j0, 0):max(j1, 0), max(i0, 0):max(i1, 0)] = value

    paint(-0.2, -0.2, w_m + 0.2, h_m + 0.2, OCCUPIED)
    paint(0.0, 0.0, w_m, h_m, FREE)
    paint(0.0, 20.0, 8.0, 26.0, OCCUPIED)                     # back office (L-shape with the wall)
    paint(8.0, 22.0, 14.0, 26.0, OCCUPIED)
    for k in range(8):                                        # gondola rows, cross aisle at y 12..14
        x = 12.0 + 3.2 * k
        paint(x, 4.0, x + 1.0, 12.0, OCCUPIED)
        paint(x, 14.0, x + 1.0, 20.0 + (k % 3), OCCUPIED)
    for x in (4.0, 8.0):                                      # pillars
        for y in (6.0, 12.0, 17.0):
            paint(x, y, x + 0.5, y + 0.5, OCCUPIED)
    for k in range(4):                                        # checkout lanes
        paint(2.0 + 2.5 * k, 1.5, 3.2 + 2.5 * k, 2.1, OCCUPIED)
    paint(36.0, 22.0, 39.0, 25.0, OCCUPIED)                   # promotion stand
    zones = {
        'dock': (1.0, 10.0, 0.0), 'entrance': (6.0, 3.5, math.pi / 2), 'fruit': (11.0, 8.0, 0.0),
        'bakery': (14.6, 9.0, math.pi / 2), 'dairy': (17.8, 16.0, math.pi / 2), 'drinks': (21.0, 13.0, 0.0),
        'snacks': (24.2, 7.0, math.pi / 2), 'household': (27.4, 17.0, math.pi / 2),
        'electronics': (33.8, 9.0, math.pi / 2), 'garden': (38.5, 15.0, math.pi), 'promotions': (34.5, 23.5, 0.0),
        'service_desk': (12.0, 2.5, -math.pi / 2),
    }
    return StoreMap(grid=grid, resolution=res, origin=(-margin, -margin, 0.0), source='second store'), zones


def demo_store() -> tuple[StoreMap, dict[str, tuple[float, float, float]]]:
    zones, _, _ = load_zones_file(REPO / 'config' / 'stores' / 'demo' / 'zones.yaml')
    return load_map(REPO / 'config' / 'stores' / 'demo' / 'map.yaml'), {z: zones[z].pose for z in zones}


def run_day(store_map, zones, people: int, seed: int, order: list[str], relocalise: bool = False) -> dict:
    dock = zones['dock']
    world = SimWorld(store_map, [z[:2] for k, z in zones.items() if k != 'dock'], people=people, seed=seed,
                     avoid=[dock[:2]])
    base = SimulatedBase(world.world_map, dock, SimConfig(dock_pose=dock, drift=Drift.shop_floor(seed)), world=world)
    odometry = Odometry()
    lidar = SimLidar(world.world_map, LidarConfig(mount=LASER), seed=seed)
    angles = lidar.config.angles()
    pf = ParticleFilter(store_map, AmclConfig(), laser_mount=LASER, seed=seed)
    pf.initialise(dock, 0.05, 0.05)
    costmap = Costmap(store_map, 0.18, 0.12)
    planner = GlobalPlanner(costmap)
    monitor = CollisionMonitor()
    source = ScanSource('/scan', LASER)
    clock0 = 1000.0                             # simulated clock of the stamps (a zero stamp is refused)
    follower_config = FollowerConfig(max_vx=0.45)
    guide_config = GuideConfig(replan_after_s=2.0, blocked_timeout_s=30.0)
    t, dt = 0.0, 0.02
    errors, odom_errors, heading, odom_heading = [], [], [], []
    filter_ms, scan_ms = [], []
    reached, driving_s, travelled = 0, 0.0, 0.0
    estimate = dock
    reloc_time = None
    outcomes: list[tuple[str, str, str]] = []
    if relocalise:
        pf.relocalise_globally()
    for goal in order:
        mission = Mission('guide', [Stop(goal, zones[goal])], planner, follower_config, guide_config, period_s=0.1)
        start = t
        command = (0.0, 0.0)
        while t - start < 240.0:
            tick_now = round(t / dt)
            if tick_now % 5 == 0:                             # 10 Hz: scan, filter, costmap, control
                s = base.state
                truth = (s.x, s.y, s.theta)
                b = base.feedback_items()
                odometry.update(b[0].left_encoder, b[0].right_encoder, b[2].angle_rad, t)
                odom = (odometry.pose.x, odometry.pose.y, odometry.pose.theta)
                t0 = time.process_time()
                ranges = lidar.scan(truth, world.circles())
                scan_ms.append((time.process_time() - t0) * 1e3)
                t0 = time.process_time()
                est = pf.step(odom, ranges.astype(float), angles)
                filter_ms.append((time.process_time() - t0) * 1e3)
                if est.lost and not pf.global_mode:
                    pf.relocalise_globally()
                estimate = est.pose
                err = math.hypot(estimate[0] - truth[0], estimate[1] - truth[1])
                if relocalise and reloc_time is None and err < 0.2 and not pf.global_mode:
                    reloc_time = t                    # a hypothesis accepted, and the right one
                elif relocalise and reloc_time is not None and err > 0.2:
                    reloc_time = None
                dead = compose(dock, odom)
                errors.append(err)
                heading.append(abs(math.remainder(estimate[2] - truth[2], math.tau)))
                odom_errors.append(math.hypot(dead[0] - truth[0], dead[1] - truth[1]))
                odom_heading.append(abs(math.remainder(dead[2] - truth[2], math.tau)))
                lx, ly, lyaw = compose(estimate, LASER)
                valid = np.isfinite(ranges)
                costmap.update_scan((lx, ly), lyaw + angles[valid | np.isposinf(ranges)],
                                    np.where(valid, ranges, 12.0)[valid | np.isposinf(ranges)],
                                    valid[valid | np.isposinf(ranges)], t)
                costmap.expire(t)
                source.update(clock0 + t, ranges, lidar.config.angle_min, lidar.config.angle_increment, 0.15, 12.0)
                tick = mission.step(t, estimate)
                if tick.outcome is not None:
                    reached += tick.outcome.success
                    outcomes.append((goal, tick.outcome.reason, tick.outcome.message))
                    break
                decision = monitor.decide(tick.vx, tick.wz, [source.observe(clock0 + t + 0.05)])
                command = (decision.vx, decision.wz)
                left, right = p.speed_radius_to_wheels(*p.twist_to_speed_radius(*command), p.WHEELBASE_M)
                base._set_targets(left, right)
            before = (base.state.x, base.state.y)
            base.step(dt)
            travelled += math.hypot(base.state.x - before[0], base.state.y - before[1])
            t += dt
        else:
            base._set_targets(0.0, 0.0)
        driving_s += t - start
        if relocalise:
            break
    return {
        'errors': np.array(errors), 'heading': np.array(heading), 'odom_errors': np.array(odom_errors),
        'odom_heading': np.array(odom_heading), 'reached': reached, 'goals': len(order), 'contacts': world.contacts,
        'driving_s': driving_s, 'travelled_m': travelled, 'filter_ms': np.array(filter_ms), 'scan_ms': np.array(scan_ms),
        'relocalised_after_s': reloc_time, 'outcomes': outcomes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stores', default='demo,second')
    parser.add_argument('--people', type=int, default=8)
    parser.add_argument('--zones', type=int, default=0, help='zones per day (default: all, twice if needed for 150 m)')
    parser.add_argument('--seed', type=int, default=11)
    args = parser.parse_args()
    for name in args.stores.split(','):
        store_map, zones = demo_store() if name == 'demo' else second_store()
        order = [z for z in zones if z != 'dock']
        order = (order * 3)[:args.zones] if args.zones else order + order[::-1][1:]
        day = run_day(store_map, zones, args.people, args.seed, order)
        empty = run_day(store_map, zones, 0, args.seed, order)
        e, o = day['errors'], day['odom_errors']
        print(f'[{name}] {len(order)} goals, {day["travelled_m"]:.0f} m, {args.people} shoppers')
        print(f'  localisation error: median {np.median(e) * 100:.1f} cm, p95 {np.percentile(e, 95) * 100:.1f} cm, '
              f'max {e.max() * 100:.1f} cm, heading max {math.degrees(day["heading"].max()):.2f} deg')
        print(f'  pure odometry (peer): median {np.median(o) * 100:.1f} cm, max {o.max() * 100:.1f} cm, '
              f'heading max {math.degrees(day["odom_heading"].max()):.2f} deg (ratio of medians '
              f'{np.median(o) / max(np.median(e), 1e-9):.1f}x)')
        print(f'  guiding: {day["reached"]}/{day["goals"]} goals reached ({100 * day["reached"] / day["goals"]:.0f} %), '
              f'{day["contacts"]} contacts; driving {day["driving_s"]:.0f} s vs {empty["driving_s"]:.0f} s empty '
              f'(+{100 * (day["driving_s"] / empty["driving_s"] - 1):.0f} %), empty store {empty["reached"]}/{empty["goals"]}')
        failed = [f'{goal}: {reason}' for goal, reason, _ in day['outcomes'] if reason != 'arrived']
        if failed:
            print(f'  not reached: {", ".join(failed)}')
        f, s = day['filter_ms'], day['scan_ms']
        updates = f[f > 0.5]                                   # scans the filter ran on (moved or turned enough)
        print(f'  CPU: filter {f.mean() * 10 / 1000 * 100:.1f} % of a core at 10 Hz scans; an update median '
              f'{np.median(updates) if len(updates) else 0:.1f} ms, p99 {np.percentile(f, 99):.1f} ms; '
              f'simulated lidar scan {np.median(s):.1f} ms')
        reloc = run_day(store_map, zones, args.people, args.seed + 1, order[len(order) // 2:][:1], relocalise=True)
        after = reloc['relocalised_after_s']
        print(f'  relocalisation from a uniform prior: '
              f'{"within %.1f s of driving" % after if after is not None else "not within the drive"}')


if __name__ == '__main__':
    main()
