"""A 2D lidar, simulated: exact ray casting on an occupancy grid plus round moving obstacles.

Pure core (numpy). `cast_grid` walks every beam through the grid cell by cell at once
(Amanatides & Woo's grid traversal, vectorised over beams): the range is the distance to the
first occupied cell's boundary, exactly, not sampled. `cast_circles` intersects the beams with
discs (people). `SimLidar.scan` combines both for a laser at a mount pose on the robot and adds
range noise, as a `sensor_msgs/LaserScan` would carry it: beams from `angle_min` counter-clockwise
every `angle_increment`, ranges in metres, `+inf` where nothing was seen within `range_max` and
`-inf` for something inside the blind zone below `range_min` (REP-117; `too_close='nan'` gives the
NaN some drivers send instead).

Honest faults of real drivers for tests and the simulator (`StampFault`, `ScanStamper`): a frozen
driver republishing its last scan with its old stamp, scans stamped late or in the future, zero
stamps. A short-range lidar is `range_max` smaller than the store (every far beam `+inf`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from retail_navigation.maps import OCCUPIED_AT, StoreMap

Pose = tuple[float, float, float]


@dataclass
class LidarConfig:
    """What the laser is and where it sits on the robot (RPLidar A1/LDS-01 class defaults)."""

    beams: int = 360
    range_min: float = 0.15          # m: blind zone
    range_max: float = 12.0          # m
    rate_hz: float = 10.0
    noise_std: float = 0.01          # m, range noise (Gaussian)
    mount: Pose = (0.0, 0.0, 0.0)    # base_link -> laser (x, y, yaw)
    angle_min: float = -math.pi
    too_close: str = '-inf'          # reading below range_min: '-inf' (REP-117) or 'nan' (some drivers)

    @property
    def angle_increment(self) -> float:
        return 2.0 * math.pi / self.beams

    def angles(self) -> np.ndarray:
        """Beam angles in the laser frame [rad]."""
        return self.angle_min + self.angle_increment * np.arange(self.beams)


def cast_grid(occupied: np.ndarray, store_map: StoreMap, x: float, y: float, angles: np.ndarray,
              max_range: float) -> np.ndarray:
    """Distance [m] along each map-frame direction in `angles` from (x, y) to the first cell of
    `occupied` (bool[h, w], rows = y); `inf` when nothing is hit within max_range or the beam leaves
    the grid. A start inside an occupied cell gives 0."""
    res = store_map.resolution
    ox, oy, yaw = store_map.origin
    c, s = math.cos(yaw), math.sin(yaw)
    u0 = (c * (x - ox) + s * (y - oy)) / res          # grid coordinates (cells)
    v0 = (-s * (x - ox) + c * (y - oy)) / res
    local = np.asarray(angles, dtype=np.float64) - yaw
    du, dv = np.cos(local), np.sin(local)
    n = len(local)
    h, w = occupied.shape
    i = np.full(n, math.floor(u0), dtype=np.int64)
    j = np.full(n, math.floor(v0), dtype=np.int64)
    step_i = np.where(du > 0, 1, -1)
    step_j = np.where(dv > 0, 1, -1)
    with np.errstate(divide='ignore', invalid='ignore'):
        delta_u = np.where(du != 0, np.abs(1.0 / du), np.inf)
        delta_v = np.where(dv != 0, np.abs(1.0 / dv), np.inf)
        next_u = np.where(du > 0, (i + 1 - u0) * delta_u, (u0 - i) * delta_u)
        next_v = np.where(dv > 0, (j + 1 - v0) * delta_v, (v0 - j) * delta_v)
    next_u = np.where(du != 0, next_u, np.inf)
    next_v = np.where(dv != 0, next_v, np.inf)
    result = np.full(n, np.inf)
    limit = max_range / res
    if 0 <= i[0] < w and 0 <= j[0] < h and occupied[j[0], i[0]]:
        return np.zeros(n)
    active = np.arange(n)
    t = np.zeros(n)
    while len(active):
        nu, nv = next_u[active], next_v[active]
        along_u = nu < nv
        t_here = np.where(along_u, nu, nv)
        ia = i[active] + np.where(along_u, step_i[active], 0)
        ja = j[active] + np.where(along_u, 0, step_j[active])
        i[active], j[active] = ia, ja
        next_u[active] = np.where(along_u, nu + delta_u[active], nu)
        next_v[active] = np.where(along_u, nv, nv + delta_v[active])
        t[active] = t_here
        inside = (ia >= 0) & (ia < w) & (ja >= 0) & (ja < h)
        hit = np.zeros(len(active), dtype=bool)
        hit[inside] = occupied[ja[inside], ia[inside]]
        hit &= t_here <= limit
        result[active[hit]] = t_here[hit] * res
        keep = ~hit & inside & (t_here <= limit)
        active = active[keep]
    return result


def cast_circles(circles: np.ndarray, x: float, y: float, angles: np.ndarray) -> np.ndarray:
    """Distance along each map-frame direction from (x, y) to the nearest of the discs
    (`circles`: float[k, 3] of x, y, radius); `inf` where no disc is crossed ahead."""
    angles = np.asarray(angles, dtype=np.float64)
    if circles is None or len(circles) == 0:
        return np.full(len(angles), np.inf)
    d = np.stack([np.cos(angles), np.sin(angles)], axis=1)           # [n, 2]
    rel = np.asarray(circles[:, :2], dtype=np.float64) - (x, y)       # [k, 2]
    b = d @ rel.T                                                     # [n, k]: projection of centre on the beam
    cc = (rel ** 2).sum(axis=1) - np.asarray(circles[:, 2]) ** 2     # [k]
    disc = b * b - cc
    with np.errstate(invalid='ignore'):
        root = np.sqrt(np.where(disc >= 0, disc, np.nan))
    near = b - root
    far = b + root
    t = np.where(near >= 0, near, np.where(far >= 0, 0.0, np.nan))   # inside a disc: 0
    t = np.where(np.isnan(t), np.inf, t)
    return t.min(axis=1)


def compose(a: Pose, b: Pose) -> Pose:
    """a ∘ b: pose b given in frame a, expressed in a's parent frame."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return (a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1],
            math.atan2(math.sin(a[2] + b[2]), math.cos(a[2] + b[2])))


class SimLidar:
    """A laser on the simulated robot: the world's grid (map plus objects not on it) and people."""

    def __init__(self, world_map: StoreMap, config: LidarConfig | None = None, seed: int | None = None) -> None:
        self.map = world_map
        self.config = config or LidarConfig()
        self.occupied = world_map.grid >= OCCUPIED_AT
        self.rng = np.random.default_rng(seed)
        self._angles = self.config.angles()

    def scan(self, robot_pose: Pose, circles: np.ndarray | None = None) -> np.ndarray:
        """Ranges [m] (float32[beams]) seen from the laser of a robot at `robot_pose` (map frame)."""
        c = self.config
        lx, ly, lyaw = compose(robot_pose, c.mount)
        world_angles = lyaw + self._angles
        ranges = cast_grid(self.occupied, self.map, lx, ly, world_angles, c.range_max)
        if circles is not None and len(circles):
            ranges = np.minimum(ranges, cast_circles(circles, lx, ly, world_angles))
        seen = np.isfinite(ranges)
        if c.noise_std > 0:
            ranges[seen] += self.rng.normal(0.0, c.noise_std, int(seen.sum()))
        ranges[seen & (ranges > c.range_max)] = np.inf
        ranges[seen & (ranges < c.range_min)] = np.nan if c.too_close == 'nan' else -np.inf
        return ranges.astype(np.float32)


STAMP_FAULTS = ('frozen', 'late', 'future', 'zero')


@dataclass
class StampFault:
    """A lidar driver's stamping fault: `frozen` after `seconds` (republishes its last scan with
    the old stamp), `late` (stamps `seconds` behind the clock), `future` (`seconds` ahead), `zero`."""

    kind: str = ''
    seconds: float = 0.0

    @classmethod
    def parse(cls, text: str) -> 'StampFault':
        """'frozen:2', 'late:3', 'future:1', 'zero' or '' (none); ValueError with a one-line reason."""
        text = (text or '').strip()
        if not text:
            return cls()
        kind, _, value = text.partition(':')
        if kind not in STAMP_FAULTS:
            raise ValueError(f'lidar fault {text!r}: expected one of {", ".join(STAMP_FAULTS)} (e.g. frozen:2, late:3)')
        if kind == 'zero':
            return cls('zero')
        try:
            seconds = float(value or 0.0)
        except ValueError:
            raise ValueError(f'lidar fault {text!r}: {value!r} is not a number of seconds') from None
        if not 0.0 <= seconds <= 3600.0:
            raise ValueError(f'lidar fault {text!r}: seconds must be 0..3600')
        return cls(kind, seconds)


class ScanStamper:
    """The stamp (and ranges) a driver with `fault` publishes for a scan cast at `now_s`."""

    def __init__(self, fault: StampFault | None = None) -> None:
        self.fault = fault or StampFault()
        self._start: float | None = None
        self._frozen: tuple[float, np.ndarray] | None = None
        self._last: tuple[float, np.ndarray] | None = None

    def freeze(self) -> None:
        """From now on, republish the last scan with its stamp (a stalled driver)."""
        self.fault = StampFault('frozen', 0.0)

    def __call__(self, now_s: float, ranges: np.ndarray) -> tuple[float, np.ndarray]:
        if self._start is None:
            self._start = now_s
        kind, seconds = self.fault.kind, self.fault.seconds
        if kind == 'frozen' and now_s - self._start >= seconds and self._last is not None:
            if self._frozen is None:
                self._frozen = self._last
            return self._frozen
        stamp = {'late': now_s - seconds, 'future': now_s + seconds, 'zero': 0.0}.get(kind, now_s)
        self._last = (stamp, ranges)
        return self._last


def scan_points(ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float,
                range_max: float) -> np.ndarray:
    """The valid returns of a LaserScan as float[k, 2] points in the laser frame."""
    ranges = np.asarray(ranges, dtype=np.float64)
    angles = angle_min + angle_increment * np.arange(len(ranges))
    ok = np.isfinite(ranges) & (ranges >= range_min) & (ranges <= range_max)
    r, a = ranges[ok], angles[ok]
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
