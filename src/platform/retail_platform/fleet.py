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

Silent tasks are opened by a timer: every API process of `retailbot platform serve` runs
`sweep` every SWEEP_S seconds in the background (`start_sweeper`, from the app's lifespan), not
only when someone reads the tasks. Several processes are safe: on PostgreSQL a sweep runs only
under a transaction-level advisory lock (the others skip that round), and on every database a
task is inserted idempotently (a unique index on the open task of a robot and kind, insert
ON CONFLICT DO NOTHING / OR IGNORE), so one silent robot is one open task.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Callable, Literal

import sqlalchemy as sa
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
               'disk_full': 'disk nearly full'}
STATES = ('ok', 'degraded', 'silent')
SWEEP_S = 2.0
SWEEP_LOCK = 0x7265_7461_696c_0026            # the advisory lock key of the sweep (PostgreSQL)
LOG = logging.getLogger('retail_platform')
MAX_BODY = 16 * 1024


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
    return found


# --- storage ------------------------------------------------------------------------------------
class Fleet:
    def __init__(self, engine: sa.Engine, missed: float = MISSED) -> None:
        self.engine = engine
        self.missed = missed
        self.postgresql = engine.dialect.name == 'postgresql'

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
            store = self._store_of(c, robot_id)
            values = dict(store_id=store, received_at=now, period_s=beat.period_s, state=state,
                          heartbeat=text)
            updated = c.execute(t.fleet_heartbeats.update()
                                .where(t.fleet_heartbeats.c.robot_id == robot_id).values(**values))
            if not updated.rowcount:
                c.execute(t.fleet_heartbeats.insert().values(robot_id=robot_id, **values))
            for kind, detail in alerts(beat).items():
                self._open_task(c, store, robot_id, kind, detail, now)
        return {'state': state}

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
        """Open a `silent` task for every robot silent now; returns how many were opened."""
        now = time.time() if now is None else now
        opened = 0
        with self.engine.begin() as c:
            if self.postgresql and not c.execute(
                    sa.text('SELECT pg_try_advisory_xact_lock(:key)'), {'key': SWEEP_LOCK}).scalar():
                return 0                 # another API process sweeps right now
            rows = c.execute(sa.select(t.fleet_heartbeats.c.robot_id, t.fleet_heartbeats.c.store_id,
                                       t.fleet_heartbeats.c.received_at,
                                       t.fleet_heartbeats.c.period_s).where(
                t.fleet_heartbeats.c.received_at < now - self.missed * t.fleet_heartbeats.c.period_s
            )).all()
            for r in rows:
                opened += self._open_task(c, r.store_id, r.robot_id, 'silent',
                                          f'last heartbeat {now - r.received_at:.0f} s ago', now)
        return opened

    def robots(self, store_ids: list[str] | None, now: float | None = None) -> list[dict]:
        """The latest state of each robot (of `store_ids`; None: all)."""
        now = time.time() if now is None else now
        query = sa.select(t.fleet_heartbeats).order_by(t.fleet_heartbeats.c.robot_id)
        if store_ids is not None:
            query = query.where(t.fleet_heartbeats.c.store_id.in_(store_ids))
        with self.engine.begin() as c:
            rows = c.execute(query).all()
        # the heartbeat was validated when it came; ok/degraded was judged then; silent is now
        return [{'robot_id': r.robot_id, 'store_id': r.store_id,
                 'state': 'silent' if now - r.received_at > self.missed * r.period_s else r.state,
                 'last_heartbeat_s': round(now - r.received_at, 3),
                 'heartbeat': json.loads(r.heartbeat)} for r in rows]

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
        now = time.time() if now is None else now
        with self.engine.begin() as c:
            existing = c.execute(sa.select(t.staff_calls.c.id, t.staff_calls.c.request).where(
                t.staff_calls.c.robot_id == robot_id,
                t.staff_calls.c.call_id == call.call_id)).first()
            if existing is not None:
                if existing.request != call.model_dump_json():
                    raise CallIdReused(f'call_id_reused: call {call.call_id} was stored with '
                                       'other content')
                return {'id': existing.id, 'duplicate': True}
            store = self._store_of(c, robot_id)
            new_id = c.execute(t.staff_calls.insert().values(
                store_id=store, robot_id=robot_id, call_id=call.call_id,
                request=call.model_dump_json(), created_at=now, state='open')).inserted_primary_key[0]
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
            where = {k: request.get(k) for k in ('zone', 'x', 'y')}
            latest = heartbeats.get(r.robot_id)
            out.append({'id': r.id, 'robot_id': r.robot_id, 'state': r.state,
                        'created_at': r.created_at, 'reason': request.get('reason', ''),
                        'wanted': request.get('wanted', ''), 'product': request.get('product', ''),
                        'where': where, 'robot_state': latest['state'] if latest else 'unknown',
                        'answered_at': r.answered_at, 'answered_by': r.answered_by,
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


def start_sweeper(app: FastAPI, fleet: Fleet, every_s: float = SWEEP_S) -> None:
    """Run `fleet.sweep` every `every_s` seconds while the app serves (wraps its lifespan). A
    failed sweep (the database away) is logged once per kind of failure and retried."""
    previous = app.router.lifespan_context

    async def sweep_forever() -> None:
        last_error = ''
        while True:
            try:
                opened = await asyncio.to_thread(fleet.sweep)
                if opened:
                    LOG.info(f'fleet: {opened} silent robot task(s) opened')
                last_error = ''
            except Exception as exc:  # noqa: BLE001 - the timer must outlive a database outage
                error = f'fleet sweep failed: {type(exc).__name__}: {str(exc)[:200]}'
                if error != last_error:
                    LOG.warning(error)
                last_error = error
            await asyncio.sleep(every_s)

    @asynccontextmanager
    async def lifespan(app_: FastAPI):
        task = asyncio.create_task(sweep_forever())
        try:
            async with previous(app_) as state:
                yield state
        finally:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
    app.router.lifespan_context = lifespan


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
    body = await deps.read_limited(request, limit)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = '.'.join(str(part) for part in first.get('loc', ())) or 'body'
        raise HTTPException(422, f'{what} refused: {where}: {first.get("msg")}') from None


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


def add_routes(app: FastAPI, fleet: Fleet, deps: Deps) -> None:
    r = deps.responses
    answers = r(401, 403, 404, 413, 422, 503)

    @app.post('/v1/robots/{robot_id}/heartbeat', response_model=dict,
              summary='A robot\'s health summary (retail_sync.fleet.Heartbeat v1); the answer '
                      'says which desired state it should run and whether staff wrote to it',
              responses=answers, openapi_extra=body_of(Heartbeat))
    async def heartbeat(request: Request, robot_id: str = Depends(deps.robot_scope)) -> dict:
        beat = await parse(request, Heartbeat, 'heartbeat', deps)

        def work() -> dict:
            answer = fleet.record_heartbeat(robot_id, beat)
            rollouts = getattr(app.state, 'rollouts', None)
            answer['desired_version'] = rollouts.on_heartbeat(robot_id, beat) if rollouts else 0
            answer['messages'] = fleet.waiting_messages(robot_id)
            return answer
        return await run_in_threadpool(work)

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
                                                              [{'store_id': store_id, 'robots': 0}])[0]}

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
              'sent again with other content)', responses=r(401, 403, 404, 409, 413, 422, 503),
              openapi_extra=body_of(StaffCall))
    async def staff_call(request: Request, robot_id: str = Depends(deps.robot_scope)) -> dict:
        call = await parse(request, StaffCall, 'staff call', deps)
        try:
            return await run_in_threadpool(fleet.add_call, robot_id, call)
        except CallIdReused as exc:
            raise HTTPException(409, str(exc)) from None

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
              '(kind answer) or type words for the robot to speak as staff (kind say)',
              responses=answers, openapi_extra=body_of(StaffReply))
    async def reply(request: Request, call_id: int = Path(ge=1, le=2 ** 31 - 1),
                    store_id: str = Depends(deps.store_writer), who=Depends(deps.caller)) -> dict:
        _staff_only(who)
        message = await parse(request, StaffReply, 'reply', deps)
        done = await run_in_threadpool(fleet.reply, store_id, call_id, message, deps.who(who))
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
    return lines
