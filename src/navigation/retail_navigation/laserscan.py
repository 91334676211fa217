"""Reading sensor data as its owners define it, for every node that uses it (pure, no rclpy).

- **Ranges (REP-117)**: `-inf` means "something closer than `range_min`" (an obstacle, at
  `range_min` along the beam); `+inf` means "nothing within `range_max`" (the beam is free up to
  `range_max`); NaN and finite values outside `[range_min, range_max]` (e.g. the 0.0 some drivers
  send) are invalid readings: ignored, never an obstacle and never free space.
- **Stamps**: data is judged by its header stamp against the reader's clock, never by when it
  arrived: older than the allowed age (a frozen driver republishing its last message, data stamped
  late), further ahead than the tolerance (a wrong clock) or a zero stamp (age unknowable) make
  the data stale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_BEAMS = 20000                        # a LaserScan with more ranges is refused as malformed


@dataclass(frozen=True)
class Beams:
    """REP-117 reading of a scan's ranges (all arrays as long as the scan)."""
    ranges: np.ndarray       # float: -inf -> range_min, +inf -> range_max, others as given
    hit: np.ndarray          # bool: an obstacle at `ranges` (a return in range, or -inf at range_min)
    free: np.ndarray         # bool: +inf, nothing up to range_max
    invalid: np.ndarray      # bool: NaN or finite out of [range_min, range_max]: ignored


def rep117(ranges, range_min: float, range_max: float) -> Beams:
    r = np.asarray(ranges, dtype=np.float64)
    too_close = np.isneginf(r)
    in_range = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    free = np.isposinf(r)
    hit = too_close | in_range
    out = np.where(too_close, range_min, np.where(free, range_max, r))
    return Beams(out, hit, free, ~(hit | free))


def stamp_s(stamp) -> float:
    """A builtin_interfaces/Time as seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_problem(what: str, stamp: float | None, now: float, max_age_s: float, future_tolerance_s: float,
                  source: str) -> str:
    """'' when data of kind `what` stamped `stamp` may be used at `now` (the reader's clock, the
    clock of header stamps), else why not, in one line. `source` names who stamps it (hints)."""
    if stamp is None:
        return f'no {what} yet'
    if not math.isfinite(now):
        return f'{what}: the clock is not known'
    if not math.isfinite(stamp):
        return f'{what} stamp is not a number'
    if stamp == 0.0:
        return f'{what} has no stamp (0): its age cannot be known'
    age = now - stamp
    if age < -future_tolerance_s:
        return f'{what} stamped {-age:.2f} s in the future (clock of the {source} wrong?)'
    if age > max_age_s:
        return f'{what} {age:.2f} s old by its stamp (frozen or late {source} driver?)'
    return ''
