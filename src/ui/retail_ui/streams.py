"""Live-update stream slots: separate budgets so nobody can lock the robot's screen or the console out.

Pure (no web framework, no rclpy). Three pools, each with its own total and per-client limit:

* `screen`: the robot's own screen (proved by the per-boot screen secret from a loopback peer);
* `staff`: console pages of a logged-in staff session (per client = per session);
* `public`: everyone else (per client = per address), each stream closed after `public_max_s`
  (the page's EventSource reconnects by itself, so a held-open idle stream frees its slot).

A flood of anonymous streams fills only `public`; the screen and the console still connect.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

SCREEN, STAFF, PUBLIC = 'screen', 'staff', 'public'


@dataclass(frozen=True)
class Budget:
    total: int
    per_client: int


DEFAULT_BUDGETS = {SCREEN: Budget(4, 4), STAFF: Budget(8, 3), PUBLIC: Budget(16, 4)}


class StreamSlots:
    """Counts open streams per pool and per client; `acquire` refuses past a limit."""

    def __init__(self, budgets: dict[str, Budget] | None = None) -> None:
        self.budgets = dict(DEFAULT_BUDGETS if budgets is None else budgets)
        self._open: dict[str, int] = {pool: 0 for pool in self.budgets}
        self._clients: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def acquire(self, pool: str, client: str) -> str:
        """'' when a slot was taken (release it later), else why not (one line)."""
        budget = self.budgets[pool]
        with self._lock:
            if self._open[pool] >= budget.total:
                return f'all {budget.total} {pool} live-update slots are in use'
            mine = self._clients.get((pool, client), 0)
            if mine >= budget.per_client:
                return f'more than {budget.per_client} {pool} live pages open from one client'
            self._open[pool] += 1
            self._clients[(pool, client)] = mine + 1
            return ''

    def release(self, pool: str, client: str) -> None:
        with self._lock:
            self._open[pool] = max(0, self._open[pool] - 1)
            left = self._clients.get((pool, client), 0) - 1
            if left > 0:
                self._clients[(pool, client)] = left
            else:
                self._clients.pop((pool, client), None)

    def open_count(self, pool: str | None = None) -> int:
        with self._lock:
            return sum(self._open.values()) if pool is None else self._open[pool]
