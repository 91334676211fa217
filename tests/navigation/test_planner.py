"""Costmap and global planner: optimality against brute force, clearance, blocked/unreachable goals."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from retail_navigation.costmap import Costmap, exact_clearance
from retail_navigation.maps import StoreMap, load_map
from retail_navigation.planner import GlobalPlanner, PlanError, densify, path_length
from rostest_support import console_script

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'config' / 'stores' / 'demo'


def grid_optimum(traversable: np.ndarray) -> nx.Graph:
    """Brute force: the 8-connected graph of traversable cells (no corner cutting), lengths in cells."""
    graph = nx.Graph()
    h, w = traversable.shape
    for j in range(h):
        for i in range(w):
            if not traversable[j, i]:
                continue
            for dj, di in ((0, 1), (1, 0), (1, 1), (1, -1)):
                a, b = j + dj, i + di
                if 0 <= a < h and 0 <= b < w and traversable[a, b]:
                    if dj and di and not (traversable[j, b] and traversable[a, i]):
                        continue
                    graph.add_edge((j, i), (a, b), weight=math.hypot(dj, di))
    return graph


def random_store(seed: int, size: int = 48) -> StoreMap:
    """A walled room with random shelves (rectangles) and a little unknown space."""
    rng = np.random.default_rng(seed)
    grid = np.zeros((size, size), np.int8)
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = 100
    for _ in range(rng.integers(3, 9)):
        j, i = rng.integers(2, size - 8, 2)
        h, w = rng.integers(1, 4), rng.integers(3, 14)
        if rng.random() < 0.5:
            h, w = w, h
        grid[j:j + h, i:i + w] = 100 if rng.random() < 0.8 else -1
    return StoreMap(grid=grid, resolution=0.1, origin=(0.0, 0.0, 0.0))


def check_clearance(store_map: StoreMap, path, clearance: float) -> float:
    worst = min(exact_clearance(store_map, x, y, clearance + 1.0) for x, y in densify(path, store_map.resolution / 4))
    assert worst >= clearance - 1e-9, f'path comes {worst:.3f} m close to an obstacle (needs {clearance})'
    return worst


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), points=st.lists(st.tuples(st.floats(0.3, 4.5), st.floats(0.3, 4.5)),
                                                    min_size=2, max_size=2), coarse=st.sampled_from([60_000, 200]))
def test_paths_are_no_longer_than_the_grid_optimum_and_keep_clearance(seed, points, coarse):
    """coarse 60000: one-cell blocks on these small maps; 200: 4x4 blocks, as on a store map."""
    store_map = random_store(seed)
    costmap = Costmap(store_map, robot_radius=0.12)
    planner = GlobalPlanner(costmap, max_coarse_cells=coarse)
    start, goal = points
    graph = grid_optimum(costmap.traversable)
    cells = [costmap.cell_of(*p) for p in points]
    if not all(costmap.traversable[c] for c in cells):
        with pytest.raises(PlanError) as info:
            planner.plan(start, goal)
        assert info.value.code in ('start_blocked', 'goal_blocked')
        return
    if not nx.has_path(graph, cells[0], cells[1]):
        with pytest.raises(PlanError) as info:
            planner.plan(start, goal)
        assert info.value.code == 'unreachable'
        return
    plan = planner.plan(start, goal)
    optimum = nx.dijkstra_path_length(graph, cells[0], cells[1]) * store_map.resolution
    # the optimum is between cell centres; ours runs between the exact points (<= one cell each end)
    assert plan.length_m <= 1.02 * optimum + 2 * store_map.resolution
    assert plan.path[0] == start and plan.path[-1] == goal
    assert plan.length_m == pytest.approx(path_length(plan.path))
    check_clearance(store_map, plan.path, 0.12)


def test_demo_store_paths_beat_the_8_connected_optimum():
    store_map = load_map(DEMO / 'map.yaml')
    costmap = Costmap(store_map, 0.18, 0.12)
    planner = GlobalPlanner(costmap)
    graph = grid_optimum(costmap.traversable)
    for start, goal in [((0.7, 6.5), (25.0, 15.8)), ((9.5, 1.2), (2.3, 16.5)), ((24.0, 1.2), (12.5, 17.5))]:
        plan = planner.plan(start, goal)
        optimum = nx.dijkstra_path_length(graph, costmap.cell_of(*start), costmap.cell_of(*goal)) * store_map.resolution
        assert plan.length_m <= 1.02 * optimum
        assert plan.block > 1                    # found on the pooled graph, not by the exact fallback
        assert len(plan.path) <= 10              # any-angle: a few long straight legs
        check_clearance(store_map, plan.path, 0.30)


def test_narrow_gap_falls_back_to_finer_blocks():
    grid = np.zeros((60, 60), np.int8)
    grid[:, 30:33] = 100
    grid[41:44, 30:33] = 0                       # a 3-cell door in a wall: closed at 8x8 blocks
    store_map = StoreMap(grid=grid, resolution=0.05, origin=(0.0, 0.0, 0.0))
    costmap = Costmap(store_map, 0.0)
    planner = GlobalPlanner(costmap, max_coarse_cells=60)
    plan = planner.plan((0.5, 2.1), (2.5, 2.1))
    assert plan.block < planner.block_size()
    check_clearance(store_map, plan.path, 0.0)


def test_start_and_goal_problems_have_reasons():
    store_map = load_map(DEMO / 'map.yaml')
    planner = GlobalPlanner(Costmap(store_map, 0.18, 0.12))
    cases = [((-5.0, 1.0), (2.5, 4.4), 'start_outside', 'outside the map'),
             ((0.7, 6.5), (50.0, 1.0), 'goal_outside', 'outside the map'),
             ((0.7, 6.5), (15.0, 10.0), 'goal_blocked', 'on an obstacle'),
             ((0.7, 6.5), (15.0, 10.3), 'goal_blocked', 'too close to a shelf'),
             ((0.7, 6.5), (2.3, 19.0), 'goal_blocked', 'unmapped'),
             ((15.0, 10.0), (2.5, 4.4), 'start_blocked', 'on an obstacle')]
    for start, goal, code, words in cases:
        with pytest.raises(PlanError) as info:
            planner.plan(start, goal)
        assert info.value.code == code and words in str(info.value)


def test_enclosed_goal_is_unreachable():
    grid = np.zeros((40, 40), np.int8)
    grid[10:30, 10] = grid[10:30, 29] = grid[10, 10:30] = grid[29, 10:30] = 100    # a closed room
    planner = GlobalPlanner(Costmap(StoreMap(grid=grid, resolution=0.1, origin=(0.0, 0.0, 0.0)), 0.1))
    with pytest.raises(PlanError) as info:
        planner.plan((0.5, 0.5), (2.0, 2.0))
    assert info.value.code == 'unreachable'


def test_people_and_bumper_hits_block_and_then_decay():
    store_map = load_map(DEMO / 'map.yaml')
    costmap = Costmap(store_map, 0.18, 0.12, person_decay_s=2.0, bumper_decay_s=5.0)
    planner = GlobalPlanner(costmap)
    corridor = ((2.3, 13.0), (2.3, 16.5))            # into the restroom corridor, 1.4 m wide
    assert planner.plan(*corridor).length_m == pytest.approx(3.5)
    costmap.set_people([(2.3, 15.0)], now=100.0)
    assert costmap.why_blocked(2.3, 15.0) == 'next to a person'
    with pytest.raises(PlanError):
        planner.plan(*corridor)
    costmap.set_people([(2.3, 15.1)], now=101.0)     # the same person moved a little: replaced, not added
    assert len(costmap.people()) == 1
    assert costmap.expire(103.5)
    assert planner.plan(*corridor).length_m == pytest.approx(3.5)
    costmap.add_bumper_hit(2.3, 15.0, now=200.0)
    assert costmap.dynamic_blocked(2.3, 15.2) is not None
    assert not costmap.expire(204.0) and costmap.expire(205.5)
    assert costmap.dynamic_blocked(2.3, 15.2) is None


def test_plan_cli_json_zone_goal_and_clearance(tmp_path):
    out = subprocess.run([console_script('retailbot'), 'plan', '--map', str(DEMO / 'map.yaml'), '--from', '0.7,6.5',
                          '--to', 'vip_lounge', '--radius', '0.3', '--json', '--png', str(tmp_path / 'path.png')],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {'path', 'length_m', 'plan_ms'}
    path = [tuple(p) for p in result['path']]
    assert path[0] == (0.7, 6.5) and path[-1] == (25.0, 15.8)
    assert 24.0 < result['length_m'] < 30.0 and result['plan_ms'] > 0
    assert max(math.dist(a, b) for a, b in zip(path, path[1:])) <= 0.05 + 1e-6
    check_clearance(load_map(DEMO / 'map.yaml'), path, 0.3)
    assert (tmp_path / 'path.png').stat().st_size > 10_000


@pytest.mark.parametrize('args, code, words', [
    (['--from', '0.7,6.5', '--to', '2.3,19'], 3, 'blocked: in unmapped'),
    (['--from', '0.7,6.5', '--to', '99,1'], 3, 'outside the map'),
    (['--from', '15,10', '--to', 'kitchen'], 3, 'start (15.00, 10.00) is blocked'),
    (['--from', '0.7,6.5', '--to', 'garden'], 2, "unknown zone 'garden'"),
])
def test_plan_cli_failures_are_one_line(args, code, words):
    out = subprocess.run([console_script('retailbot'), 'plan', '--map', str(DEMO / 'map.yaml'), '--radius', '0.3',
                          *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == code
    assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_plan_cli_bad_map(tmp_path):
    bad = tmp_path / 'map.yaml'
    bad.write_text('image: gone.pgm\nresolution: 0.05\norigin: [0, 0, 0]\n', encoding='utf-8')
    out = subprocess.run([console_script('retailbot'), 'plan', '--map', str(bad), '--from', '0,0', '--to', '1,1'],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and 'gone.pgm does not exist' in out.stderr
