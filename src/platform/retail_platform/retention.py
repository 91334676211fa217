"""Bounded growth of the platform's bookkeeping tables, pruned on a schedule by every API process.

  change log (retail_platform.chain.changes)  rows older than `change_log_s` (default 30 days):
                                              a robot further behind gets a full snapshot of its
                                              store instead of a delta (never wrong data)
  flags (sequence reuse, replaced tokens)     rows older than `flags_s` (default 365 days)

Events are the idempotency record (a re-sent event is a `duplicate` as long as it is stored) and
are never pruned here: how long a chain keeps events is its own data-retention decision.
Several processes may prune at once: each step is one short transaction that deletes only what
is older than its cutoff, so running it twice is harmless.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from retail_platform import schema as t

LOG = logging.getLogger('retail_platform')


@dataclass(frozen=True)
class Retention:
    change_log_s: float = 30 * 86400.0
    flags_s: float = 365 * 86400.0
    every_s: float = 3600.0          # 0: never (tests, tools)


def prune(engine: sa.Engine, chain, retention: Retention) -> dict:
    """One pass: {'changes': rows dropped, 'flags': rows dropped}."""
    dropped = {'changes': chain.prune_changes(retention.change_log_s)}
    with engine.begin() as c:
        dropped['flags'] = c.execute(t.flags.delete().where(
            t.flags.c.created_at < time.time() - retention.flags_s)).rowcount
    return dropped


class Pruner:
    """A daemon thread pruning every `retention.every_s` (±10 %, so processes spread out);
    a failure (database away) is one log line, and the next pass tries again."""

    def __init__(self, engine: sa.Engine, chain, retention: Retention) -> None:
        self.engine, self.chain, self.retention = engine, chain, retention
        self.passes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='platform-pruner', daemon=True)

    def start(self) -> None:
        if self.retention.every_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.retention.every_s * random.uniform(0.9, 1.1)):
            try:
                dropped = prune(self.engine, self.chain, self.retention)
            except sa.exc.SQLAlchemyError as exc:
                line = str(getattr(exc, 'orig', None) or exc).strip().splitlines()
                LOG.warning('pruning failed (next pass in %.0f s): %s', self.retention.every_s,
                            line[0] if line else 'error')
                continue
            self.passes += 1
            if any(dropped.values()):
                LOG.info('pruned %s', ', '.join(f'{n} {what}' for what, n in dropped.items()))
