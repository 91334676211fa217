"""Global planner: short any-angle paths on store-sized grids in tens of milliseconds.

Hierarchical, because a store map has ~10^6 cells but its free space is a few wide aisles:

1. The costmap's traversable mask is pooled into k x k blocks (a block is open only if all of its
   cells are), small enough (<= ~60k blocks) for a C Dijkstra (scipy.sparse.csgraph) over the
   8-connected block graph, diagonal moves only where both side blocks are open (no corner
   cutting). The block graph is cached per costmap version.
2. Start and goal join the graph through open blocks within a few blocks that they see in a
   straight line on the fine grid.
3. The block path is string-pulled on the fine grid (line of sight with clearance), then each
   corner is pulled towards the obstacle it turns around: the result is an any-angle path,
   shorter than the 8-connected grid optimum, with few vertices.
4. If the pooled grid has no route although start and goal are in the same 8-connected component
   of the fine grid, or only a detour that an optimistic pooling (a block is open when any of its
   cells is) clearly beats (a gap narrower than a block), k halves, down to 1, which is exact.

Unreachable goals are detected from the cached connected components before any search.
Pure core (numpy + scipy), no rclpy.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

from retail_navigation.costmap import Costmap

Point = tuple[float, float]
MAX_COARSE_CELLS = 60_000
ATTACH_BLOCKS = 3          # how far (in blocks) start/goal look for an open block


class PlanError(Exception):
    """No path; `code` is one of start_outside, start_blocked, goal_outside, goal_blocked, unreachable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Plan:
    path: list[Point]
    length_m: float
    plan_ms: float
    block: int = 1          # block size the route was found at (0: straight line, no search)


def path_length(path: list[Point]) -> float:
    return float(sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(path, path[1:])))


def densify(path: list[Point], step: float) -> list[Point]:
    """Points every <= step metres along the polyline (keeps every vertex)."""
    if len(path) < 2:
        return list(path)
    out = [path[0]]
    for a, b in zip(path, path[1:]):
        n = max(int(math.ceil(math.hypot(b[0] - a[0], b[1] - a[1]) / step)), 1)
        out.extend((a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n) for k in range(1, n + 1))
    return out


class _BlockGraph:
    """The 8-connected graph of open k x k blocks of a traversable mask.

    Conservative (a block is open when all its cells are; diagonals need both side blocks): every
    route on it is a real route. Optimistic (open when any cell is; any diagonal): nothing the
    fine grid allows is missing, so its distance shows when the conservative one took a detour.
    """

    def __init__(self, traversable: np.ndarray, k: int, optimistic: bool = False) -> None:
        h, w = traversable.shape
        hb, wb = -(-h // k), -(-w // k)
        padded = np.zeros((hb * k, wb * k), dtype=bool)
        padded[:h, :w] = traversable
        self.k, self.shape = k, (hb, wb)
        blocks = padded.reshape(hb, k, wb, k)
        self.open = blocks.any(axis=(1, 3)) if optimistic else blocks.all(axis=(1, 3))
        ids = np.arange(hb * wb).reshape(hb, wb)
        rows, cols, weights = [], [], []

        def link(a_mask: np.ndarray, a_ids: np.ndarray, b_ids: np.ndarray, weight: float) -> None:
            rows.append(a_ids[a_mask])
            cols.append(b_ids[a_mask])
            weights.append(np.full(int(a_mask.sum()), weight))

        o = self.open
        link(o[:, :-1] & o[:, 1:], ids[:, :-1], ids[:, 1:], 1.0)
        link(o[:-1, :] & o[1:, :], ids[:-1, :], ids[1:, :], 1.0)
        if optimistic:
            link(o[:-1, :-1] & o[1:, 1:], ids[:-1, :-1], ids[1:, 1:], math.sqrt(2.0))
            link(o[:-1, 1:] & o[1:, :-1], ids[:-1, 1:], ids[1:, :-1], math.sqrt(2.0))
        else:
            side = o[:-1, :-1] & o[1:, 1:] & o[:-1, 1:] & o[1:, :-1]       # both diagonals share the 2x2 test
            link(side, ids[:-1, :-1], ids[1:, 1:], math.sqrt(2.0))
            link(side, ids[:-1, 1:], ids[1:, :-1], math.sqrt(2.0))
        self.rows = np.concatenate(rows)
        self.cols = np.concatenate(cols)
        self.weights = np.concatenate(weights) * k         # in fine cells
        self.n = hb * wb
        self.matrix = coo_matrix((self.weights, (self.rows, self.cols)), shape=(self.n, self.n)).tocsr()

    def node(self, cell: tuple[int, int]) -> int:
        return (cell[0] // self.k) * self.shape[1] + cell[1] // self.k


class GlobalPlanner:
    """Plans on a Costmap; reuse one instance so the block graph cache pays off."""

    def __init__(self, costmap: Costmap, *, max_coarse_cells: int = MAX_COARSE_CELLS) -> None:
        self.costmap = costmap
        self.max_coarse_cells = max_coarse_cells
        self._graphs: dict[tuple[int, bool], _BlockGraph] = {}
        self._graph_version = -1

    def block_size(self) -> int:
        h, w = self.costmap.traversable.shape
        k = 1
        while (h * w) / (k * k) > self.max_coarse_cells:
            k *= 2
        return k

    def prepare(self) -> None:
        """Build the cached block graph now (e.g. right after loading), not on the first plan."""
        k = self.block_size()
        self._graph(k)
        if k > 1:
            self._graph(k, optimistic=True)

    def _graph(self, k: int, optimistic: bool = False) -> _BlockGraph:
        if self._graph_version != self.costmap.version:
            self._graphs.clear()
            self._graph_version = self.costmap.version
        if (k, optimistic) not in self._graphs:
            self._graphs[k, optimistic] = _BlockGraph(self.costmap.traversable, k, optimistic)
        return self._graphs[k, optimistic]

    def _detoured(self, k: int, distance: float, cells: dict[str, tuple[int, int]]) -> bool:
        """True when the optimistic graph knows a clearly shorter way (through gaps the
        conservative blocks closed): then a finer block size should find it."""
        graph = self._graph(k, optimistic=True)
        source, target = graph.node(cells['start']), graph.node(cells['goal'])
        best = dijkstra(graph.matrix, directed=False, indices=source)[target]
        return distance > 1.02 * best + 2 * k

    # ---------------------------------------------------------------------------------------
    def plan(self, start: Point, goal: Point) -> Plan:
        t0 = time.perf_counter()
        cm = self.costmap
        cells = {}
        for name, point in (('start', start), ('goal', goal)):
            cell = cm.cell_of(*point)
            if cell is None:
                raise PlanError(f'{name}_outside', f'{name} ({point[0]:.2f}, {point[1]:.2f}) is outside the map')
            reason = cm.why_blocked(*point)
            if reason:
                raise PlanError(f'{name}_blocked', f'{name} ({point[0]:.2f}, {point[1]:.2f}) is blocked: {reason}')
            cells[name] = cell
        labels = cm.components()
        if labels[cells['start']] != labels[cells['goal']]:
            raise PlanError('unreachable', f'goal ({goal[0]:.2f}, {goal[1]:.2f}) cannot be reached from '
                                           f'({start[0]:.2f}, {start[1]:.2f}): no free way between them')
        if cm.segment_free(*start, *goal):
            route, k = [start, goal], 0
        else:
            k = self.block_size()
            while True:
                found = self._block_route(self._graph(k), start, goal, cells)
                if found is not None and (k == 1 or not self._detoured(k, found[1], cells)):
                    break
                if k == 1:   # cannot happen within one component; guards against an endless loop
                    raise PlanError('unreachable', f'no path found to ({goal[0]:.2f}, {goal[1]:.2f})')
                k //= 2
            route = self._tighten(self._string_pull(found[0]))
        return Plan(path=route, length_m=path_length(route), plan_ms=(time.perf_counter() - t0) * 1e3,
                    block=k)

    def _centre(self, k: int, block: int, wb: int) -> Point:
        bj, bi = divmod(block, wb)
        h, w = self.costmap.traversable.shape
        # centre of the block's cells that exist in the map (edge blocks may be cut)
        ci = (bi * k + min(bi * k + k, w)) / 2.0 - 0.5
        cj = (bj * k + min(bj * k + k, h)) / 2.0 - 0.5
        return self.costmap.map.cell_to_world(ci, cj)

    def _attach(self, graph: _BlockGraph, point: Point, cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Open blocks near `point` that it sees in a straight line, with distances in fine cells."""
        hb, wb = graph.shape
        bj, bi = cell[0] // graph.k, cell[1] // graph.k
        res = self.costmap.resolution
        found_ids, found_cost = [], []
        for reach in range(ATTACH_BLOCKS + 1):
            j0, j1 = max(bj - reach, 0), min(bj + reach + 1, hb)
            i0, i1 = max(bi - reach, 0), min(bi + reach + 1, wb)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    if max(abs(j - bj), abs(i - bi)) != reach or not graph.open[j, i]:
                        continue
                    block = j * wb + i
                    centre = self._centre(graph.k, block, wb)
                    if self.costmap.segment_free(*point, *centre):
                        found_ids.append(block)
                        found_cost.append(math.hypot(centre[0] - point[0], centre[1] - point[1]) / res)
            if len(found_ids) >= 3 or (found_ids and reach >= 1):
                break
        return np.array(found_ids, dtype=np.int64), np.array(found_cost)

    def _block_route(self, graph: _BlockGraph, start: Point, goal: Point,
                     cells: dict[str, tuple[int, int]]) -> tuple[list[Point], float] | None:
        """The block route (start, block centres..., goal) and its length in fine cells."""
        s_ids, s_cost = self._attach(graph, start, cells['start'])
        g_ids, g_cost = self._attach(graph, goal, cells['goal'])
        if not len(s_ids) or not len(g_ids):
            return None
        n = graph.n
        s_node, g_node = n, n + 1
        rows = np.concatenate([graph.rows, np.full(len(s_ids), s_node), g_ids])
        cols = np.concatenate([graph.cols, s_ids, np.full(len(g_ids), g_node)])
        weights = np.concatenate([graph.weights, s_cost + 1e-6, g_cost + 1e-6])
        matrix = coo_matrix((weights, (rows, cols)), shape=(n + 2, n + 2)).tocsr()
        dist, pred = dijkstra(matrix, directed=False, indices=s_node, return_predecessors=True)
        if not np.isfinite(dist[g_node]):
            return None
        blocks = []
        node = pred[g_node]
        while node != s_node and node >= 0:
            blocks.append(int(node))
            node = pred[node]
        wb = graph.shape[1]
        return [start] + [self._centre(graph.k, b, wb) for b in reversed(blocks)] + [goal], float(dist[g_node])

    def _string_pull(self, route: list[Point]) -> list[Point]:
        """Greedy line-of-sight shortcutting: from each kept vertex, jump to the farthest visible one."""
        free = self.costmap.segment_free
        out = [route[0]]
        anchor = 0
        while anchor < len(route) - 1:
            # exponential then binary search for the farthest vertex seen from the anchor
            step, best = 1, anchor + 1
            while anchor + step < len(route) and free(*route[anchor], *route[anchor + step]):
                best = anchor + step
                step *= 2
            low, high = best, min(anchor + step, len(route) - 1)
            while low < high:
                mid = (low + high + 1) // 2
                if free(*route[anchor], *route[mid]):
                    low = mid
                else:
                    high = mid - 1
            anchor = max(low, anchor + 1)
            out.append(route[anchor])
        return out

    def _tighten(self, path: list[Point], rounds: int = 4) -> list[Point]:
        """Pull each corner towards the straight line between its neighbours while both legs stay
        free (bisection), and drop corners whose neighbours see each other."""
        free = self.costmap.segment_free
        min_move = 0.25 * self.costmap.resolution
        path = list(path)
        for _ in range(rounds):
            moved = False
            n = 1
            while n < len(path) - 1:
                a, v, b = path[n - 1], path[n], path[n + 1]
                if free(*a, *b):
                    del path[n]
                    moved = True
                    continue
                target = _closest_on_segment(v, a, b)
                best, low, high = v, 0.0, 1.0
                for _ in range(8):
                    mid = (low + high) / 2
                    candidate = (v[0] + (target[0] - v[0]) * mid, v[1] + (target[1] - v[1]) * mid)
                    if free(*a, *candidate) and free(*candidate, *b):
                        low, best = mid, candidate
                    else:
                        high = mid
                if math.hypot(best[0] - v[0], best[1] - v[1]) > min_move:
                    path[n] = best
                    moved = True
                n += 1
            if not moved:
                break
        return path


def _closest_on_segment(p: Point, a: Point, b: Point) -> Point:
    ax, ay = b[0] - a[0], b[1] - a[1]
    denom = ax * ax + ay * ay
    t = 0.0 if denom == 0 else max(0.0, min(1.0, ((p[0] - a[0]) * ax + (p[1] - a[1]) * ay) / denom))
    return a[0] + t * ax, a[1] + t * ay
