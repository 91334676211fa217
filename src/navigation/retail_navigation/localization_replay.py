"""Re-running a recorded localisation exactly: which recorded inputs each filter update takes.

Pure core, no rclpy. The live localisation publishes, after every filter update, the odometry pose
that update used, stamped with the stamp of the scan it used (`/navigation/localization_updates`,
geometry_msgs/PoseStamped in the odom frame, REP-105), and after a resample its particles (the
checkpoint, `/navigation/particle_cloud`). With the recorded scans that is everything the filter
took in. A re-run that picked its own inputs from the recorded /scan and /odom would differ from
the live run wherever the live node's inputs were not the recording's: a scan the live node
dropped (its sensor-data queue while its executor was busy) or refused (odometry late on a loaded
machine) but the recorder kept, or an odometry message the recorder missed (the pose interpolated
at a scan's stamp then differs by a fraction of a millimetre, which the resampling amplifies to
the filter's own noise, about a centimetre). `RecordedUpdates` gives the re-run exactly the live
filter's inputs instead: it starts from the first checkpoint whose update record and scan it has, and then
steps the filter on the scan of each update record with that record's odometry, in stamp order;
the scans the live filter did not update on are skipped.

Feed it records, scans and clouds in the order they come (a recorder may log a record just before
or after its scan and cloud); `ready()` says what to do next. Bounded: at most `max_held` scans,
records and clouds wait.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Iterator, Union

import numpy as np

from retail_navigation.localization import Pose


@dataclass(frozen=True)
class Start:
    """Restore the filter from the checkpoint taken at the update of `stamp` (its odometry `odom`)."""

    stamp: int
    particles: np.ndarray
    odom: Pose


@dataclass(frozen=True)
class Update:
    """Step the filter on `scan` (the scan stamped `stamp`) with the odometry pose `odom`."""

    stamp: int
    scan: Any
    odom: Pose


@dataclass(frozen=True)
class Missing:
    """The live filter updated on the scan stamped `stamp`, which the recording does not hold: the
    re-run cannot take this update and differs from here on."""

    stamp: int


Action = Union[Start, Update, Missing]


@dataclass
class RecordedUpdates:
    max_held: int = 500
    started: bool = False
    last: int = -1                          # stamp [ns] of the last update taken (or of the checkpoint)
    missing: int = 0                        # live updates whose scan the recording lacks
    _records: dict[int, Pose] = field(default_factory=dict)
    _scans: dict[int, Any] = field(default_factory=dict)
    _clouds: list[tuple[int, np.ndarray]] = field(default_factory=list)
    _newest_scan: int = -1

    def add_record(self, stamp: int, odom: Pose) -> None:
        if stamp > self.last:
            self._records[stamp] = odom
            self._bound(self._records)

    def add_scan(self, stamp: int, scan: Any) -> None:
        self._newest_scan = max(self._newest_scan, stamp)
        if stamp > self.last:
            self._scans[stamp] = scan
            self._bound(self._scans)

    def add_cloud(self, stamp: int, particles: np.ndarray) -> None:
        if not self.started:
            bisect.insort(self._clouds, (stamp, particles), key=lambda item: item[0])
            del self._clouds[:-self.max_held]

    def ready(self) -> Iterator[Action]:
        """What the re-run does now, in order: a `Start`, then `Update`s (and `Missing` ones)."""
        if not self.started:
            # a checkpoint whose own scan is recorded: from there on the recording holds every scan
            # (a cloud latched before the recording began, or before the recorder's /scan
            # subscription matched, would leave the first updates' scans out)
            start = next(((s, p) for s, p in self._clouds if s in self._records and s in self._scans), None)
            if start is None:
                return
            stamp, particles = start
            self.started, self._clouds = True, []
            yield Start(stamp, particles, self._records[stamp])
            self._forget_until(stamp)
        while self._records:
            stamp = min(self._records)
            if stamp in self._scans:
                yield Update(stamp, self._scans[stamp], self._records[stamp])
            elif self._newest_scan > stamp:      # scans come in order: this one was not recorded
                self.missing += 1
                yield Missing(stamp)
            else:
                return                           # its scan is still to come
            self._forget_until(stamp)

    def _forget_until(self, stamp: int) -> None:
        """Done up to `stamp`: the scans until then that no record named were not used live."""
        self.last = stamp
        self._records = {s: v for s, v in self._records.items() if s > stamp}
        self._scans = {s: v for s, v in self._scans.items() if s > stamp}

    def _bound(self, held: dict[int, Any]) -> None:
        if len(held) > self.max_held:
            del held[min(held)]
