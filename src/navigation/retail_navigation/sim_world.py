"""The simulated store around the robot: shoppers walking between zones and things not on the map.

Pure core (numpy). `SimWorld` holds:

- the *world* grid: the store map with objects painted in that the map does not have (a trolley
  left in an aisle): the base bumps into them and the lidar sees them, the robot's map does not;
- shoppers: discs (radius `person_radius`) who walk between zones at 0.5-1.2 m/s along planned
  paths, stop at a shelf for a while, and walk on. Like people in a shop they stop for a robot
  right in front of them and, after waiting a few seconds, walk around it (a new path that keeps
  clear of the robot, to another shelf when the robot stands on theirs); nobody walks into a robot
  they face; they pass through each other.

Contacts between the robot and a shopper are counted (`contacts`) and reported to the base as
bumper presses by `SimulatedBase`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from retail_navigation.costmap import Costmap
from retail_navigation.maps import OCCUPIED, StoreMap
from retail_navigation.planner import GlobalPlanner, PlanError

Pose = tuple[float, float, float]
Rect = tuple[float, float, float, float]


@dataclass
class Shopper:
    x: float
    y: float
    speed: float
    path: list[tuple[float, float]] = field(default_factory=list)
    state: str = 'browsing'          # walking, browsing, yielding
    until: float = 0.0               # browsing/yielding ends at this sim time
    heading: float = 0.0
    touching: bool = False           # in contact with the robot now
    no_yield_until: float = 0.0      # walking around the robot: no new stop for it before this time


def parse_rects(text: str) -> list[Rect]:
    """'x0,y0,x1,y1;x0,y0,x1,y1' -> rectangles (map frame, metres). ValueError with the bad part."""
    rects = []
    for part in filter(None, (p.strip() for p in (text or '').split(';'))):
        try:
            values = [float(v) for v in part.split(',')]
        except ValueError:
            raise ValueError(f'object {part!r}: expected x0,y0,x1,y1 numbers') from None
        if len(values) != 4:
            raise ValueError(f'object {part!r}: expected x0,y0,x1,y1')
        x0, y0, x1, y1 = values
        rects.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return rects


def paint_objects(store_map: StoreMap, rects: list[Rect]) -> StoreMap:
    """A copy of the map with the rectangles occupied."""
    grid = store_map.grid.copy()
    res = store_map.resolution
    for x0, y0, x1, y1 in rects:
        xs = np.arange(x0, x1 + res / 2, res / 2)
        ys = np.arange(y0, y1 + res / 2, res / 2)
        for x in xs:
            for y in ys:
                i, j = store_map.world_to_cell(x, y)
                if store_map.in_bounds(i, j):
                    grid[j, i] = OCCUPIED
    return StoreMap(grid=grid, resolution=res, origin=store_map.origin, source=store_map.source + ' (+objects)')


class SimWorld:
    def __init__(self, store_map: StoreMap, places: list[tuple[float, float]], *, people: int = 0,
                 objects: list[Rect] | None = None, seed: int | None = None, person_radius: float = 0.22,
                 speed_range: tuple[float, float] = (0.5, 1.2), browse_s: tuple[float, float] = (3.0, 15.0),
                 avoid: list[tuple[float, float]] | None = None) -> None:
        self.map = store_map
        self.world_map = paint_objects(store_map, objects or [])
        self.rng = np.random.default_rng(seed)
        self.person_radius = person_radius
        self.speed_range = speed_range
        self.browse_s = browse_s
        self.time = 0.0
        self.contacts = 0
        self.costmap = Costmap(self.world_map, person_radius, 0.05)
        self.planner = GlobalPlanner(self.costmap)
        self.places = [p for p in places if self.costmap.is_traversable(*p)] or places
        self.shoppers: list[Shopper] = []
        avoid = avoid or []
        for _ in range(people):
            for _attempt in range(50):
                x, y = self._near_place()
                if all(math.hypot(x - a[0], y - a[1]) > 1.0 for a in avoid):
                    break
            speed = float(self.rng.uniform(*speed_range))
            self.shoppers.append(Shopper(x, y, speed, state='browsing',
                                         until=float(self.rng.uniform(0.0, browse_s[0]))))

    def _near_place(self) -> tuple[float, float]:
        """A traversable spot within ~1.5 m of a random place (a shelf to look at)."""
        for _ in range(100):
            px, py = self.places[int(self.rng.integers(len(self.places)))]
            r, a = self.rng.uniform(0.3, 1.5), self.rng.uniform(-math.pi, math.pi)
            x, y = px + r * math.cos(a), py + r * math.sin(a)
            if self.costmap.is_traversable(x, y):
                return x, y
        return self.places[0]

    # --- motion ---------------------------------------------------------------------------------
    def step(self, dt: float, robot: Pose | None = None, robot_radius: float = 0.18) -> None:
        self.time += dt
        for s in self.shoppers:
            if s.state == 'yielding' and self.time >= s.until:
                self._walk_around(s, robot)
            elif s.state == 'browsing' and self.time >= s.until:
                self._walk_to_new_shelf(s)
            if s.state != 'walking':
                if s.state == 'yielding' and robot is not None and not self._robot_ahead(s, robot, robot_radius):
                    s.state = 'walking'
                continue
            if robot is not None and self._robot_ahead(s, robot, robot_radius) and (
                    self.time >= s.no_yield_until or self._about_to_touch(s, robot, robot_radius, dt)):
                s.state, s.until = 'yielding', self.time + float(self.rng.uniform(2.0, 5.0))
                continue
            self._advance(s, s.speed * dt)
            if not s.path:
                s.state, s.until = 'browsing', self.time + float(self.rng.uniform(*self.browse_s))

    def _robot_ahead(self, s: Shopper, robot: Pose, robot_radius: float) -> bool:
        """A shopper stops for a robot less than ~0.5 m in front of them."""
        dx, dy = robot[0] - s.x, robot[1] - s.y
        d = math.hypot(dx, dy)
        if d > robot_radius + self.person_radius + 0.5:
            return False
        return abs(math.atan2(math.sin(math.atan2(dy, dx) - s.heading),
                              math.cos(math.atan2(dy, dx) - s.heading))) < math.radians(70)

    def _about_to_touch(self, s: Shopper, robot: Pose, robot_radius: float, dt: float) -> bool:
        """The next step would bring the shopper into contact with the robot: nobody walks into a
        robot they are facing, even while walking around it."""
        gap = math.hypot(robot[0] - s.x, robot[1] - s.y) - robot_radius - self.person_radius
        return gap <= s.speed * dt + 0.05

    def _walk_around(self, s: Shopper, robot: Pose | None) -> None:
        """After waiting for the robot: to the same place (or, when the robot stands on it, a new
        shelf) on a path around it."""
        goal = s.path[-1] if s.path else self._near_place()
        if robot is not None and math.hypot(goal[0] - robot[0], goal[1] - robot[1]) < 1.0:
            goal = self._near_place()
        if robot is not None:
            self.costmap.set_people([robot[:2]], self.time)
        try:
            plan = self.planner.plan((s.x, s.y), goal)
            s.path, s.state = list(plan.path[1:]), 'walking'
        except PlanError:
            s.state, s.until = 'browsing', self.time + float(self.rng.uniform(1.0, 3.0))
        finally:
            if robot is not None:
                self.costmap.expire(math.inf)                     # forget the robot again
        s.no_yield_until = self.time + 6.0

    def _walk_to_new_shelf(self, s: Shopper) -> None:
        for _ in range(5):
            goal = self._near_place()
            try:
                plan = self.planner.plan((s.x, s.y), goal)
            except PlanError:
                continue
            s.path = list(plan.path[1:])
            s.state = 'walking'
            s.speed = float(self.rng.uniform(*self.speed_range))
            return
        s.state, s.until = 'browsing', self.time + 2.0

    def _advance(self, s: Shopper, distance: float) -> None:
        while distance > 1e-9 and s.path:
            tx, ty = s.path[0]
            d = math.hypot(tx - s.x, ty - s.y)
            if d > 1e-9:
                s.heading = math.atan2(ty - s.y, tx - s.x)
            if d <= distance:
                s.x, s.y = tx, ty
                s.path.pop(0)
                distance -= d
            else:
                s.x += (tx - s.x) / d * distance
                s.y += (ty - s.y) / d * distance
                distance = 0.0

    # --- what others see -----------------------------------------------------------------------
    def circles(self) -> np.ndarray:
        """float[k, 3]: x, y, radius of every shopper."""
        if not self.shoppers:
            return np.zeros((0, 3))
        return np.array([(s.x, s.y, self.person_radius) for s in self.shoppers])

    def touching(self, robot: Pose, robot_radius: float, gap: float = 0.0) -> list[float]:
        """Bearings (robot frame, rad) of the shoppers touching the robot; counts new contacts."""
        bearings = []
        for s in self.shoppers:
            dx, dy = s.x - robot[0], s.y - robot[1]
            touching = math.hypot(dx, dy) <= robot_radius + self.person_radius + gap
            if touching:
                if not s.touching:
                    self.contacts += 1
                a = math.atan2(dy, dx) - robot[2]
                bearings.append(math.atan2(math.sin(a), math.cos(a)))
            s.touching = touching
        return bearings

    def overlaps(self, robot: Pose, robot_radius: float) -> bool:
        return any(math.hypot(s.x - robot[0], s.y - robot[1]) < robot_radius + self.person_radius
                   for s in self.shoppers)
