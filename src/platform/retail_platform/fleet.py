"""Fleet health and staff help on the platform: robots' heartbeats, silent robots and stores,
alerts that become tasks for a store's staff, and staff calls answered from the platform.

Pure rules first (`robot_state`, `alerts`), then `Fleet` (storage over the platform's engine,
the same on SQLite and PostgreSQL), then `add_routes` (the HTTP endpoints; app.py passes in its
credential checks).

A robot is `silent` when no heartbeat arrived for `missed` x its own announced period (default
1.5: the expected heartbeat plus half a period of grace), computed when asked, so a silent
robot shows at once on every API process; a store is silent when every robot that ever sent a
heartbeat there is. The alerts (each becomes one open task per robot and kind until staff
resolve it):
  silent          no heartbeat for `missed` periods
  safety_stop     the base's safety stop held for SAFETY_STOP_S (10 min) without a reset
  lost            localisation lost
  backlog_old     the oldest event waiting to upload is older than BACKLOG_S (1 h)
  disk_full       less than DISK_FREE_MIN (5 %) of the disk free
  incidents_full  the robot's incident recordings waiting for upload hit their cap: it records
                  no new incidents until staff ask for them (incident-request) and they upload

Silent tasks are opened by a timer: every API process of `retailbot platform serve` runs
`sweep` every quarter of the shortest announced heartbeat period (at most SWEEP_S) in the
background, one set-based statement per sweep (registered with the app's background tasks,
retail_platform.background), not
only when someone reads the tasks. Several processes are safe: on PostgreSQL a sweep runs only
under a transaction-level advisory lock (the others skip that round), and on every database a
task is inserted idempotently (a unique index on the open task of a robot and kind, insert
ON CONFLICT DO NOTHING / OR IGNORE), so one silent robot is one open task.
"""
from __future__ import annotations

import hashlib
import json
import math
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from retail_platform import schema as t
from retail_sync.fleet import Heartbeat, StaffCall, StaffReply

MISSED = 1.5
SAFETY_STOP_S = 600.0
BACKLOG_S = 3600.0
DISK_FREE_MIN = 0.05
ALERT_WORDS = {'silent': 'robot not heard from', 'safety_stop': 'safety stop not cleared',
               'lost': 'robot lost (does not know where it is)',
               'backlog_old': 'data waiting to upload for over an hour',
               'disk_full': 'disk nearly full',
               'incidents_full': 'incident recordings not uploaded: new incidents not recorded'}
STATES = ('ok', 'degraded', 'silent')
SWEEP_S = 2.0                                  # the longest a sweep waits for the next
SWEEP_MIN_S = 0.25                             # the shortest (a fleet announcing 1 s periods)
SWEEP_LOCK = 0x7265_7461_696c_0026            # the advisory lock key of the sweep (PostgreSQL)
LOG = logging.getLogger('retail_platform')
MAX_BODY = 16 * 1024
TOKEN_KEPT_S = 300.0           # a robot token verified by the database counts on arrival this long
MAX_SIGNS = 100_000            # robots whose signs of life one API process keeps in memory
BEHIND_S = 1.0                 # a heartbeat waiting longer than this: the platform is behind
REFUSALS_WINDOW_S = 60.0       # refusals counted over this window for the "overloaded" banner
MAX_ALIVE_IN_SWEEP = 20_000    # more robots alive but not stored: the sweep waits a round
REPEAT_EVERY_S = 5.0           # a robot's staff calls folded into its open call at most this often
HELD_S = 120.0                 # a heartbeat held longer than this no longer says the robot lives


# --- pure rules ---------------------------------------------------------------------------------
def robot_state(heartbeat: Heartbeat, received_at: float, now: float,
                missed: float = MISSED) -> str:
    if now - received_at > missed * heartbeat.period_s:
        return 'silent'
    return 'degraded' if alerts(heartbeat) or any(
        getattr(heartbeat, p).level in ('warn', 'error', 'stale')
        for p in ('base', 'localisation', 'sync', 'speech', 'camera')) else 'ok'


def alerts(heartbeat: Heartbeat) -> dict[str, str]:
    """The alert kinds a heartbeat raises, with a line for staff each (not `silent`)."""
    found = {}
    if heartbeat.safety_stop and heartbeat.safety_stop_age_s >= SAFETY_STOP_S:
        found['safety_stop'] = f'safety stop held for {heartbeat.safety_stop_age_s / 60:.0f} min'
    if heartbeat.localisation_lost:
        found['lost'] = heartbeat.localisation.message or 'localisation lost'
    if heartbeat.sync_oldest_s > BACKLOG_S:
        found['backlog_old'] = (f'{heartbeat.sync_backlog} events waiting, oldest '
                                f'{heartbeat.sync_oldest_s / 3600:.1f} h')
    if heartbeat.disk_free_fraction is not None and heartbeat.disk_free_fraction < DISK_FREE_MIN:
        found['disk_full'] = f'{heartbeat.disk_free_fraction * 100:.1f} % of the disk free'
    if heartbeat.incidents_stopped:
        found['incidents_full'] = heartbeat.incidents_stopped
    return found


# --- signs of life the database does not show yet -----------------------------------------------
class Pulse:
    """What this API process knows of robots that the database cannot show yet: heartbeats that
    arrived and wait for a thread or a database connection, and heartbeats the platform refused
    (503, 429, a timeout or the robot giving up on a slow answer). Both are signs that the robot
    is alive: an overloaded platform must not show a robot silent because it could not keep up.

    A heartbeat counts on arrival only when its bearer token is one the database verified for
    that robot in this process within TOKEN_KEPT_S (kept as its SHA-256; a 401 forgets it), so a
    stranger cannot keep a stopped robot looking alive. `lag_s` is the event loop's own delay
    (measured by `watch_loop`): heartbeats not even read yet; silence is judged that much earlier.
    In memory, per API process (see the README's limits for `--workers N`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, tuple[float, str]] = {}       # digest -> (valid until, robot id)
        self.pending: dict[str, list[float]] = {}            # robot -> arrivals in flight
        self.refused: dict[str, float] = {}                  # robot -> last refused arrival
        self.periods: dict[str, float] = {}                  # robot -> its announced period
        self.refusals: deque[float] = deque(maxlen=10_000)   # when the platform refused one
        self.lags: deque[tuple[float, float]] = deque(maxlen=64)   # (when, event loop delay)

    def verified(self, digest: str, robot_id: str, period_s: float) -> None:
        with self.lock:
            if len(self.tokens) >= MAX_SIGNS:
                self.tokens.clear()
            self.tokens[digest] = (time.monotonic() + TOKEN_KEPT_S, robot_id)
            if len(self.periods) >= MAX_SIGNS:
                self.periods.clear()
            self.periods[robot_id] = period_s

    def forget(self, digest: str) -> None:
        with self.lock:
            self.tokens.pop(digest, None)

    def arrived(self, robot_id: str, digest: str, at: float) -> bool:
        """A heartbeat reached the process at `at`: True when it counts (a known token)."""
        with self.lock:
            known = self.tokens.get(digest)
            if known is None or known[1] != robot_id or known[0] < time.monotonic():
                return False
            self.pending.setdefault(robot_id, []).append(at)
            return True

    def finished(self, robot_id: str, at: float, counted: bool, refused: bool) -> None:
        """The heartbeat of `at` was answered: stored, refused by the platform, or neither."""
        with self.lock:
            if refused:
                self.refusals.append(time.time())
            if not counted:
                return
            waiting = self.pending.get(robot_id, [])
            if at in waiting:
                waiting.remove(at)
            if not waiting:
                self.pending.pop(robot_id, None)
            if refused:
                if len(self.refused) >= MAX_SIGNS:
                    self.refused.clear()
                # the robot waited for the answer until now: alive until the refusal
                self.refused[robot_id] = max(time.time(), self.refused.get(robot_id, 0.0))

    def lagged(self, seconds: float) -> None:
        with self.lock:
            self.lags.append((time.time(), max(0.0, seconds)))

    def signs(self, now: float) -> dict[str, float]:
        """Per robot, its latest sign of life the database may not show: alive now while the
        platform holds its heartbeat (the robot waits for the answer before it sends another;
        at most HELD_S after its arrival), alive until the platform refused it."""
        with self.lock:
            found = dict(self.refused)
            for robot, arrivals in self.pending.items():
                found[robot] = max(found.get(robot, 0.0), min(now, max(arrivals) + HELD_S))
        return found

    def state(self, now: float) -> dict:
        """How far behind this process is: heartbeats waiting (and the oldest's wait), the
        refusals over the last minute, the event loop's delay; `behind` when any says so."""
        with self.lock:
            arrivals = [a for waiting in self.pending.values() for a in waiting]
            refused = sum(1 for at in self.refusals if now - at <= REFUSALS_WINDOW_S)
            lag = max((d for at, d in self.lags if now - at <= 10.0), default=0.0)
        oldest = now - min(arrivals) if arrivals else 0.0
        return {'behind': oldest > BEHIND_S or refused > 0 or lag > BEHIND_S,
                'waiting': len(arrivals), 'oldest_waiting_s': round(oldest, 3),
                'refused_last_minute': refused, 'loop_lag_s': round(lag, 3)}

    def lag_s(self, now: float) -> float:
        with self.lock:
            return max((d for at, d in self.lags if now - at <= 10.0), default=0.0)


async def watch_loop(pulse: Pulse, every_s: float = 0.25) -> None:
    """Measure the event loop's delay (a sleep that overruns): requests not read yet."""
    import asyncio
    while True:
        started = time.monotonic()
        await asyncio.sleep(every_s)
        pulse.lagged(time.monotonic() - started - every_s)


# --- storage ------------------------------------------------------------------------------------
class Fleet:
    def __init__(self, engine: sa.Engine, missed: float = MISSED) -> None:
        self.engine = engine
        self.missed = missed
        self.pulse = Pulse()
        self.postgresql = engine.dialect.name == 'postgresql'
        self.sweep_every_s = SWEEP_S          # set by each sweep: a quarter of the shortest period

    def _store_of(self, c: sa.Connection, robot_id: str) -> str | None:
        return c.execute(sa.select(t.robots.c.store_id)
                         .where(t.robots.c.robot_id == robot_id)).scalar()

    def record_heartbeat(self, robot_id: str, beat: Heartbeat, now: float | None = None) -> dict:
        """Keep the latest heartbeat; open a task for each alert it raises."""
        now = time.time() if now is None else now
        state = robot_state(beat, now, now, self.missed)
        text = beat.model_dump_json()
        with self.engine.begin() as c:
            soft_commit(c)
            kept = self._newer_kept(c, robot_id, beat)
            if kept is not None:         # a late copy of an older heartbeat: answered, not applied
                return {'state': kept, 'stale': True}
            store = self._store_of(c, robot_id)
            values = dict(store_id=store, received_at=now, period_s=beat.period_s, state=state,
                          heartbeat=text)
            updated = c.execute(t.fleet_heartbeats.update()
                                .where(t.fleet_heartbeats.c.robot_id == robot_id).values(**values))
            if not updated.rowcount:
                c.execute(t.fleet_heartbeats.insert().values(robot_id=robot_id, **values))
            for kind, detail in alerts(beat).items():
                self._open_task(c, store, robot_id, kind, detail, now)
            if beat.opening_hours:
                self._keep_hours(c, robot_id, beat.opening_hours, now)
        return {'state': state}

    def _keep_hours(self, c: sa.Connection, robot_id: str, hours: str, now: float) -> None:
        """The opening hours the robot reports, for the chain-local day of `now` (the day's last
        report wins): what the funnel counts that robot-day's opening minutes with."""
        from datetime import datetime
        from retail_platform.funnel import CHAIN_ZONE
        day = datetime.fromtimestamp(now, CHAIN_ZONE).date().isoformat()
        insert = (pg_insert if self.postgresql else sqlite_insert)(t.robot_hours).values(
            robot_id=robot_id, day=day, opening_hours=hours, reported_at=now)
        c.execute(insert.on_conflict_do_update(
            index_elements=['robot_id', 'day'],
            set_={'opening_hours': insert.excluded.opening_hours, 'reported_at': insert.excluded.reported_at}))

    def _newer_kept(self, c: sa.Connection, robot_id: str, beat: Heartbeat) -> str | None:
        """The kept heartbeat's state when it is newer than `beat` (same boot_id, higher seq:
        heartbeats can arrive out of order, and a late copy must not undo a cleared safety stop
        or halt a rollout on a refusal already over); None when `beat` is to be applied."""
        if not beat.boot_id or not beat.seq:
            return None
        h = t.fleet_heartbeats.c
        query = sa.select(h.heartbeat, h.state).where(h.robot_id == robot_id)
        if self.postgresql:
            query = query.with_for_update()   # two heartbeats of one robot at once: in turn
        row = c.execute(query).first()
        if row is None:
            return None
        try:
            kept = json.loads(row.heartbeat)
        except (TypeError, ValueError):
            return None
        if isinstance(kept, dict) and kept.get('boot_id') == beat.boot_id and \
                isinstance(kept.get('seq'), int) and kept['seq'] > beat.seq:
            return str(row.state)
        return None

    def _open_task(self, c: sa.Connection, store: str | None, robot_id: str, kind: str,
                   detail: str, now: float) -> bool:
        open_ = c.execute(sa.select(t.fleet_tasks.c.id).where(
            t.fleet_tasks.c.robot_id == robot_id, t.fleet_tasks.c.kind == kind,
            t.fleet_tasks.c.resolved_at.is_(None))).first()
        if open_:
            return False
        values = dict(store_id=store, robot_id=robot_id, kind=kind, detail=detail[:500],
                      opened_at=now)
        if self.postgresql:
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            done = c.execute(pg_insert(t.fleet_tasks).values(**values).on_conflict_do_nothing())
        else:
            done = c.execute(t.fleet_tasks.insert().values(**values).prefix_with('OR IGNORE'))
        return bool(done.rowcount)

    def sweep(self, now: float | None = None) -> int:
        """Open a `silent` task for every robot silent now; returns how many were opened.

        One set-based statement (INSERT ... SELECT over the heartbeats, skipping robots with an
        open silent task, ON CONFLICT DO NOTHING): its cost does not grow with a query per robot,
        so a sweep's duration stays small against the period. It also sets `sweep_every_s`, a
        quarter of the shortest announced heartbeat period (at most SWEEP_S, at least
        SWEEP_MIN_S): the timer sweeps that often, so a silent robot's task is opened at most
        `missed` + 1/4 periods (1.75 at the default) plus one sweep's duration after its last
        heartbeat."""
        h = t.fleet_heartbeats.c
        with self.engine.begin() as c:
            if self.postgresql and not c.execute(
                    sa.text('SELECT pg_try_advisory_xact_lock(:key)'), {'key': SWEEP_LOCK}).scalar():
                return 0                 # another API process sweeps right now
            # the time of the sweep once it holds its connection (and lock), not when it asked for
            # one: a sweep that waited for the pool under load judges (and dates the task) now
            now = time.time() if now is None else now
            # judged as far as this process read its requests; held or refused heartbeats alive
            now, alive = self.judgement(now)
            if len(alive) > MAX_ALIVE_IN_SWEEP:
                LOG.warning(f'fleet: {len(alive)} robots\' heartbeats wait or were refused: no '
                            'silent task opened until the platform catches up')
                return 0
            task = t.fleet_tasks.alias('open_task')
            open_silent = sa.select(task.c.id).where(
                task.c.robot_id == h.robot_id, task.c.kind == 'silent',
                task.c.resolved_at.is_(None)).correlate(t.fleet_heartbeats).exists()
            age = sa.cast(sa.func.round(sa.literal(now, sa.Float) - h.received_at), sa.Integer)
            silent = sa.select(
                h.store_id, h.robot_id, sa.literal('silent', sa.String),
                sa.literal('last heartbeat ', sa.String) + sa.cast(age, sa.String) + ' s ago',
                sa.literal(now, sa.Float),
            ).where(h.received_at < now - self.missed * h.period_s, ~open_silent,
                    *([h.robot_id.not_in(alive)] if alive else []))
            columns = ['store_id', 'robot_id', 'kind', 'detail', 'opened_at']
            if self.postgresql:
                from sqlalchemy.dialects.postgresql import insert as pg_insert
                statement = pg_insert(t.fleet_tasks).from_select(columns, silent) \
                    .on_conflict_do_nothing()
            else:
                statement = t.fleet_tasks.insert().from_select(columns, silent) \
                    .prefix_with('OR IGNORE')
            opened = len(c.execute(statement.returning(t.fleet_tasks.c.id)).all())
            shortest = c.execute(sa.select(sa.func.min(h.period_s))).scalar()
        self.sweep_every_s = min(SWEEP_S, max(SWEEP_MIN_S, (shortest or 4 * SWEEP_S) / 4))
        return opened

    def robots(self, store_ids: list[str] | None, now: float | None = None) -> list[dict]:
        """The latest state of each robot (of `store_ids`; None: all).

        Silent is decided here, from the last heartbeat's arrival and the robot's own period, at
        the time the rows were read (taken after the read: a reader that waited for a database
        connection under load judges at its answer's time, never at the time it asked), so a
        page, the API and the metric show a robot silent once `missed` periods passed whether
        or not the sweep (which only opens the tasks) has run."""
        query = sa.select(t.fleet_heartbeats).order_by(t.fleet_heartbeats.c.robot_id)
        if store_ids is not None:
            query = query.where(t.fleet_heartbeats.c.store_id.in_(store_ids))
        with self.engine.begin() as c:
            rows = c.execute(query).all()
        now = time.time() if now is None else now
        # silence is judged only as far as this process has read its requests (the event loop's
        # delay), and a heartbeat it holds or refused is a sign of life the rows cannot show yet
        judged = now - self.pulse.lag_s(now)
        signs = self.pulse.signs(now)
        out = []
        for r in rows:
            last = max(r.received_at, signs.get(r.robot_id, 0.0))
            silent = judged - last > self.missed * r.period_s
            # the heartbeat was validated when it came; ok/degraded was judged then; silent is now
            out.append({'robot_id': r.robot_id, 'store_id': r.store_id,
                        'state': 'silent' if silent else r.state,
                        # alive, but its latest heartbeat is not stored yet: the platform is late
                        'platform_late': not silent and now - r.received_at > self.missed * r.period_s,
                        'last_heartbeat_s': round(now - r.received_at, 3),
                        'last_heartbeat_at': r.received_at,   # when it arrived (platform's clock)
                        'last_sign_of_life_s': round(now - last, 3),
                        'heartbeat': json.loads(r.heartbeat)})
        return out

    def judgement(self, now: float | None = None) -> tuple[float, list[str]]:
        """(the time silence is judged at, the robots alive by a heartbeat the database does not
        show yet) — what robots() judges by, for readers that judge in SQL (hq.fleet_stores)."""
        now = time.time() if now is None else now
        judged = now - self.pulse.lag_s(now)
        signs, periods = self.pulse.signs(now), dict(self.pulse.periods)
        return judged, [robot for robot, at in signs.items()
                        if judged - at <= self.missed * periods.get(robot, math.inf)]

    def platform(self, now: float | None = None) -> dict:
        """Whether this API process keeps up with the heartbeats (Pulse.state)."""
        return self.pulse.state(time.time() if now is None else now)

    def stores(self, store_ids: list[str] | None, now: float | None = None) -> list[dict]:
        by_store: dict[str, list[str]] = {}
        for robot in self.robots(store_ids, now):
            by_store.setdefault(robot['store_id'] or '', []).append(robot['state'])
        return [{'store_id': store, 'robots': len(states),
                 **{state: states.count(state) for state in STATES},
                 'silent_store': all(s == 'silent' for s in states)}
                for store, states in sorted(by_store.items())]

    def tasks(self, store_id: str, open_only: bool = True) -> list[dict]:
        query = sa.select(t.fleet_tasks).where(t.fleet_tasks.c.store_id == store_id) \
            .order_by(t.fleet_tasks.c.id)
        if open_only:
            query = query.where(t.fleet_tasks.c.resolved_at.is_(None))
        with self.engine.begin() as c:
            rows = c.execute(query.limit(1000)).all()
        return [_task(r) for r in rows]

    def update_task(self, store_id: str, task_id: int, action: str, who: str,
                    note: str = '', now: float | None = None) -> dict | None:
        now = time.time() if now is None else now
        column = 'acknowledged' if action == 'acknowledge' else 'resolved'
        with self.engine.begin() as c:
            row = c.execute(sa.select(t.fleet_tasks).where(t.fleet_tasks.c.id == task_id,
                                                           t.fleet_tasks.c.store_id == store_id)).first()
            if row is None:
                return None
            values: dict[str, Any] = {}
            if getattr(row, f'{column}_at') is None:
                values = {f'{column}_at': now, f'{column}_by': who[:200]}
                if column == 'resolved' and row.acknowledged_at is None:
                    values.update(acknowledged_at=now, acknowledged_by=who[:200])
                if note:
                    values['note'] = note[:500]
                c.execute(t.fleet_tasks.update().where(t.fleet_tasks.c.id == task_id).values(**values))
            row = c.execute(sa.select(t.fleet_tasks).where(t.fleet_tasks.c.id == task_id)).first()
        return _task(row)

    def state_counts(self, now: float | None = None) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for robot in self.robots(None, now):
            key = (robot['store_id'] or '', robot['state'])
            counts[key] = counts.get(key, 0) + 1
        return counts

    # --- staff help -------------------------------------------------------------------------
    def add_call(self, robot_id: str, call: StaffCall, now: float | None = None) -> dict:
        """Store a staff call (idempotent by the robot's call_id; the same call arriving on two
        connections at once: the one that loses the unique index reads the winner's row)."""
        try:
            return self._add_call(robot_id, call, now)
        except sa.exc.IntegrityError:
            return self._add_call(robot_id, call, now)

    def _add_call(self, robot_id: str, call: StaffCall, now: float | None) -> dict:
        """One open call per robot: a call while the robot has an open (not yet answered) call
        is folded into it (its words and place replace the earlier ones, `repeats` counts up)
        and answered with that call's id; at most one fold per REPEAT_EVERY_S, CallsTooOften
        (429 with Retry-After) beyond that. Every call_id is kept with its content's hash, so a
        resend of any of them is answered with the call it went into (idempotent) and a call_id
        sent again with other content is CallIdReused."""
        now = time.time() if now is None else now
        text = call.model_dump_json()
        digest = hashlib.sha256(text.encode()).hexdigest()
        ids, calls = t.staff_call_ids.c, t.staff_calls.c
        with self.engine.begin() as c:
            if self.postgresql:                  # one robot's calls in turn (fold, rate limit)
                c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:r, 26))'),
                          {'r': robot_id})
            known = c.execute(sa.select(ids.call, ids.digest).where(
                ids.robot_id == robot_id, ids.call_id == call.call_id)).first()
            if known is None:                    # stored before 0013_fleet_audit: its own row
                known = c.execute(sa.select(calls.id.label('call'), calls.request).where(
                    calls.robot_id == robot_id, calls.call_id == call.call_id)).first()
                if known is not None:
                    same = known.request == text
                    known = (known.call, digest if same else '')
            if known is not None:
                if known[1] != digest:
                    raise CallIdReused(f'call_id_reused: call {call.call_id} was stored with '
                                       'other content')
                return {'id': known[0], 'duplicate': True}
            open_ = c.execute(sa.select(calls.id, calls.created_at, calls.updated_at).where(
                calls.robot_id == robot_id, calls.state == 'open')
                .order_by(calls.id.desc()).limit(1)).first()
            if open_ is not None:
                waited = now - (open_.updated_at or open_.created_at)
                if waited < REPEAT_EVERY_S:
                    raise CallsTooOften(math.ceil(REPEAT_EVERY_S - waited))
                c.execute(t.staff_calls.update().where(calls.id == open_.id).values(
                    request=text, repeats=calls.repeats + 1, updated_at=now))
                c.execute(t.staff_call_ids.insert().values(robot_id=robot_id, call_id=call.call_id,
                                                           call=open_.id, digest=digest))
                return {'id': open_.id, 'duplicate': False, 'folded': True}
            store = self._store_of(c, robot_id)
            new_id = c.execute(t.staff_calls.insert().values(
                store_id=store, robot_id=robot_id, call_id=call.call_id,
                request=text, created_at=now, state='open')).inserted_primary_key[0]
            c.execute(t.staff_call_ids.insert().values(robot_id=robot_id, call_id=call.call_id,
                                                       call=new_id, digest=digest))
        return {'id': new_id, 'duplicate': False}

    def calls(self, store_id: str, open_only: bool = False) -> list[dict]:
        query = sa.select(t.staff_calls).where(t.staff_calls.c.store_id == store_id) \
            .order_by(t.staff_calls.c.id.desc()).limit(200)
        if open_only:
            query = query.where(t.staff_calls.c.state != 'closed')
        with self.engine.begin() as c:
            rows = c.execute(query).all()
            ids = [r.id for r in rows]
            messages = c.execute(sa.select(t.staff_messages).where(
                t.staff_messages.c.call.in_(ids)).order_by(t.staff_messages.c.id)).all() if ids else []
        said: dict[int, list[dict]] = {}
        for m in messages:
            said.setdefault(m.call, []).append(_message(m))
        latest = None
        heartbeats = {r['robot_id']: r for r in self.robots([store_id])}
        out = []
        for r in rows:
            request = json.loads(r.request)
            where = {k: request.get(k) for k in ('zone', 'x', 'y', 'place')}
            latest = heartbeats.get(r.robot_id)
            out.append({'id': r.id, 'robot_id': r.robot_id, 'state': r.state,
                        'created_at': r.created_at, 'reason': request.get('reason', ''),
                        'wanted': request.get('wanted', ''), 'product': request.get('product', ''),
                        'language': request.get('language', ''),
                        'where': where, 'robot_state': latest['state'] if latest else 'unknown',
                        'answered_at': r.answered_at, 'answered_by': r.answered_by,
                        'repeats': r.repeats, 'updated_at': r.updated_at,
                        'messages': said.get(r.id, [])})
        return out

    def reply(self, store_id: str, call_id: int, reply: StaffReply, who: str,
              now: float | None = None) -> dict | None:
        now = time.time() if now is None else now
        with self.engine.begin() as c:
            call = c.execute(sa.select(t.staff_calls).where(
                t.staff_calls.c.id == call_id, t.staff_calls.c.store_id == store_id)).first()
            if call is None:
                return None
            if call.state == 'closed':         # the customer was helped or left: nobody to speak to
                raise CallClosed(f'staff call {call_id} is closed: the robot says nothing more '
                                 'for it')
            message_id = c.execute(t.staff_messages.insert().values(
                call=call_id, robot_id=call.robot_id, kind=reply.kind, text=reply.text,
                created_by=who[:200], created_at=now)).inserted_primary_key[0]
            if call.state == 'open':
                c.execute(t.staff_calls.update().where(t.staff_calls.c.id == call_id).values(
                    state='answered', answered_at=now, answered_by=who[:200]))
        return {'id': message_id, 'call': call_id}

    def close_call(self, store_id: str, call_id: int) -> bool:
        with self.engine.begin() as c:
            done = c.execute(t.staff_calls.update().where(
                t.staff_calls.c.id == call_id, t.staff_calls.c.store_id == store_id)
                .values(state='closed'))
        return bool(done.rowcount)

    def messages_for(self, robot_id: str, after: int) -> list[dict]:
        """Staff messages for a robot after id `after` (the robot's cursor: it asks again with
        the last id it has spoken, so a message it missed comes again)."""
        with self.engine.begin() as c:
            rows = c.execute(sa.select(t.staff_messages, t.staff_calls.c.call_id,
                                       t.staff_calls.c.request).join(
                t.staff_calls, t.staff_calls.c.id == t.staff_messages.c.call).where(
                t.staff_messages.c.robot_id == robot_id, t.staff_messages.c.id > after)
                .order_by(t.staff_messages.c.id).limit(100)).all()
            if rows:
                c.execute(t.staff_messages.update().where(
                    t.staff_messages.c.id.in_([r.id for r in rows]),
                    t.staff_messages.c.delivered_at.is_(None)).values(delivered_at=time.time()))
        return [{'version': 1, 'id': r.id, 'call_id': r.call_id, 'kind': r.kind, 'text': r.text,
                 'language': json.loads(r.request).get('language', ''), 'by': r.created_by}
                for r in rows]

    def waiting_messages(self, robot_id: str) -> int:
        with self.engine.begin() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(t.staff_messages).where(
                t.staff_messages.c.robot_id == robot_id,
                t.staff_messages.c.delivered_at.is_(None))).scalar() or 0)


def sweep_logged(fleet: Fleet) -> Callable[[], int]:
    """`fleet.sweep` as the app's background task (background.py, every `sweep_every_s`)."""
    def sweep() -> int:
        opened = fleet.sweep()
        if opened:
            LOG.info(f'fleet: {opened} silent robot task(s) opened')
        return opened
    return sweep

def soft_commit(c: sa.Connection) -> None:
    """A heartbeat's writes are soft state: PostgreSQL commits them without waiting for the WAL
    flush (a crash may lose the last second of heartbeats; the robot's next one, a period later,
    says it all again, and an alert's condition re-opens its task). Events, tasks changed by
    staff, calls and messages keep the durable commit."""
    if c.dialect.name == 'postgresql':
        c.execute(sa.text('SET LOCAL synchronous_commit = off'))


def _task(r) -> dict:
    return {'id': r.id, 'store_id': r.store_id, 'robot_id': r.robot_id, 'kind': r.kind,
            'title': ALERT_WORDS.get(r.kind, r.kind), 'detail': r.detail,
            'opened_at': r.opened_at, 'acknowledged_at': r.acknowledged_at,
            'acknowledged_by': r.acknowledged_by, 'resolved_at': r.resolved_at,
            'resolved_by': r.resolved_by, 'note': r.note,
            'time_to_resolve_s': (r.resolved_at - r.opened_at) if r.resolved_at else None}


def _message(m) -> dict:
    return {'id': m.id, 'kind': m.kind, 'text': m.text, 'by': m.created_by,
            'at': m.created_at, 'delivered_at': m.delivered_at}


# --- HTTP ---------------------------------------------------------------------------------------
class TaskAction(BaseModel):
    model_config = {'extra': 'forbid'}
    action: Literal['acknowledge', 'resolve']
    note: str = Field('', max_length=500, pattern=r'^[^\x00]*$')


@dataclass
class Deps:
    """The credential checks of app.py (FastAPI dependencies) and its helpers."""
    caller: Callable
    robot_scope: Callable
    store_reader: Callable
    store_writer: Callable
    responses: Callable[..., dict]
    read_limited: Callable
    visible_stores: Callable          # credential -> list of store ids, or None for all
    who: Callable                     # credential -> a name for the record


async def parse(request: Request, model: type[BaseModel], what: str, deps: Deps,
                limit: int = MAX_BODY) -> Any:
    """The body as `model`, read as its declared JSON types (strict: `"5"` or `true` is not a
    number, `1` or `"true"` not a boolean) and with no key given twice (`{"safety_stop": true,
    "safety_stop": false}` means what the reader picks); 422 naming the key otherwise."""
    body = await deps.read_limited(request, limit)
    try:
        value = model.model_validate_json(_integral_numbers(body), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = '.'.join(str(part) for part in first.get('loc', ())) or 'body'
        raise HTTPException(422, f'{what} refused: {where}: {first.get("msg")}') from None
    twice = _key_given_twice(body)    # a valid body: its nesting is the model's, shallow
    if twice:
        raise HTTPException(422, f'{what} refused: {twice[:100]}: key given twice')
    return value


def _integral_numbers(body: bytes) -> bytes:
    """The body with numbers like `5.0` written `5`: JSON Schema's `integer` (our OpenAPI
    document) includes them, pydantic's strict int does not (a float field takes an int either
    way). Anything else, unparsable or non-finite bodies included, is left for the model to refuse."""
    seen = {'integral': False, 'finite': True}

    def number(text: str) -> float | int:
        value = float(text)
        if not math.isfinite(value):
            seen['finite'] = False
        elif value.is_integer() and abs(value) < 2**53:
            seen['integral'] = True
            return int(value)
        return value

    def constant(text: str):
        raise ValueError(text)
    try:
        parsed = json.loads(body, parse_float=number, parse_constant=constant)
    except (ValueError, RecursionError):
        return body
    if not seen['integral'] or not seen['finite']:
        return body
    return json.dumps(parsed, ensure_ascii=False).encode()


def _key_given_twice(body: bytes) -> str:
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict:
        keys = [k for k, _ in items]
        found.extend(k for k in keys if keys.count(k) > 1)
        return dict(items)
    json.loads(body, object_pairs_hook=pairs)
    return found[0] if found else ''


def body_of(model: type[BaseModel]) -> dict:
    """The request body's schema with its nested models inlined (no `$defs` for an OpenAPI
    reader to resolve)."""
    schema = model.model_json_schema()
    defs = schema.pop('$defs', {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get('$ref', '')
            if ref.startswith('#/$defs/'):
                return inline({**defs[ref.split('/')[-1]],
                               **{k: v for k, v in node.items() if k != '$ref'}})
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node
    return {'requestBody': {'required': True, 'content': {'application/json': {
        'schema': inline(schema)}}}}


class CallIdReused(ValueError):
    """A robot sent a staff call under a call_id it had used for another call."""


class CallsTooOften(ValueError):
    """A robot folded a call into its open call less than REPEAT_EVERY_S ago (429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f'calls_too_often: this robot\'s open staff call was repeated less than '
                         f'{REPEAT_EVERY_S:g} s ago; staff see it already (retry after '
                         f'{retry_after} s)')
        self.retry_after = max(1, retry_after)


class CallClosed(ValueError):
    """Staff answered a call that was already closed (409: nothing is sent to the robot)."""


def add_routes(app: FastAPI, fleet: Fleet, deps: Deps) -> None:
    r = deps.responses
    answers = r(401, 403, 404, 413, 422, 503)

    @app.post('/v1/robots/{robot_id}/heartbeat', response_model=dict,
              summary='A robot\'s health summary (retail_sync.fleet.Heartbeat v3; v1 and v2 accepted; a late copy older than one received — same boot_id, lower seq — is answered, not applied); the answer '
                      'says which desired state it should run and whether staff wrote to it',
              responses=answers, openapi_extra=body_of(Heartbeat))
    async def heartbeat(request: Request, arrived: float = Depends(pulse_of(fleet.pulse)),
                        robot_id: str = Depends(deps.robot_scope)) -> dict:
        beat = await parse(request, Heartbeat, 'heartbeat', deps)

        def work() -> dict:
            _registered(fleet, robot_id)
            answer = fleet.record_heartbeat(robot_id, beat, now=arrived)
            fleet.pulse.verified(request.state.token_digest, robot_id, beat.period_s)
            stale = answer.pop('stale', False)
            rollouts = getattr(app.state, 'rollouts', None)
            if rollouts is None:
                answer['desired_version'] = 0
            else:            # a late copy reports nothing: it neither advances nor halts a rollout
                answer['desired_version'] = rollouts.assigned(robot_id) if stale else rollouts.on_heartbeat(robot_id, beat)
            answer['messages'] = fleet.waiting_messages(robot_id)
            requests = getattr(app.state, 'incident_requests', None)
            answer['incident_request'] = requests.on_heartbeat(
                robot_id, 0 if stale else beat.incident_request_done, beat.incident_result) if requests else 0
            return answer
        return await run_in_threadpool(work)

    @app.post('/v1/stores/{store_id}/robots/{robot_id}/incident-request',
              summary='Ask a robot of the store to upload its incident recordings (staff and HQ); '
                      'it hears of it in its next heartbeat\'s answer; asking again while one is '
                      'open answers the open one', responses=r(401, 403, 404, 503))
    def incident_request(robot_id: str = Path(min_length=1, max_length=64),
                         store_id: str = Depends(deps.store_writer), who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        requests = getattr(app.state, 'incident_requests', None)
        if requests is None:
            raise HTTPException(404, 'incident recordings are not kept on this platform')
        made = requests.request(store_id, robot_id, deps.who(who))
        if made is None:
            raise HTTPException(404, f'no robot {robot_id} at store {store_id}')
        return made

    @app.get('/v1/stores/{store_id}/incident-requests',
             summary='The store\'s requests for incident recordings, newest first (staff and HQ)',
             responses=r(401, 403, 404, 503))
    def incident_requests(store_id: str = Depends(deps.store_reader), who=Depends(deps.caller)) -> list[dict]:
        _staff_only(who)
        requests = getattr(app.state, 'incident_requests', None)
        return requests.list(store_id) if requests else []

    @app.get('/v1/fleet/robots', summary='Every visible robot\'s latest state (ok, degraded, '
             'silent) and heartbeat', responses=r(401, 403, 503))
    def fleet_robots(who=Depends(deps.caller)) -> list[dict]:
        return fleet.robots(deps.visible_stores(who))

    @app.get('/v1/fleet/stores', summary='Per visible store: robots per state; silent_store when '
             'all its robots are silent', responses=r(401, 403, 503))
    def fleet_stores(who=Depends(deps.caller)) -> list[dict]:
        return fleet.stores(deps.visible_stores(who))

    @app.get('/v1/stores/{store_id}/fleet', summary='A store\'s robots and their state',
             responses=r(401, 403, 404, 422, 503))
    def store_fleet(store_id: str = Depends(deps.store_reader), who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        return {'robots': fleet.robots([store_id]), 'store': (fleet.stores([store_id]) or
                                                              [{'store_id': store_id, 'robots': 0}])[0],
                'platform': fleet.platform()}

    @app.get('/v1/fleet/platform', summary='Whether this API process keeps up with the '
             'heartbeats: `behind` when one waited over 1 s, one was refused in the last minute '
             'or its event loop lags; robots whose heartbeats wait or were refused are not '
             'shown silent (`platform_late` on their rows)', responses=r(401, 403, 503))
    def fleet_platform(who=Depends(deps.caller)) -> dict:
        deps.visible_stores(who)                        # staff, analyst, admin: not robots
        return fleet.platform()

    @app.get('/v1/stores/{store_id}/tasks', summary='A store\'s alert tasks (open ones unless '
             'all=true), with time to resolve', responses=r(401, 403, 404, 422, 503))
    def store_tasks(store_id: str = Depends(deps.store_reader), who=Depends(deps.caller),
                    all: bool = Query(False, description='also resolved tasks')) -> list[dict]:
        _staff_only(who)
        fleet.sweep()
        return fleet.tasks(store_id, open_only=not all)

    @app.post('/v1/stores/{store_id}/tasks/{task_id}', summary='Acknowledge or resolve a task',
              responses=answers, openapi_extra=body_of(TaskAction))
    async def task_action(request: Request, task_id: int = Path(ge=1, le=2 ** 31 - 1),
                          store_id: str = Depends(deps.store_writer),
                          who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        action = await parse(request, TaskAction, 'task action', deps)
        task = await run_in_threadpool(fleet.update_task, store_id, task_id, action.action,
                                       deps.who(who), action.note)
        if task is None:
            raise HTTPException(404, f'no task {task_id} at store {store_id}')
        return task

    @app.post('/v1/robots/{robot_id}/staff-calls', summary='A staff call raised at the robot '
              '(retail_sync.fleet.StaffCall v1; idempotent by call_id; 409 for a call_id '
              'sent again with other content); one open call per robot: a call while one is '
              'open is folded into it (answered with its id, `folded`), at most one per 5 s '
              '(429 with Retry-After beyond)', responses=r(401, 403, 404, 409, 413, 422, 429, 503),
              openapi_extra=body_of(StaffCall))
    async def staff_call(request: Request, robot_id: str = Depends(deps.robot_scope)) -> dict:
        call = await parse(request, StaffCall, 'staff call', deps)
        await run_in_threadpool(_registered, fleet, robot_id)
        try:
            return await run_in_threadpool(fleet.add_call, robot_id, call)
        except CallIdReused as exc:
            raise HTTPException(409, str(exc)) from None
        except CallsTooOften as exc:
            raise HTTPException(429, str(exc),
                                headers={'Retry-After': str(exc.retry_after)}) from None

    @app.get('/v1/robots/{robot_id}/staff-messages', summary='Staff\'s answers and words for '
             'the robot to speak (StaffMessage v1), after a cursor', responses=answers)
    def staff_messages(robot_id: str = Depends(deps.robot_scope),
                       after: int = Query(0, ge=0, le=2 ** 62)) -> list[dict]:
        return fleet.messages_for(robot_id, after)

    @app.get('/v1/stores/{store_id}/staff-calls', summary='A store\'s staff calls: what the '
             'customer wanted, where the robot is, what staff answered',
             responses=r(401, 403, 404, 422, 503))
    def store_calls(store_id: str = Depends(deps.store_reader), who=Depends(deps.caller),
                    open: bool = Query(False, description='only calls not closed')) -> list[dict]:
        _staff_only(who)
        return fleet.calls(store_id, open_only=open)

    @app.post('/v1/stores/{store_id}/staff-calls/{call_id}/reply', summary='Answer a call '
              '(kind answer) or type words for the robot to speak as staff (kind say); 409 when '
              'the call is closed', responses={**answers, **r(409)}, openapi_extra=body_of(StaffReply))
    async def reply(request: Request, call_id: int = Path(ge=1, le=2 ** 31 - 1),
                    store_id: str = Depends(deps.store_writer), who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        message = await parse(request, StaffReply, 'reply', deps)
        try:
            done = await run_in_threadpool(fleet.reply, store_id, call_id, message, deps.who(who))
        except CallClosed as exc:
            raise HTTPException(409, str(exc)) from None
        if done is None:
            raise HTTPException(404, f'no staff call {call_id} at store {store_id}')
        return done

    @app.post('/v1/stores/{store_id}/staff-calls/{call_id}/close', summary='Close a call',
              responses=r(401, 403, 404, 422, 503))
    def close(call_id: int = Path(ge=1, le=2 ** 31 - 1), store_id: str = Depends(deps.store_writer),
              who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        if not fleet.close_call(store_id, call_id):
            raise HTTPException(404, f'no staff call {call_id} at store {store_id}')
        return {'id': call_id, 'state': 'closed'}


def _registered(fleet: Fleet, robot_id: str) -> None:
    """404 for a robot registered at no store (only the admin credential can name one): its
    heartbeats or calls would belong to no store's staff, silent tasks nobody sees."""
    with fleet.engine.connect() as c:
        if fleet._store_of(c, robot_id) is None:
            raise HTTPException(404, f'robot {robot_id} is not registered at a store')


def pulse_of(pulse: Pulse) -> Callable:
    """The heartbeat's arrival time, as a dependency resolved before the credential check, that
    also tells `pulse` the heartbeat is in flight (when its token is one verified earlier) and,
    when it ends, whether the platform refused it: a 503/429, a database error, an error of
    ours or the robot hanging up on a slow answer — the robot was alive all the same."""
    async def arrival(request: Request, robot_id: str = Path(max_length=64)):
        at = time.time()
        scheme, _, given = request.headers.get('authorization', '').partition(' ')
        digest = hashlib.sha256(given.strip().encode('utf-8', 'surrogatepass')).hexdigest() \
            if scheme.lower() == 'bearer' else ''
        request.state.token_digest = digest
        counted = pulse.arrived(robot_id, digest, at)
        refused = False
        try:
            yield at
        except BaseException as exc:
            status = getattr(exc, 'status_code', None)
            if status == 401:
                pulse.forget(digest)
            refused = status in (429, 503) or (
                status is None and not isinstance(exc, (KeyboardInterrupt, SystemExit)))
            raise
        finally:
            pulse.finished(robot_id, at, counted, refused)
    return arrival


def _staff_only(who) -> None:
    if who.role == 'robot':
        raise HTTPException(403, 'a robot credential may not read or act on staff tasks')


def metrics_lines(fleet: Fleet, label: Callable[[str], str]) -> list[str]:
    name = 'retailbot_fleet_robots'
    lines = [f'# HELP {name} robots per store and state (ok, degraded, silent)',
             f'# TYPE {name} gauge']
    counts = fleet.state_counts()
    stores = sorted({store for store, _ in counts})
    for store in stores:
        for state in STATES:
            lines.append(f'{name}{{store="{label(store)}",state="{state}"}} '
                         f'{float(counts.get((store, state), 0))!r}')
    platform = fleet.platform()
    for key, words in (('behind', '1 when this API process does not keep up with heartbeats'),
                       ('waiting', 'heartbeats received and not stored yet'),
                       ('oldest_waiting_s', 'the oldest of them has waited this long'),
                       ('refused_last_minute', 'heartbeats refused (503, 429, timeout) in the last minute')):
        metric = f'retailbot_fleet_heartbeats_{key}'
        lines += [f'# HELP {metric} {words}', f'# TYPE {metric} gauge',
                  f'{metric} {float(platform[key])!r}']
    return lines
