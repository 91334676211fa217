"""Collision monitor: the last check between the guide's velocity command and the base (Nav2's design).

Pure core. It looks only at raw laser points (in `base_link`), never at the costmap or the map,
so a wrong localisation, a stale costmap or a planner bug cannot drive the robot into someone.
For a command (vx, wz):

- **stop polygon**: a rectangle ahead of the robot in the direction of travel (behind when
  reversing), as wide as the robot plus `stop_width_margin_m`, reaching `stop_margin_m` beyond the
  front plus `|vx| * stop_time_s` (it grows with speed): `min_points` points inside -> (0, 0);
- **slowdown polygon**: the same, wider and longer (`slowdown_*`): points inside scale the command
  by `slowdown_ratio`;
- **body**: points within `robot_radius + body_margin_m` of the centre stop everything, turning
  too (something touches the robot). A round base turning on the spot sweeps nothing else, so
  turning in place is allowed when only the polygons ahead hold points (the guide can turn away
  from a person standing in front);
- **stale scan**: no scan for `scan_timeout_s` -> (0, 0).

`decide()` returns the command to send and why; the node publishes it on `/cmd_vel`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class MonitorConfig:
    robot_radius: float = 0.18
    body_margin_m: float = 0.03
    stop_margin_m: float = 0.10          # stop polygon reaches this far beyond the front at rest ...
    stop_time_s: float = 0.5             # ... plus this many seconds of travel
    stop_width_margin_m: float = 0.05    # half width = radius + this
    slowdown_margin_m: float = 0.45
    slowdown_time_s: float = 1.5
    slowdown_width_margin_m: float = 0.25
    slowdown_ratio: float = 0.4
    min_points: int = 2                  # points needed inside a polygon (a single return may be noise)
    scan_timeout_s: float = 0.5
    turn_in_place_vx: float = 0.02       # |vx| below this counts as turning on the spot

    def polygon(self, kind: str, vx: float) -> tuple[float, float, float]:
        """(x_near, x_far, half_width) of the rectangle ahead for a forward speed |vx|."""
        speed = abs(vx)
        if kind == 'stop':
            return (0.0, self.robot_radius + self.stop_margin_m + speed * self.stop_time_s,
                    self.robot_radius + self.stop_width_margin_m)
        return (0.0, self.robot_radius + self.slowdown_margin_m + speed * self.slowdown_time_s,
                self.robot_radius + self.slowdown_width_margin_m)


@dataclass
class Decision:
    vx: float
    wz: float
    action: str          # pass, slowdown, stop, stale
    reason: str = ''
    points_in_stop: int = 0
    points_in_slowdown: int = 0


def points_in_rectangle(points: np.ndarray, x_near: float, x_far: float, half_width: float,
                        backwards: bool = False) -> int:
    if not len(points):
        return 0
    x = -points[:, 0] if backwards else points[:, 0]
    return int(((x >= x_near) & (x <= x_far) & (np.abs(points[:, 1]) <= half_width)).sum())


class CollisionMonitor:
    def __init__(self, config: MonitorConfig | None = None) -> None:
        self.config = config or MonitorConfig()

    def decide(self, vx: float, wz: float, points: np.ndarray | None, scan_age_s: float) -> Decision:
        """The command to send for (vx, wz) given the latest scan points (float[k, 2], base_link)
        and the scan's age [s]."""
        c = self.config
        if points is None or not math.isfinite(scan_age_s) or scan_age_s > c.scan_timeout_s:
            age = 'no scan yet' if points is None or not math.isfinite(scan_age_s) else f'scan {scan_age_s:.2f} s old'
            return Decision(0.0, 0.0, 'stale', f'laser data stale ({age}): stopped')
        if vx == 0.0 and wz == 0.0:
            return Decision(0.0, 0.0, 'pass')
        body = int((np.hypot(points[:, 0], points[:, 1]) <= c.robot_radius + c.body_margin_m).sum()) \
            if len(points) else 0
        if body >= c.min_points:
            return Decision(0.0, 0.0, 'stop', f'{body} laser points touch the robot')
        if abs(vx) < c.turn_in_place_vx:
            return Decision(vx, wz, 'pass')
        backwards = vx < 0
        stop = points_in_rectangle(points, *c.polygon('stop', vx), backwards=backwards)
        if stop >= c.min_points:
            return Decision(0.0, 0.0, 'stop', f'{stop} laser points in the stop zone', stop, stop)
        slow = points_in_rectangle(points, *c.polygon('slowdown', vx), backwards=backwards)
        if slow >= c.min_points:
            return Decision(vx * c.slowdown_ratio, wz * c.slowdown_ratio, 'slowdown',
                            f'{slow} laser points in the slowdown zone', stop, slow)
        return Decision(vx, wz, 'pass', '', stop, slow)
