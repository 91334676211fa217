"""Path following for a guide robot: regulated pure pursuit.

Pure pursuit steers towards a point a lookahead distance ahead on the path; the regulation
lowers the speed where a person walking behind would want it lower: in tight turns, in narrow
aisles (low clearance in the costmap), near people and obstacles the lidar sees, and on the final
approach. It stops (and reports `waiting_for_obstacle`) when the path ahead comes closer to
something the costmap now marks as blocked, so the caller can wait and replan (a path leading
away from an obstacle the robot is already near is driven: that is how it gets clear). Pure core: call `step(pose, dt, costmap)` at the
control rate and send the returned (vx, wz).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from retail_navigation.frames import to_local, wrap_angle

Point = tuple[float, float]
Pose = tuple[float, float, float]


@dataclass
class FollowerConfig:
    max_vx: float = 0.45               # m/s: a calm walking pace for customers behind the robot
    min_vx: float = 0.06               # m/s: slowest forward speed while moving (final approach)
    max_wz: float = 1.2                # rad/s
    max_accel: float = 0.5             # m/s^2 of the forward speed command
    lookahead_time_s: float = 1.5
    min_lookahead_m: float = 0.35
    max_lookahead_m: float = 0.9
    rotate_in_place_rad: float = 0.9   # turn on the spot first when the path is this far off
    rotate_gain: float = 2.0
    min_turn_radius_m: float = 0.7     # tighter arcs are driven slower (curvature regulation)
    narrow_clearance_m: float = 0.8    # clearance below which the aisle counts as narrow (< 1.6 m wide)
    narrow_min_scale: float = 0.5
    person_slow_m: float = 1.6         # distance (centre to centre) where slowing for a person starts
    person_stop_m: float = 0.7         # a person this close in front stops the robot
    person_min_scale: float = 0.3
    near_people_vx: float = 0.45       # m/s: speed cap while a person (or unmapped obstacle) is within person_slow_m
    obstacle_check_m: float = 1.0      # path length ahead checked against the costmap
    approach_m: float = 0.8            # slow down over the last metres
    goal_tolerance_m: float = 0.15
    goal_yaw_tolerance_rad: float = 0.25


@dataclass
class Command:
    vx: float
    wz: float
    state: str                 # driving, rotating, waiting_for_obstacle, arrived
    remaining_m: float
    reason: str = ''


class PathFollower:
    """Follows one path; `set_path` starts over."""

    def __init__(self, config: FollowerConfig | None = None) -> None:
        self.config = config or FollowerConfig()
        self.path: list[Point] = []
        self.goal_yaw: float | None = None
        self._segment = 0
        self._cumulative: list[float] = []
        self._last_vx = 0.0
        self._aligning = False

    def set_path(self, path: list[Point], goal_yaw: float | None = None, align_first: bool = False) -> None:
        """Follow `path`; `align_first`: turn on the spot towards its first leg before moving
        (an escape leg away from someone must not start with an arc towards them)."""
        if not path:
            raise ValueError('empty path')
        self._aligning = align_first
        self.path = list(path) if len(path) > 1 else [path[0], path[0]]
        self.goal_yaw = goal_yaw
        self._segment = 0
        self._cumulative = [0.0]
        for a, b in zip(self.path, self.path[1:]):
            self._cumulative.append(self._cumulative[-1] + math.hypot(b[0] - a[0], b[1] - a[1]))

    @property
    def total_length(self) -> float:
        return self._cumulative[-1] if self._cumulative else 0.0

    def progress(self, x: float, y: float) -> float:
        """Arc length of the closest path point at or after the current segment (advances it)."""
        best = (math.inf, self._segment, 0.0)
        for n in range(self._segment, len(self.path) - 1):
            a, b = self.path[n], self.path[n + 1]
            dx, dy = b[0] - a[0], b[1] - a[1]
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - a[0]) * dx + (y - a[1]) * dy) / length2))
            d = math.hypot(a[0] + t * dx - x, a[1] + t * dy - y)
            if d < best[0] - 1e-9:
                best = (d, n, t)
            if self._cumulative[n] - self._cumulative[self._segment] > 3.0:   # look a few metres ahead only
                break
        _, self._segment, t = best
        return self._cumulative[self._segment] + t * (self._cumulative[self._segment + 1] - self._cumulative[self._segment])

    def point_at(self, s: float) -> Point:
        s = max(0.0, min(s, self.total_length))
        for n in range(len(self.path) - 1):
            if self._cumulative[n + 1] >= s:
                span = self._cumulative[n + 1] - self._cumulative[n]
                t = 0.0 if span == 0 else (s - self._cumulative[n]) / span
                a, b = self.path[n], self.path[n + 1]
                return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
        return self.path[-1]

    def remaining(self, pose: Pose) -> float:
        return max(self.total_length - self.progress(pose[0], pose[1]), 0.0)

    def _stop(self, state: str, remaining: float, reason: str = '') -> Command:
        self._last_vx = 0.0
        return Command(0.0, 0.0, state, remaining, reason)

    def _rotate(self, error: float, remaining: float) -> Command:
        c = self.config
        self._last_vx = 0.0
        wz = max(-c.max_wz, min(c.max_wz, c.rotate_gain * error))
        if abs(wz) < 0.25:            # below this the base hardly turns: keep a minimum turn rate
            wz = math.copysign(0.25, error)
        return Command(0.0, wz, 'rotating', remaining)

    def step(self, pose: Pose, dt: float, costmap=None) -> Command:
        """One control cycle. costmap: retail_navigation.costmap.Costmap (people, clearance), optional."""
        c = self.config
        x, y, theta = pose
        s = self.progress(x, y)
        end = self.path[-1]
        remaining = max(self.total_length - s, 0.0)
        to_end = math.hypot(end[0] - x, end[1] - y)
        if to_end <= c.goal_tolerance_m or (remaining <= c.goal_tolerance_m and to_end <= 2 * c.goal_tolerance_m):
            return self._arrive(theta)
        if costmap is not None:
            blocked = self._blocked_ahead(pose, s, costmap)
            if blocked:
                return self._stop('waiting_for_obstacle', remaining, blocked)
        if self._aligning:
            turn = self._align(pose, remaining)
            if turn is not None:
                return turn
        lookahead = max(c.min_lookahead_m, min(c.max_lookahead_m, self._last_vx * c.lookahead_time_s))
        tx, ty = self.point_at(s + lookahead) if remaining > lookahead else end
        local_x, local_y = to_local(pose, (tx, ty))
        alpha = math.atan2(local_y, local_x)
        if abs(alpha) > c.rotate_in_place_rad:
            return self._rotate(alpha, remaining)
        distance2 = max(local_x * local_x + local_y * local_y, 1e-6)
        curvature = 2.0 * local_y / distance2

        scale = curvature_scale(curvature, c.min_turn_radius_m)
        cap = c.max_vx
        if costmap is not None:
            surroundings, stop, near = surroundings_scale(pose, costmap, c)
            if stop:
                return self._stop('waiting_for_obstacle', remaining, stop)
            scale = min(scale, surroundings)
            cap = min(cap, c.near_people_vx) if near else cap
        if remaining < c.approach_m:
            scale = min(scale, remaining / c.approach_m)
        vx = min(max(c.min_vx, c.max_vx * scale), cap)
        vx = min(vx, self._last_vx + c.max_accel * dt)
        wz = vx * curvature
        if abs(wz) > c.max_wz:
            wz = math.copysign(c.max_wz, wz)
            vx = abs(wz / curvature)
        self._last_vx = vx
        return Command(vx, wz, 'driving', remaining)

    def _arrive(self, theta: float) -> Command:
        """At the goal: turn to the goal's heading if one is asked, else stop."""
        if self.goal_yaw is not None:
            error = wrap_angle(self.goal_yaw - theta)
            if abs(error) > self.config.goal_yaw_tolerance_rad:
                return self._rotate(error, 0.0)
        return self._stop('arrived', 0.0)

    def _blocked_ahead(self, pose: Pose, s: float, costmap) -> str:
        """Why the next `obstacle_check_m` of the path cannot be driven ('' when it can): a path
        point closer to something the costmap now marks as blocked than the robot is now."""
        x, y, _ = pose
        step = costmap.resolution
        n = max(int(self.config.obstacle_check_m / step), 1)
        for k in range(1, n + 1):
            px, py = self.point_at(s + k * step)
            obstacle = costmap.dynamic_blocked(px, py)
            if obstacle is not None and math.hypot(px - obstacle.x, py - obstacle.y) < \
                    math.hypot(x - obstacle.x, y - obstacle.y) - 1e-3:
                what = {'person': 'a person', 'scan': 'an obstacle'}.get(obstacle.kind, 'an obstacle the bumper hit')
                return f'{what} blocks the path ahead'
            if s + k * step >= self.total_length:
                break
        return ''

    def _align(self, pose: Pose, remaining: float) -> Command | None:
        """Turn on the spot towards the path's first leg (`align_first`); None once aligned."""
        x, y, theta = pose
        first = self.path[1]
        error = wrap_angle(math.atan2(first[1] - y, first[0] - x) - theta)
        if abs(error) > 0.08 and math.hypot(first[0] - x, first[1] - y) > self.config.goal_tolerance_m:
            return self._rotate(error, remaining)
        self._aligning = False
        return None


def curvature_scale(curvature: float, min_turn_radius_m: float) -> float:
    """Speed scale of an arc: arcs tighter than `min_turn_radius_m` are driven slower."""
    if abs(curvature) > 1e-6 and 1.0 / abs(curvature) < min_turn_radius_m:
        return (1.0 / abs(curvature)) / min_turn_radius_m
    return 1.0


def surroundings_scale(pose: Pose, costmap, c: FollowerConfig) -> tuple[float, str, bool]:
    """(speed scale, stop reason, a person near) from the costmap: narrow aisles and people or
    obstacles near the robot slow it; one right in front stops it (the reason is '' unless it must
    stop); 'near' is a person or unmapped obstacle within `person_slow_m` (the caller caps the speed
    at `near_people_vx` then)."""
    x, y, theta = pose
    scale = 1.0
    near = False
    clearance = costmap.clearance(x, y)
    if clearance < c.narrow_clearance_m:
        scale = min(scale, max(c.narrow_min_scale, clearance / c.narrow_clearance_m))
    for person in costmap.unmapped():
        px, py = person.x - x, person.y - y
        # a lidar disc sits on the body's surface, a person's position at its centre
        distance = math.hypot(px, py) + (0.2 if person.kind == 'scan' else 0.0)
        ahead = math.cos(theta) * px + math.sin(theta) * py > 0
        if ahead and distance < c.person_stop_m and abs(wrap_angle(math.atan2(py, px) - theta)) < math.pi / 3:
            what = 'a person' if person.kind == 'person' else 'something'
            return scale, f'{what} is right in front of the robot', True
        if distance < c.person_slow_m:
            near = True
            span = max(c.person_slow_m - c.person_stop_m, 1e-6)
            scale = min(scale, max(c.person_min_scale, (distance - c.person_stop_m) / span))
    return scale, '', near
