"""Planner benchmark: retail_navigation.planner vs skimage.graph.MCP_Geometric on store maps.

Maps: the demo store rendered at 0.025 m/cell (1.04 M cells) and 0.022 m/cell (1.35 M cells), and
two demo stores side by side at 0.04 m/cell (0.81 M cells, 60 m long routes across both).
For each map both planners get the same traversable grid (the costmap inflated for a 0.25 m
clearance; MCP: cost 1 on traversable cells, inf elsewhere) and the same start/goal pairs
(between zone poses). Timed per query, same run:
- ours: GlobalPlanner.plan (after the costmap and its block graph are built: `prep` column);
- MCP: MCP_Geometric(costs) + find_costs([start], [goal]) + traceback (its set-up is per query).
Length: ours (any-angle) / 8-connected optimum (MCP's cost). Prints medians and ratios.

    .venv/bin/python benches/navigation_planner.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from skimage.graph import MCP_Geometric

from retail_common.store import load_zones_file
from retail_navigation.costmap import Costmap
from retail_navigation.demo_store import demo_store_map
from retail_navigation.maps import StoreMap
from retail_navigation.planner import GlobalPlanner

ZONES, _, _ = load_zones_file(__import__('pathlib').Path(__file__).resolve().parents[1] / 'config/stores/demo/zones.yaml')
PAIRS = [('dock', 'vip_lounge'), ('entrance', 'restroom'), ('exit', 'large_appliances'), ('phones', 'kitchen'),
         ('service_desk', 'home_care'), ('checkout', 'cameras_gaming')]


def tiled(store_map: StoreMap, nx: int) -> StoreMap:
    """nx copies of the store side by side, joined by a 3 m wide opening in their shared walls."""
    grid = np.concatenate([store_map.grid] * nx, axis=1)
    res, w = store_map.resolution, store_map.width
    rows = slice(int((2.0 - store_map.origin[1]) / res), int((5.0 - store_map.origin[1]) / res))
    for k in range(1, nx):
        grid[rows, k * w - int(0.7 / res):k * w + int(0.7 / res)] = 0
    return StoreMap(grid=grid, resolution=res, origin=store_map.origin, source='tiled')


def queries(store_map: StoreMap, nx: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    width = store_map.width * store_map.resolution / nx
    out = [(ZONES[a].pose[:2], ZONES[b].pose[:2]) for a, b in PAIRS]
    if nx > 1:   # across the two stores: from the first store's dock to the second store's lounge
        out += [(ZONES[a].pose[:2], (ZONES[b].pose[0] + width * (nx - 1), ZONES[b].pose[1])) for a, b in PAIRS[:3]]
    return out


def mcp_plan(costs: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> tuple[float, float]:
    t0 = time.perf_counter()
    mcp = MCP_Geometric(costs)
    cumulative, _ = mcp.find_costs([start], [goal])
    mcp.traceback(goal)
    return (time.perf_counter() - t0) * 1e3, float(cumulative[goal])


def run(name: str, store_map: StoreMap, nx: int, repeat: int, clearance: float) -> None:
    t0 = time.perf_counter()
    costmap = Costmap(store_map, clearance)
    planner = GlobalPlanner(costmap)
    planner.prepare()
    costmap.components()
    prep_ms = (time.perf_counter() - t0) * 1e3
    costs = np.where(costmap.traversable, 1.0, np.inf)
    ours_ms, mcp_ms, ratios, blocks = [], [], [], set()
    for start, goal in queries(store_map, nx):
        s = store_map.world_to_cell(*start)[::-1]
        g = store_map.world_to_cell(*goal)[::-1]
        for _ in range(repeat):
            plan = planner.plan(start, goal)
            ours_ms.append(plan.plan_ms)
            blocks.add(plan.block)
            ms, optimum_cells = mcp_plan(costs, s, g)
            mcp_ms.append(ms)
        ratios.append(plan.length_m / (optimum_cells * store_map.resolution))
    ours, theirs = statistics.median(ours_ms), statistics.median(mcp_ms)
    print(f'{name:<28} {store_map.grid.size / 1e6:5.2f} M cells  prep {prep_ms:6.0f} ms | plan median '
          f'{ours:6.1f} ms  MCP median {theirs:6.1f} ms  ratio {ours / theirs:5.3f} | length/optimum '
          f'median {statistics.median(ratios):.3f} max {max(ratios):.3f}  ({len(ratios)} queries x {repeat}, '
          f'blocks {sorted(blocks)})')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--clearance', type=float, default=0.25, help='robot radius + margin [m]')
    args = parser.parse_args()
    run('demo store @ 0.025 m', demo_store_map(0.025), 1, args.repeat, args.clearance)
    run('demo store @ 0.022 m', demo_store_map(0.022), 1, args.repeat, args.clearance)
    run('2 demo stores @ 0.04 m', tiled(demo_store_map(0.04), 2), 2, args.repeat, args.clearance)


if __name__ == '__main__':
    main()
