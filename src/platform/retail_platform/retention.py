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


def prune_pass(engine: sa.Engine, chain, retention: Retention) -> dict:
    """One scheduled pass (background.py runs it every `retention.every_s`, ±10 %): what was
    dropped, logged in one line when anything was."""
    dropped = prune(engine, chain, retention)
    if any(dropped.values()):
        LOG.info('pruned %s', ', '.join(f'{n} {what}' for what, n in dropped.items()))
    return dropped
