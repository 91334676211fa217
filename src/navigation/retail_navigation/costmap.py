"""Where the robot's centre may be: the store map inflated by the robot, plus what it met on the way.

Static obstacles are occupied *and unknown* cells. A cell is traversable when every point inside
it keeps `robot_radius + safety_margin` from any obstacle cell (the cell's square, not its
centre): with D the centre-to-centre distance of the Euclidean distance transform, a point in
the cell is at least D - res*sqrt(2) from an obstacle square, and path segments are checked at
res/2 steps (another res/4), so the test is D >= clearance + CELL_SLACK * res. Paths through
traversable cells therefore keep the clearance exactly, not just at cell centres.

Dynamic obstacles are discs that expire: bumper hits (where the front of the robot touched
something not on the map), people seen by perception (refreshed every time they are seen), and
the obstacle layer from the lidar (`update_scan`): laser returns that are not on the map (farther
than `scan_map_gap_m` from any mapped obstacle) are marked as small discs on a `scan_cell_m` grid,
a disc that a later beam passes through is cleared (ray tracing), and an unseen one decays after
`scan_decay_s`. `update_laser` reads a scan as REP-117 says (`laserscan.rep117`): -inf ("closer
than range_min") is an obstacle at range_min, +inf is free up to range_max, NaN and out-of-range
values are ignored; nothing is marked inside the robot's own footprint (the collision monitor
handles contact), so the robot can always plan its way out. They only change the cells around them, so a moving crowd costs no full distance
transform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from retail_navigation.laserscan import rep117
from retail_navigation.maps import OCCUPIED_AT, StoreMap

CELL_SLACK = math.sqrt(2.0) + 0.25 + 0.05    # res*sqrt(2) (point in cell) + res/4 (sampling) + rounding
PLACE_MARGIN_M = 10.0      # an obstacle further than this beyond the map cannot touch it: not marked


@dataclass
class DynamicObstacle:
    x: float
    y: float
    radius: float
    expires: float
    kind: str          # 'bumper', 'person' or 'scan'


class Costmap:
    """The traversable mask of a store map for a robot, with expiring dynamic obstacles."""

    def __init__(self, store_map: StoreMap, robot_radius: float, safety_margin: float = 0.0, *,
                 person_radius: float = 0.3, person_decay_s: float = 2.0,
                 bumper_radius: float = 0.1, bumper_decay_s: float = 30.0,
                 scan_cell_m: float = 0.1, scan_decay_s: float = 3.0, scan_map_gap_m: float = 0.15,
                 scan_range_m: float = 4.0) -> None:
        if robot_radius < 0 or safety_margin < 0:
            raise ValueError('robot radius and safety margin must be >= 0')
        self.map = store_map
        self.robot_radius = robot_radius
        self.safety_margin = safety_margin
        self.person_radius = person_radius
        self.person_decay_s = person_decay_s
        self.bumper_radius = bumper_radius
        self.bumper_decay_s = bumper_decay_s
        self.scan_cell_m = scan_cell_m
        self.scan_decay_s = scan_decay_s
        self.scan_map_gap_m = scan_map_gap_m
        self.scan_range_m = scan_range_m
        res = store_map.resolution
        self.obstacles = (store_map.grid < 0) | (store_map.grid >= OCCUPIED_AT)
        # centre-to-centre distance (m) to the nearest obstacle cell; a map with none is all "far"
        if self.obstacles.any():
            self.static_distance = ndimage.distance_transform_edt(~self.obstacles).astype(np.float32) * res
        else:
            self.static_distance = np.full(self.obstacles.shape, np.float32(1e6))
        self.threshold = self.inflation + CELL_SLACK * res
        self.static_traversable = self.static_distance >= self.threshold
        self.traversable = self.static_traversable.copy()
        self.dynamic: list[DynamicObstacle] = []
        self.version = 0
        self._labels: tuple[int, np.ndarray] | None = None

    @property
    def inflation(self) -> float:
        return self.robot_radius + self.safety_margin

    @property
    def resolution(self) -> float:
        return self.map.resolution

    # --- queries -------------------------------------------------------------------------
    def cell_of(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, col) of a map point, None outside the map."""
        i, j = self.map.world_to_cell(x, y)
        return (j, i) if self.map.in_bounds(i, j) else None

    def is_traversable(self, x: float, y: float) -> bool:
        cell = self.cell_of(x, y)
        return cell is not None and bool(self.traversable[cell])

    def why_blocked(self, x: float, y: float) -> str | None:
        """None if the robot's centre may be at (x, y), else a short reason in the staff's words."""
        cell = self.cell_of(x, y)
        if cell is None:
            return 'outside the map'
        if self.traversable[cell]:
            return None
        value = int(self.map.grid[cell])
        if value < 0:
            return 'in unmapped (unknown) space'
        if value >= OCCUPIED_AT:
            return 'on an obstacle'
        for obstacle in self.dynamic:
            if math.hypot(x - obstacle.x, y - obstacle.y) < obstacle.radius + self.threshold:
                return {'person': 'next to a person', 'scan': 'next to an obstacle the lidar sees'}.get(
                    obstacle.kind, 'next to an obstacle the bumper hit')
        return (f'too close to a shelf or wall ({float(self.static_distance[cell]):.2f} m, '
                f'needs {self.inflation:.2f} m)')

    def clearance(self, x: float, y: float) -> float:
        """Approximate distance (m) from (x, y) to the nearest static obstacle or dynamic disc."""
        cell = self.cell_of(x, y)
        if cell is None:
            return 0.0
        distance = float(self.static_distance[cell])
        for obstacle in self.dynamic:
            distance = min(distance, max(0.0, math.hypot(x - obstacle.x, y - obstacle.y) - obstacle.radius))
        return distance

    def segment_free(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Every point of the segment keeps the clearance (samples every res/2 on traversable cells)."""
        return segment_free(self.traversable, self.map, x0, y0, x1, y1)

    def components(self) -> np.ndarray:
        """8-connected labels of the traversable cells (0 = not traversable), cached per version."""
        if self._labels is None or self._labels[0] != self.version:
            labels, _ = ndimage.label(self.traversable, structure=np.ones((3, 3), dtype=bool))
            self._labels = (self.version, labels)
        return self._labels[1]

    # --- dynamic obstacles -----------------------------------------------------------------
    def placeable(self, x: float, y: float) -> bool:
        """Whether an obstacle at (x, y) can be marked: finite, and not beyond the map by more than
        `PLACE_MARGIN_M` (NaN, inf or 1e300 from a sensor gone wrong would break every rebuild)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        ox, oy, _ = self.map.origin
        size = math.hypot(self.map.width, self.map.height) * self.resolution
        return math.hypot(x - ox, y - oy) <= size + PLACE_MARGIN_M

    def add_bumper_hit(self, x: float, y: float, now: float) -> None:
        if not self.placeable(x, y):
            return
        self.dynamic.append(DynamicObstacle(x, y, self.bumper_radius, now + self.bumper_decay_s, 'bumper'))
        self._rebuild()

    def set_people(self, points: list[tuple[float, float]], now: float) -> None:
        """People seen now (map frame). An earlier sighting is replaced when someone is seen near
        it now; others are kept until they decay (a person hidden for a moment is still there).
        Points that are not `placeable` are left out (the caller says so)."""
        points = [(x, y) for x, y in points if self.placeable(x, y)]
        kept = [o for o in self.dynamic if o.kind != 'person' or o.expires <= now
                or all(math.hypot(o.x - x, o.y - y) > self.person_radius for x, y in points)]
        kept = [o for o in kept if o.expires > now]
        kept.extend(DynamicObstacle(x, y, self.person_radius, now + self.person_decay_s, 'person') for x, y in points)
        if kept != self.dynamic:
            self.dynamic = kept
            self._rebuild()

    def update_laser(self, origin: tuple[float, float, float], robot: tuple[float, float], ranges,
                     angle_min: float, angle_increment: float, range_min: float, range_max: float,
                     now: float) -> bool:
        """Obstacle layer from a LaserScan's fields, read as REP-117 says; `origin` is the laser's
        pose (map), `robot` the base's centre (map). True if the mask changed."""
        beams = rep117(ranges, range_min, range_max)
        usable = beams.hit | beams.free                      # NaN and out-of-range readings are ignored
        angles = origin[2] + angle_min + angle_increment * np.arange(len(beams.ranges))
        return self.update_scan(origin[:2], angles[usable], beams.ranges[usable], beams.hit[usable], now,
                                robot=robot)

    def update_scan(self, origin: tuple[float, float], angles: np.ndarray, ranges: np.ndarray,
                    hit: np.ndarray, now: float, robot: tuple[float, float] | None = None) -> bool:
        """Obstacle layer from one laser scan in the map frame: beams from `origin` along `angles`
        [rad], `ranges` [m] (no-return beams at the sensor's maximum range, `hit` False).
        Clears scan discs that a beam passes through, marks returns within `scan_range_m` that are
        not on the map and (with `robot`, the base's centre) not inside the robot's footprint.
        True if the mask changed."""
        ox, oy = origin
        angles, ranges, hit = np.asarray(angles, float), np.asarray(ranges, float), np.asarray(hit, bool)
        changed = False
        old = [o for o in self.dynamic if o.kind == 'scan']
        if old and len(angles):
            centres = np.array([(o.x - ox, o.y - oy) for o in old])
            dist = np.hypot(centres[:, 0], centres[:, 1])
            bearing = np.arctan2(centres[:, 1], centres[:, 0])
            diff = np.abs((angles[None, :] - bearing[:, None] + np.pi) % (2 * np.pi) - np.pi)
            across = dist[:, None] * np.sin(np.minimum(diff, np.pi / 2))       # beam's distance from the centre
            through = (diff < np.pi / 2) & (across < 0.5 * self.scan_cell_m) & \
                (ranges[None, :] > dist[:, None] + self.scan_cell_m)
            cleared = through.any(axis=1)
            if cleared.any():
                gone = {id(o) for o, c in zip(old, cleared) if c}
                self.dynamic = [o for o in self.dynamic if id(o) not in gone]
                changed = True
        mark = hit & (ranges <= self.scan_range_m)
        if mark.any():
            px = ox + ranges[mark] * np.cos(angles[mark])
            py = oy + ranges[mark] * np.sin(angles[mark])
            res = self.resolution
            mx, my, yaw = self.map.origin
            c, s = math.cos(yaw), math.sin(yaw)
            ci = np.floor((c * (px - mx) + s * (py - my)) / res).astype(np.int64)
            cj = np.floor((-s * (px - mx) + c * (py - my)) / res).astype(np.int64)
            inside = (ci >= 0) & (cj >= 0) & (ci < self.map.width) & (cj < self.map.height)
            gap = np.full(len(px), np.inf)
            gap[inside] = self.static_distance[cj[inside], ci[inside]]
            keep = gap > self.scan_map_gap_m + res / 2           # returns from mapped shelves and walls are not new
            px, py = px[keep], py[keep]
            q = self.scan_cell_m
            cells = np.unique(np.stack([np.floor(px / q), np.floor(py / q)], axis=1).astype(np.int64), axis=0)
            if robot is not None and len(cells):
                # never the robot's own footprint: a mark there would leave it no cell to plan from
                centres = (cells + 0.5) * q
                own = np.hypot(centres[:, 0] - robot[0], centres[:, 1] - robot[1]) < self.robot_radius + 0.5 * q
                cells = cells[~own]
            if len(cells):
                existing = {(round(o.x / q - 0.5), round(o.y / q - 0.5)): o for o in self.dynamic if o.kind == 'scan'}
                expires = now + self.scan_decay_s
                for ci, cj in cells:
                    o = existing.get((int(ci), int(cj)))
                    if o is not None:
                        o.expires = expires
                    else:
                        self.dynamic.append(DynamicObstacle((ci + 0.5) * q, (cj + 0.5) * q, 0.5 * q * math.sqrt(2),
                                                            expires, 'scan'))
                        changed = True
        if changed:
            self._rebuild()
        return changed

    def unmapped(self) -> list[DynamicObstacle]:
        """People and lidar obstacles: what the robot slows down near."""
        return [o for o in self.dynamic if o.kind in ('person', 'scan')]

    def dynamic_blocked(self, x: float, y: float) -> DynamicObstacle | None:
        """The person or bumper obstacle the robot's centre at (x, y) would come too close to."""
        return next((o for o in self.dynamic
                     if math.hypot(x - o.x, y - o.y) < o.radius + self.inflation), None)

    def expire(self, now: float) -> bool:
        """Forget obstacles past their time; True if the mask changed."""
        kept = [o for o in self.dynamic if o.expires > now]
        if len(kept) == len(self.dynamic):
            return False
        self.dynamic = kept
        self._rebuild()
        return True

    def people(self) -> list[DynamicObstacle]:
        return [o for o in self.dynamic if o.kind == 'person']

    def _rebuild(self) -> None:
        self.traversable = self.static_traversable.copy()
        res = self.resolution
        for obstacle in self.dynamic:
            reach = obstacle.radius + self.threshold
            i, j = self.map.world_to_cell(obstacle.x, obstacle.y)
            n = int(math.ceil(reach / res)) + 1
            j0, j1 = max(j - n, 0), min(j + n + 1, self.map.height)
            i0, i1 = max(i - n, 0), min(i + n + 1, self.map.width)
            if j0 >= j1 or i0 >= i1:
                continue
            jj, ii = np.mgrid[j0:j1, i0:i1]
            cx, cy = self.map.cell_to_world(ii, jj)
            near = np.hypot(cx - obstacle.x, cy - obstacle.y) < reach
            self.traversable[j0:j1, i0:i1] &= ~near
        self.version += 1


def segment_free(traversable: np.ndarray, store_map: StoreMap, x0: float, y0: float,
                 x1: float, y1: float) -> bool:
    """True when every res/2 sample of the segment lies in a traversable cell."""
    res = store_map.resolution
    length = math.hypot(x1 - x0, y1 - y0)
    n = max(int(math.ceil(length / (0.5 * res))), 1)
    t = np.linspace(0.0, 1.0, n + 1)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    ox, oy, yaw = store_map.origin
    c, s = math.cos(yaw), math.sin(yaw)
    u = (c * (xs - ox) + s * (ys - oy)) / res
    v = (-s * (xs - ox) + c * (ys - oy)) / res
    i, j = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    h, w = traversable.shape
    if i.min() < 0 or j.min() < 0 or i.max() >= w or j.max() >= h:
        return False
    return bool(traversable[j, i].all())


def exact_clearance(store_map: StoreMap, x: float, y: float, search_m: float) -> float:
    """Exact distance from (x, y) to the nearest occupied/unknown cell square (or the map edge),
    looking within search_m; returns search_m if nothing is nearer. For checks and tests."""
    res = store_map.resolution
    i, j = store_map.world_to_cell(x, y)
    n = int(math.ceil(search_m / res)) + 1
    best = search_m
    ox, oy, yaw = store_map.origin
    c, s = math.cos(yaw), math.sin(yaw)
    u = (c * (x - ox) + s * (y - oy)) / res
    v = (-s * (x - ox) + c * (y - oy)) / res
    jj, ii = np.mgrid[j - n:j + n + 1, i - n:i + n + 1]
    inside = (ii >= 0) & (jj >= 0) & (ii < store_map.width) & (jj < store_map.height)
    values = np.full(ii.shape, -1, dtype=np.int16)       # outside the map counts as unknown
    values[inside] = store_map.grid[jj[inside], ii[inside]]
    blocked = (values < 0) | (values >= OCCUPIED_AT)
    if blocked.any():
        dx = np.maximum(np.maximum(ii[blocked] - u, u - (ii[blocked] + 1)), 0.0)
        dy = np.maximum(np.maximum(jj[blocked] - v, v - (jj[blocked] + 1)), 0.0)
        best = min(best, float(np.hypot(dx, dy).min()) * res)
    return best
