"""Collision monitor: the last check between the guide's velocity command and the base (Nav2's design).

Pure core. It looks only at raw laser points (in `base_link`), never at the costmap or the map,
so a wrong localisation, a stale costmap or a planner bug cannot drive the robot into someone.

**The command** (`check_command`): a velocity that is not a finite number (NaN, ±inf) or is
absurd (more than `absurd_factor` times its limit, e.g. 1e308) is never passed on: the robot
stops and the reason is reported. A finite command over its limit is clamped to
`max_vx`/`max_reverse_vx`/`max_wz`.

**The sources** (`ScanSource`, one per laser, the same rules for each, like Nav2's `Source`):

- a scan's age is judged by its header stamp against the node's clock (Nav2's `source_timeout`),
  never by when it arrived: a driver republishing its last scan with the old stamp (frozen),
  scans stamped late, stamps further in the future than `future_tolerance_s` and zero stamps make
  the source *stale* -> stop, with the reason;
- ranges are read as REP-117 says: -inf is "something closer than range_min" -> an obstacle at
  the nearest place along the beam where it can be outside the robot's body (`body_radius`), or at
  range_min when that is nearer (a lidar with a long blind zone still stops for a box at the bumper); +inf is "nothing within range_max" -> free; NaN (and finite values
  outside [range_min, range_max], e.g. the 0.0 some drivers send) is an invalid beam, ignored;
  but when more than `max_invalid_ahead_share` of the beams looking in the direction of travel
  are invalid, the source cannot see the way and the robot does not translate (*blind*);
- what the sources do not look at is not free: the beams of all sources together must cover the
  direction of travel (`ahead_half_angle` either side) with no gap wider than `max_beam_gap`
  (a scan cropped to the rear, too few rays), else *blind*; a scan whose beams span more than a
  turn or whose `angle_min` is more than a turn away from 0 is malformed (stale: stop);
- +inf is free only up to `range_max`: a source that sees less far (`range_max` less its distance
  from the centre, the shortest of the sources) than the stop polygon's far corner caps the speed
  to what the stop polygon it can see allows, and stops (*blind*) when it cannot see even the
  polygon at rest (a lidar in a short-range mode, a wrong `range_max`).

**The polygons** (`CollisionMonitor.decide`), for a command (vx, wz):

- **stop polygon**: a rectangle ahead of the robot in the direction of travel (behind when
  reversing), as wide as the robot plus `stop_width_margin_m`, reaching `stop_margin_m` beyond the
  front plus `|vx| * stop_time_s` (it grows with speed): `min_points` points inside -> (0, 0);
- **slowdown polygon**: the same, wider and longer (`slowdown_*`): points inside scale the command
  by `slowdown_ratio`;
- **body**: points within `robot_radius + body_margin_m` of the centre stop everything, turning
  too (something touches the robot). A round base turning on the spot sweeps nothing else, so
  turning in place is allowed when only the polygons ahead hold points (the guide can turn away
  from a person standing in front).

`decide()` returns the command to send and why (`Decision.action`: pass, slowdown, stop, stale,
blind, invalid_command); the node publishes it on `/cmd_vel`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from retail_navigation.laserscan import MAX_BEAMS, rep117, stamp_problem

TURN = 2.0 * math.pi

__all__ = ['MAX_BEAMS', 'CollisionMonitor', 'Decision', 'MonitorConfig', 'Observation', 'ScanSource', 'SourceConfig',
           'points_in_rectangle', 'rep117_points']


@dataclass
class MonitorConfig:
    robot_radius: float = 0.18
    body_margin_m: float = 0.03
    stop_margin_m: float = 0.10          # stop polygon reaches this far beyond the front at rest ...
    stop_time_s: float = 0.5             # ... plus this many seconds of travel
    stop_width_margin_m: float = 0.05    # half width = radius + this
    slowdown_margin_m: float = 0.45
    slowdown_time_s: float = 1.5
    slowdown_width_margin_m: float = 0.10   # half width = radius + this: narrower than the guide's clearance
    slowdown_ratio: float = 0.4
    min_points: int = 2                  # points needed inside a polygon (a single return may be noise)
    turn_in_place_vx: float = 0.02       # |vx| below this counts as turning on the spot
    max_vx: float = 0.7                  # commands are clamped to these limits ...
    max_reverse_vx: float = 0.2
    max_wz: float = 1.5
    absurd_factor: float = 2.0           # ... and one beyond this many times its limit stops the robot

    def polygon(self, kind: str, vx: float) -> tuple[float, float, float]:
        """(x_near, x_far, half_width) of the rectangle ahead for a forward speed |vx|."""
        speed = abs(vx)
        if kind == 'stop':
            return (0.0, self.robot_radius + self.stop_margin_m + speed * self.stop_time_s,
                    self.robot_radius + self.stop_width_margin_m)
        return (0.0, self.robot_radius + self.slowdown_margin_m + speed * self.slowdown_time_s,
                self.robot_radius + self.slowdown_width_margin_m)


@dataclass
class SourceConfig:
    """What makes a laser source trustworthy (the same for every source)."""

    source_timeout_s: float = 0.5        # a scan stamped longer ago than this is stale
    future_tolerance_s: float = 0.1      # a stamp this far ahead of the node clock is still accepted
    max_invalid_ahead_share: float = 0.5  # more invalid (NaN) beams than this in the way: blind
    ahead_half_angle: float = math.radians(60)   # beams within this of the direction of travel
    body_radius: float = 0.21            # robot_radius + body_margin: where a -inf ("too close") return can start
    max_beam_gap: float = math.radians(5)   # widest angle in the direction of travel no beam looks at


@dataclass
class Observation:
    """What a source tells the monitor now: points (float[k, 2], base_link) or why it cannot."""

    name: str
    points: np.ndarray
    problem: str = ''                    # non-empty: stale (by stamp) or malformed -> stop
    invalid_ahead: float = 0.0           # share of invalid beams looking forwards ...
    invalid_behind: float = 0.0          # ... and backwards
    angles_ahead: np.ndarray = field(default_factory=lambda: np.zeros(0))   # beam directions (base_link,
    angles_behind: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rad, sorted) in each sector
    reach: float = math.inf              # how far from the centre it sees: range_max - |mount|


@dataclass
class Decision:
    vx: float
    wz: float
    action: str          # pass, slowdown, stop, stale, blind, invalid_command
    reason: str = ''
    points_in_stop: int = 0
    points_in_slowdown: int = 0
    clamped: bool = False


def rep117_points(ranges: np.ndarray, angles: np.ndarray, range_min: float,
                  range_max: float, too_close_at: np.ndarray | float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """REP-117 reading of a scan: (points float[k, 2] in the laser frame, their beam angles,
    bool mask of the invalid beams). -inf -> a point at `too_close_at` (per beam; default range_min);
    +inf -> nothing; NaN and finite values outside [range_min, range_max] -> invalid."""
    beams = rep117(ranges, range_min, range_max)
    angles = np.asarray(angles, dtype=np.float64)
    r, hit, invalid = beams.ranges, beams.hit, beams.invalid
    if too_close_at is not None:
        r = np.where(np.isneginf(np.asarray(ranges, dtype=np.float64)), too_close_at, r)
    a = angles[hit]
    return np.stack([r[hit] * np.cos(a), r[hit] * np.sin(a)], axis=1), a, invalid


class ScanSource:
    """One laser: keeps its last scan (in base_link) and judges it by its stamp when asked."""

    def __init__(self, name: str, mount: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 config: SourceConfig | None = None, frame: str = '') -> None:
        self.name = name
        self.frame = frame.lstrip('/')        # the frame_id its scans must carry ('' = not checked)
        self.config = config or SourceConfig()
        self.mount = mount
        self.stamp: float | None = None      # header stamp [s] of the kept scan
        self.points = np.zeros((0, 2))
        self.invalid_ahead = self.invalid_behind = 0.0
        self.angles_ahead = self.angles_behind = np.zeros(0)
        self.reach = math.inf
        self.malformed = ''
        self.scans = 0
        self.ignored = 0                     # malformed or out of order

    def update(self, stamp_s: float, ranges: Sequence[float] | np.ndarray, angle_min: float,
               angle_increment: float, range_min: float, range_max: float, now_s: float | None = None,
               frame_id: str | None = None) -> str:
        """Take a scan; returns '' or why it was refused (malformed: the source stops the robot
        until a good scan comes; out of order: ignored, unless the kept scan is stamped in the
        future beyond the tolerance at `now_s`: one glitched stamp must not hold the robot for good)."""
        self.scans += 1
        n = len(ranges)
        bad = self._refusal(stamp_s, n, angle_min, angle_increment, range_min, range_max, frame_id)
        if bad:
            self.ignored += 1
            self.malformed = bad
            return bad
        kept_from_future = now_s is not None and self.stamp is not None \
            and self.stamp - now_s > self.config.future_tolerance_s
        if self.stamp is not None and stamp_s < self.stamp and not self.malformed and stamp_s != 0.0 \
                and not kept_from_future:
            self.ignored += 1
            return f'scan stamped {self.stamp - stamp_s:.3f} s before the previous one: ignored'
        self.malformed = ''
        angles = angle_min + angle_increment * np.arange(n)
        lx, ly, lyaw = self.mount
        # -inf: something anywhere closer than range_min; the nearest it can be outside the body is where
        # the beam leaves the body circle (|mount + t u| = body_radius), not range_min (issue 21 attack)
        ux, uy = np.cos(angles + lyaw), np.sin(angles + lyaw)
        mu = lx * ux + ly * uy
        disc = mu * mu - (lx * lx + ly * ly) + self.config.body_radius ** 2
        exit_t = np.where(disc >= 0.0, -mu + np.sqrt(np.maximum(disc, 0.0)), 0.0)
        too_close_at = np.minimum(range_min, np.maximum(exit_t, 0.0) + 0.01)
        local, beam_angles, invalid = rep117_points(np.asarray(ranges, dtype=np.float64), angles, range_min,
                                                    range_max, too_close_at)
        c, s = math.cos(lyaw), math.sin(lyaw)
        points = np.empty_like(local)
        points[:, 0] = lx + c * local[:, 0] - s * local[:, 1]
        points[:, 1] = ly + s * local[:, 0] + c * local[:, 1]
        base_angles = np.angle(np.exp(1j * (angles + lyaw)))          # beam directions in base_link
        ahead = np.abs(base_angles) <= self.config.ahead_half_angle
        behind = np.abs(base_angles) >= math.pi - self.config.ahead_half_angle
        self.invalid_ahead = float(invalid[ahead].mean()) if ahead.any() else 0.0
        self.invalid_behind = float(invalid[behind].mean()) if behind.any() else 0.0
        self.angles_ahead = np.sort(base_angles[ahead])
        self.angles_behind = np.sort(np.mod(base_angles[behind], TURN) - math.pi)   # about pi -> about 0
        self.reach = range_max - math.hypot(lx, ly)
        self.points = points
        self.stamp = stamp_s
        return ''

    def _refusal(self, stamp_s: float, n: int, angle_min: float, angle_increment: float, range_min: float,
                 range_max: float, frame_id: str | None) -> str:
        """Why a scan's header cannot be used ('' when it can)."""
        bad = ''
        if not all(math.isfinite(v) for v in (stamp_s, angle_min, angle_increment, range_min, range_max)):
            bad = 'scan header has non-finite values'
        elif n == 0 or n > MAX_BEAMS:
            bad = f'scan has {n} ranges (1..{MAX_BEAMS} expected)'
        elif angle_increment == 0.0 or not 0.0 <= range_min < range_max:
            bad = f'scan geometry invalid (angle_increment {angle_increment}, range {range_min}..{range_max})'
        elif abs(angle_min) > TURN + 1e-3 or abs(angle_increment) * (n - 1) > TURN + 1e-3:
            # beams beyond a turn would be read on top of each other (or, for angle_min 1e17, all in one
            # direction the float's rounding picks): the scan cannot be placed
            bad = (f'scan geometry invalid (angle_min {angle_min:.6g}, {n} beams every {angle_increment:.6g} rad: '
                   f'more than a turn)')
        elif self.frame and frame_id is not None and frame_id.lstrip('/') != self.frame:
            # a scan from another laser (a second lidar publishing on this topic) would be read as if
            # mounted where this one is: its points are never used
            bad = f'scan in frame {frame_id[:64]!r}, expected {self.frame!r} (another lidar on this topic?)'
        return bad

    def problem(self, now_s: float) -> str:
        """'' when the kept scan may be used at `now_s` (node clock), else why not."""
        c = self.config
        if self.malformed:
            return f'{self.name}: {self.malformed}'
        problem = stamp_problem('scan', self.stamp, now_s, c.source_timeout_s, c.future_tolerance_s, 'lidar')
        return f'{self.name}: {problem}' if problem else ''

    def observe(self, now_s: float) -> Observation:
        return Observation(self.name, self.points, self.problem(now_s), self.invalid_ahead, self.invalid_behind,
                           self.angles_ahead, self.angles_behind, self.reach)


def points_in_rectangle(points: np.ndarray, x_near: float, x_far: float, half_width: float,
                        backwards: bool = False) -> int:
    if not len(points):
        return 0
    x = -points[:, 0] if backwards else points[:, 0]
    return int(((x >= x_near) & (x <= x_far) & (np.abs(points[:, 1]) <= half_width)).sum())


class CollisionMonitor:
    def __init__(self, config: MonitorConfig | None = None, source: SourceConfig | None = None) -> None:
        self.config = config or MonitorConfig()
        self.source = source or SourceConfig()

    def set_stop_margin(self, margin_m: float) -> None:
        """A new stop reach at rest (a live `stop_margin_m`, e.g. a desired state's
        safety_distance_m): a new config, so the decision under way keeps the one it started with
        and the next command is judged with this one."""
        self.config = replace(self.config, stop_margin_m=float(margin_m))

    def check_command(self, vx: float, wz: float) -> tuple[float, float, str, bool]:
        """(vx, wz, problem, clamped): problem is non-empty for a command that must not move the
        robot (non-finite or absurd); otherwise the command clamped to the limits."""
        c = self.config
        if not (math.isfinite(vx) and math.isfinite(wz)):
            return 0.0, 0.0, f'velocity command not finite (vx={vx}, wz={wz})', False
        limit_vx = c.max_vx if vx >= 0 else c.max_reverse_vx
        if abs(vx) > c.absurd_factor * max(limit_vx, 1e-3) or abs(wz) > c.absurd_factor * max(c.max_wz, 1e-3):
            return 0.0, 0.0, f'velocity command absurd (vx={vx:.3g}, wz={wz:.3g}; limits {c.max_vx}, {c.max_wz})', False
        cvx = min(max(vx, -c.max_reverse_vx), c.max_vx)
        cwz = min(max(wz, -c.max_wz), c.max_wz)
        return cvx, cwz, '', (cvx, cwz) != (vx, wz)

    def decide(self, vx: float, wz: float, observations: Sequence[Observation]) -> Decision:
        """The command to send for (vx, wz) given what every source sees now. The checks are in
        priority order: a bad command, unusable sources, standing still, the body touched, turning
        on the spot, a blind source, then the stop and slowdown zones."""
        c = self.config
        vx, wz, problem, clamped = self.check_command(vx, wz)
        if problem:
            return Decision(0.0, 0.0, 'invalid_command', f'{problem}: stopped')
        stale = stale_decision(observations)
        if stale is not None:
            return stale
        if vx == 0.0 and wz == 0.0:
            return Decision(0.0, 0.0, 'pass')
        points = np.concatenate([o.points for o in observations]) if len(observations) > 1 else observations[0].points
        body = int((np.hypot(points[:, 0], points[:, 1]) <= c.robot_radius + c.body_margin_m).sum()) \
            if len(points) else 0
        if body >= c.min_points:
            return Decision(0.0, 0.0, 'stop', f'{body} laser points touch the robot')
        backwards = vx < 0
        limit = self.source.max_invalid_ahead_share
        if abs(vx) < c.turn_in_place_vx:
            # turning on the spot; the creep forward it carries is dropped when the way is not clear or not seen
            creep_blocked = points_in_rectangle(points, *c.polygon('stop', vx), backwards=backwards) >= c.min_points \
                or blind_decision(observations, backwards, limit, self.source.ahead_half_angle,
                                  self.source.max_beam_gap) is not None or self.seen_speed(observations) <= 0.0
            return Decision(0.0 if creep_blocked else vx, wz, 'pass', clamped=clamped)
        blind = blind_decision(observations, backwards, limit, self.source.ahead_half_angle, self.source.max_beam_gap)
        if blind is not None:
            return blind
        seen_speed = self.seen_speed(observations)
        if abs(vx) > seen_speed:
            reach = min(o.reach for o in observations)
            if seen_speed < c.turn_in_place_vx:
                return Decision(0.0, 0.0, 'blind', f'the lidar sees {reach:.2f} m from the centre (range_max), '
                                'less than the stop zone at rest: cannot see the way')
            vx, clamped = math.copysign(seen_speed, vx), True
        stop = points_in_rectangle(points, *c.polygon('stop', vx), backwards=backwards)
        if stop >= c.min_points:
            return Decision(0.0, 0.0, 'stop', f'{stop} laser points in the stop zone', stop, stop)
        slow = points_in_rectangle(points, *c.polygon('slowdown', vx), backwards=backwards)
        if slow >= c.min_points:
            return Decision(vx * c.slowdown_ratio, wz * c.slowdown_ratio, 'slowdown',
                            f'{slow} laser points in the slowdown zone', stop, slow, clamped)
        return Decision(vx, wz, 'pass', '', stop, slow, clamped)


    def seen_speed(self, observations: Sequence[Observation]) -> float:
        """The highest speed whose stop polygon (its far corners too) lies within what every source
        sees (+inf is free only up to range_max); below 0 when not even the polygon at rest is seen."""
        c = self.config
        reach = min((o.reach for o in observations), default=0.0)
        if reach == math.inf:
            return math.inf
        _, far, half_width = c.polygon('stop', 0.0)
        if reach <= half_width:
            return -1.0
        return (math.sqrt(reach * reach - half_width * half_width) - far) / max(c.stop_time_s, 1e-6)


def stale_decision(observations: Sequence[Observation]) -> Decision | None:
    """A stop when there is no source or a source's data cannot be used (stale, malformed); else None."""
    if not observations:
        return Decision(0.0, 0.0, 'stale', 'no laser source: stopped')
    problems = [o.problem for o in observations if o.problem]
    if problems:
        return Decision(0.0, 0.0, 'stale', f'laser data not usable ({"; ".join(problems)}): stopped')
    return None


def blind_decision(observations: Sequence[Observation], backwards: bool, limit: float,
                   half_angle: float = math.radians(60), max_gap: float = math.tau) -> Decision | None:
    """A stop when a source's beams in the driving direction are mostly invalid (NaN), or when the
    beams of all sources leave a gap wider than `max_gap` within `half_angle` of it; else None."""
    way = 'behind' if backwards else 'ahead'
    for o in observations:
        share = o.invalid_behind if backwards else o.invalid_ahead
        if share > limit:
            return Decision(0.0, 0.0, 'blind', f'{o.name}: {share:.0%} of the beams '
                            f'{way} are invalid (NaN): cannot see the way')
    angles = np.sort(np.concatenate([o.angles_behind if backwards else o.angles_ahead for o in observations]))
    edges = np.concatenate([[-half_angle], angles, [half_angle]])
    gap = float(np.max(np.diff(edges)))
    if gap > max_gap:
        return Decision(0.0, 0.0, 'blind', f'no beam looks at {math.degrees(gap):.0f} degrees of the way {way} '
                        f'(scans cover {len(angles)} beams there): cannot see the way')
    return None
