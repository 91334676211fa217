"""Desired state rolled out in waves: versioned documents (content and live settings,
retail_sync.fleet.DesiredState) per group of robots, rolled out canary -> 10 % -> all.

A rollout's plan is fixed when it starts: the group's robots in a stable pseudo-random order
(a hash of rollout id and robot id), cut into cumulative waves `plan_waves(n)`. Wave k's robots
are assigned the version (`robot_desired`); each learns it from its next heartbeat's answer and
fetches the document (`GET /v1/robots/{id}/desired`), so a robot that is offline converges when
it returns. The rollout moves to the next wave when every robot of the waves so far reports the
version in use and `soak_s` passed; it halts for good (reason kept) as soon as one of them
reports it refused the rollout's version, a safety stop or an error level. Every assignment, use
and refusal is a row of the robot's history.

Version numbers are chain-wide: every new desired-state version, of any group, takes the next
number of one sequence (`add_version`), so the number a robot reports (Heartbeat
`desired_version`) names one document, whatever group the robot was in when it fetched it. A
refusal counts only for the version it names (Heartbeat v2 `desired_refused`; a v1 heartbeat's
error starts 'v<N>:'). When a rollout halts on trouble, its robots that do not run its version
are given back the version they run (or nothing), with a `withdrawn` row in their history: a
halted rollout's version is never handed out again. (A rollout replaced by a newer one of the
group keeps its assignments: its version was not found bad, and the new one reaches them.)

A group exists once it has robots (`PUT /v1/admin/fleet/groups/{id}`, of registered robots only)
or versions; new versions and rollouts of an unknown group answer 404.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, StringConstraints

from retail_platform import schema as t
from retail_platform.fleet import Deps, body_of, parse, soft_commit
from retail_sync.fleet import DesiredState, Heartbeat
from retail_sync.transport import ROBOT_ID

CANARY_FRACTION = 0.02
SECOND_WAVE_FRACTION = 0.10
MAX_DOCUMENT = 1024 * 1024
VERSION_LOCK = 0x7265_7461_696c_0027       # advisory lock of the version sequence (PostgreSQL)


class UnknownRobots(ValueError):
    """A group named robots the platform never registered."""


def plan_waves(robots: list[str], salt: str) -> list[list[str]]:
    """Cumulative waves: canaries (2 %, at least 1), then up to 10 %, then all (pure)."""
    order = sorted(robots, key=lambda r: hashlib.sha256(f'{salt}:{r}'.encode()).hexdigest())
    n = len(order)
    cuts = sorted({min(n, max(1, math.ceil(n * CANARY_FRACTION))),
                   min(n, max(1, math.ceil(n * SECOND_WAVE_FRACTION))), n})
    waves, start = [], 0
    for cut in cuts:
        if cut > start:
            waves.append(order[start:cut])
            start = cut
    return waves


def trouble(beat: Heartbeat, version: int) -> str:
    """Why a canary's heartbeat halts the rollout of `version` ('' when it does not): a refusal
    of another version (an earlier one, reported until the robot runs a good one) does not; a
    safety stop or a part in error counts once the canary runs `version` (what the version may
    have caused: a one-second stale-scan error reported before the canary even had it halted the
    store day's rollout)."""
    if beat.desired_error and beat.desired_refused == version:
        return f'refused the document: {beat.desired_error}'
    if beat.desired_version != version:
        return ''
    if beat.safety_stop:
        return 'safety stop'
    bad = [p for p in ('base', 'localisation', 'sync', 'speech', 'camera')
           if getattr(beat, p).level == 'error']
    return f'error in {", ".join(bad)}' if bad else ''


class GroupIn(BaseModel):
    model_config = {'extra': 'forbid'}
    robots: list[Annotated[str, StringConstraints(pattern=ROBOT_ID.pattern)]] = Field(
        max_length=10000, description='robot ids of the group')


class RolloutIn(BaseModel):
    model_config = {'extra': 'forbid'}
    version: int = Field(ge=1, le=2 ** 31 - 1)
    soak_s: float = Field(300.0, ge=0, le=7 * 86400, allow_inf_nan=False,
                          description='how long a wave runs healthy before the next starts')


class Rollouts:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def set_group(self, group_id: str, robots: list[str]) -> int:
        """Replace the group's robots (each must be registered: UnknownRobots names the others;
        a robot is in one group: it leaves its earlier one)."""
        with self.engine.begin() as c:
            wanted = sorted(set(robots))
            known: set[str] = set()
            for start in range(0, len(wanted), 1000):
                known.update(r for (r,) in c.execute(sa.select(t.robots.c.robot_id).where(
                    t.robots.c.robot_id.in_(wanted[start:start + 1000]))))
            unknown = [r for r in wanted if r not in known]
            if unknown:
                names = ', '.join(unknown[:10]) + (f' and {len(unknown) - 10} more'
                                                   if len(unknown) > 10 else '')
                raise UnknownRobots(f'group refused: robots not registered: {names}')
            c.execute(t.fleet_groups.delete().where(t.fleet_groups.c.group_id == group_id))
            c.execute(t.fleet_groups.delete().where(t.fleet_groups.c.robot_id.in_(robots)))
            if robots:
                c.execute(t.fleet_groups.insert(), [{'robot_id': r, 'group_id': group_id}
                                                    for r in sorted(set(robots))])
        return len(set(robots))

    def group_exists(self, c: sa.Connection, group_id: str) -> bool:
        return any(c.execute(sa.select(table.c.group_id).where(table.c.group_id == group_id)
                             .limit(1)).first() for table in (t.fleet_groups, t.desired_states))

    def add_version(self, group_id: str, document: str, who: str) -> int:
        """Store a new version of the group's desired state under the next chain-wide number
        (one statement taking max + 1 over every group; on PostgreSQL under an advisory lock, so
        two groups' versions made at once never share a number). LookupError: no such group."""
        with self.engine.begin() as c:
            if not self.group_exists(c, group_id):
                raise LookupError(f'no group {group_id} (create it with PUT '
                                  f'/v1/admin/fleet/groups/{group_id})')
            if c.dialect.name == 'postgresql':
                c.execute(sa.text('SELECT pg_advisory_xact_lock(:key)'), {'key': VERSION_LOCK})
            d = t.desired_states.c
            following = sa.select(
                sa.literal(group_id, sa.String), sa.func.coalesce(sa.func.max(d.version), 0) + 1,
                sa.literal(document, sa.Text), sa.literal(time.time(), sa.Float),
                sa.literal(who[:200], sa.String))
            return int(c.execute(t.desired_states.insert().from_select(
                ['group_id', 'version', 'document', 'created_at', 'created_by'], following)
                .returning(d.version)).scalar_one())

    def start(self, group_id: str, version: int, soak_s: float, now: float | None = None,
              who: str = '') -> dict:
        now = time.time() if now is None else now
        with self.engine.begin() as c:
            if not c.execute(sa.select(t.desired_states.c.version).where(
                    t.desired_states.c.group_id == group_id,
                    t.desired_states.c.version == version)).first():
                raise LookupError(f'group {group_id} has no desired state version {version}')
            robots = [r for (r,) in c.execute(sa.select(t.fleet_groups.c.robot_id).where(
                t.fleet_groups.c.group_id == group_id))]
            if not robots:
                raise LookupError(f'group {group_id} has no robots')
            for old in c.execute(sa.select(t.rollouts).where(
                    t.rollouts.c.group_id == group_id, t.rollouts.c.state == 'running')).all():
                self._halt(c, old, 'replaced by a newer rollout', now, withdraw=False)
            rollout_id = c.execute(t.rollouts.insert().values(
                group_id=group_id, version=version, state='running', wave=0, plan='[]',
                soak_s=soak_s, started_at=now, wave_started_at=now,
                started_by=who[:200])).inserted_primary_key[0]
            plan = plan_waves(robots, str(rollout_id))
            c.execute(t.rollouts.update().where(t.rollouts.c.id == rollout_id)
                      .values(plan=json.dumps(plan)))
            self._assign(c, group_id, version, rollout_id, plan[0], now)
        return self.status(rollout_id)

    def _assign(self, c: sa.Connection, group_id: str, version: int, rollout_id: int,
                robots: list[str], now: float) -> None:
        for robot in robots:
            values = dict(group_id=group_id, version=version, rollout_id=rollout_id,
                          assigned_at=now, error='')
            if not c.execute(t.robot_desired.update().where(t.robot_desired.c.robot_id == robot)
                             .values(**values)).rowcount:
                c.execute(t.robot_desired.insert().values(robot_id=robot, **values))
        if robots:
            c.execute(t.desired_history.insert(), [dict(robot_id=r, version=version,
                                                        rollout_id=rollout_id, status='assigned',
                                                        detail='', at=now) for r in robots])

    def _halt(self, c: sa.Connection, rollout: Any, reason: str, now: float,
              withdraw: bool = True) -> None:
        """Halt the rollout for good; with `withdraw`, its robots that do not run its version
        are given back the version they run (or none): its version is not handed out again."""
        claimed = c.execute(t.rollouts.update().where(
            t.rollouts.c.id == rollout.id, t.rollouts.c.state == 'running')
            .values(state='halted', reason=reason[:500]))
        if not claimed.rowcount or not withdraw:
            return
        d = t.robot_desired.c
        for row in c.execute(sa.select(t.robot_desired).where(
                d.rollout_id == rollout.id, d.running != rollout.version)).all():
            group = c.execute(sa.select(t.desired_states.c.group_id).where(
                t.desired_states.c.version == row.running).order_by(
                (t.desired_states.c.group_id != row.group_id), t.desired_states.c.group_id)
                .limit(1)).scalar() if row.running else None
            if group is None:
                c.execute(t.robot_desired.delete().where(d.robot_id == row.robot_id))
            else:
                c.execute(t.robot_desired.update().where(d.robot_id == row.robot_id).values(
                    group_id=group, version=row.running, rollout_id=None))
            c.execute(t.desired_history.insert().values(
                robot_id=row.robot_id, version=rollout.version, rollout_id=rollout.id,
                status='withdrawn', detail=f'rollout halted: {reason}'[:500], at=now))

    def assigned(self, robot_id: str) -> int:
        """The desired version the robot should run (0: none), read only."""
        with self.engine.connect() as c:
            return int(c.execute(sa.select(t.robot_desired.c.version).where(
                t.robot_desired.c.robot_id == robot_id)).scalar() or 0)

    def on_heartbeat(self, robot_id: str, beat: Heartbeat, now: float | None = None) -> int:
        """Record what the robot runs; halt or advance its rollout; the version it should run."""
        now = time.time() if now is None else now
        with self.engine.begin() as c:
            row = c.execute(sa.select(t.robot_desired).where(
                t.robot_desired.c.robot_id == robot_id)).first()
            if row is None:
                return 0
            soft_commit(c)                 # re-reported by the next heartbeat if lost
            if beat.desired_version and beat.desired_version != row.running:
                # what it runs now (the assigned version, or an earlier one reported late)
                c.execute(t.robot_desired.update().where(t.robot_desired.c.robot_id == robot_id)
                          .values(running=beat.desired_version,
                                  error='' if beat.desired_version == row.version else row.error))
                c.execute(t.desired_history.insert().values(
                    robot_id=robot_id, version=beat.desired_version, rollout_id=row.rollout_id
                    if beat.desired_version == row.version else None, status='running',
                    detail='', at=now))
            refused = beat.desired_refused if beat.desired_error else 0
            if refused and refused == row.version and row.running != row.version and \
                    row.error != beat.desired_error[:500]:
                c.execute(t.robot_desired.update().where(t.robot_desired.c.robot_id == robot_id)
                          .values(error=beat.desired_error[:500]))
                c.execute(t.desired_history.insert().values(
                    robot_id=robot_id, version=row.version, rollout_id=row.rollout_id,
                    status='refused', detail=beat.desired_error[:500], at=now))
            if row.rollout_id is not None:
                rollout = c.execute(sa.select(t.rollouts).where(
                    t.rollouts.c.id == row.rollout_id, t.rollouts.c.state == 'running')).first()
                if rollout is not None:
                    why = trouble(beat, rollout.version)
                    if why:
                        self._halt(c, rollout, f'{robot_id}: {why}', now)
                    else:
                        self._advance(c, rollout, now)
            return int(c.execute(sa.select(t.robot_desired.c.version).where(
                t.robot_desired.c.robot_id == robot_id)).scalar() or 0)

    def _advance(self, c: sa.Connection, rollout: Any, now: float) -> None:
        plan = json.loads(rollout.plan)
        so_far = [r for wave in plan[:rollout.wave + 1] for r in wave]
        if now - rollout.wave_started_at < rollout.soak_s:
            return
        done = c.execute(sa.select(sa.func.count()).select_from(t.robot_desired).where(
            t.robot_desired.c.robot_id.in_(so_far), t.robot_desired.c.rollout_id == rollout.id,
            t.robot_desired.c.running == rollout.version)).scalar()
        if done < len(so_far):
            return
        if rollout.wave + 1 >= len(plan):
            c.execute(t.rollouts.update().where(t.rollouts.c.id == rollout.id).values(state='done'))
            return
        claimed = c.execute(t.rollouts.update().where(
            t.rollouts.c.id == rollout.id, t.rollouts.c.wave == rollout.wave,
            t.rollouts.c.state == 'running').values(wave=rollout.wave + 1, wave_started_at=now))
        if claimed.rowcount:
            self._assign(c, rollout.group_id, rollout.version, rollout.id,
                         plan[rollout.wave + 1], now)

    def status(self, rollout_id: int) -> dict:
        with self.engine.begin() as c:
            r = c.execute(sa.select(t.rollouts).where(t.rollouts.c.id == rollout_id)).first()
            if r is None:
                raise LookupError(f'no rollout {rollout_id}')
            plan = json.loads(r.plan)
            running = c.execute(sa.select(sa.func.count()).select_from(t.robot_desired).where(
                t.robot_desired.c.rollout_id == r.id,
                t.robot_desired.c.running == r.version)).scalar()
        return {'id': r.id, 'group_id': r.group_id, 'version': r.version, 'state': r.state,
                'wave': r.wave, 'waves': [len(w) for w in plan],
                'assigned': sum(len(w) for w in plan[:r.wave + 1]), 'running': running,
                'reason': r.reason, 'started_at': r.started_at, 'started_by': r.started_by}

    def desired_for(self, robot_id: str) -> tuple[int, str] | None:
        with self.engine.begin() as c:
            row = c.execute(sa.select(t.robot_desired.c.version, t.desired_states.c.document)
                            .join(t.desired_states, sa.and_(
                                t.desired_states.c.group_id == t.robot_desired.c.group_id,
                                t.desired_states.c.version == t.robot_desired.c.version))
                            .where(t.robot_desired.c.robot_id == robot_id)).first()
        return (row.version, row.document) if row else None

    def history(self, robot_id: str) -> list[dict]:
        with self.engine.begin() as c:
            rows = c.execute(sa.select(t.desired_history).where(
                t.desired_history.c.robot_id == robot_id).order_by(t.desired_history.c.id)
                .limit(1000)).all()
        return [{'version': r.version, 'rollout_id': r.rollout_id, 'status': r.status,
                 'detail': r.detail, 'at': r.at} for r in rows]


GROUP = Path(pattern=ROBOT_ID.pattern, description='group id')


def add_routes(app: FastAPI, rollouts: Rollouts, deps: Deps, admin: Any,
               reader: Any) -> None:
    r = deps.responses

    @app.put('/v1/admin/fleet/groups/{group_id}', dependencies=[Depends(admin)],
             summary='Set a group\'s robots, creating the group (admin); 422 naming any robot id '
                     'never registered', responses=r(401, 403, 413, 422, 503),
             openapi_extra=body_of(GroupIn))
    async def put_group(request: Request, group_id: str = GROUP) -> dict:
        group = await parse(request, GroupIn, 'group', deps)
        try:
            return {'group_id': group_id,
                    'robots': await run_in_threadpool(rollouts.set_group, group_id, group.robots)}
        except UnknownRobots as exc:
            raise HTTPException(422, str(exc)) from None

    @app.post('/v1/admin/fleet/groups/{group_id}/desired', dependencies=[Depends(admin)],
              summary='A new desired-state version for an existing group, numbered chain-wide '
                      '(checked with the robot\'s rules; unchecked=true stores it as is, to test '
                      'the robots\' own validation); 404 for a group never created',
              responses=r(401, 403, 404, 413, 422, 503), openapi_extra=body_of(DesiredState))
    async def post_desired(request: Request, group_id: str = GROUP, unchecked: bool = False,
                           who=Depends(deps.caller)) -> dict:
        if unchecked:                   # stored as sent (a JSON object): robots must refuse it
            raw = await deps.read_limited(request, MAX_DOCUMENT)
            try:
                value = json.loads(raw)
                if not isinstance(value, dict):
                    raise ValueError('must be a JSON object')
                text = json.dumps(value, allow_nan=False)     # ASCII: any text column takes it
            except (ValueError, RecursionError) as exc:
                raise HTTPException(422, f'desired state refused: {exc}'[:300]) from None
        else:
            text = (await parse(request, DesiredState, 'desired state', deps,
                                MAX_DOCUMENT)).model_dump_json()
        try:
            version = await run_in_threadpool(rollouts.add_version, group_id, text, deps.who(who))
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return {'group_id': group_id, 'version': version}

    @app.post('/v1/admin/fleet/groups/{group_id}/rollouts', dependencies=[Depends(admin)],
              summary='Roll a version out: canary, 10 %, all; halts on a canary\'s refusal, '
                      'safety stop or error', responses=r(401, 403, 404, 413, 422, 503),
              openapi_extra=body_of(RolloutIn))
    async def post_rollout(request: Request, group_id: str = GROUP,
                           who=Depends(deps.caller)) -> dict:
        wanted = await parse(request, RolloutIn, 'rollout', deps)
        try:
            return await run_in_threadpool(rollouts.start, group_id, wanted.version, wanted.soak_s,
                                           None, deps.who(who))
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get('/v1/admin/fleet/rollouts/{rollout_id}', dependencies=[Depends(reader)],
             summary='A rollout\'s state, wave and why it halted', responses=r(401, 403, 404, 422, 503))
    def get_rollout(rollout_id: int = Path(ge=1, le=2 ** 31 - 1)) -> dict:
        try:
            return rollouts.status(rollout_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get('/v1/admin/fleet/robots/{robot_id}/history', dependencies=[Depends(reader)],
             summary='What desired state a robot was given, ran or refused, in order',
             responses=r(401, 403, 422, 503))
    def history(robot_id: str = Path(pattern=ROBOT_ID.pattern)) -> list[dict]:
        return rollouts.history(robot_id)

    @app.get('/v1/robots/{robot_id}/desired', summary='The desired state this robot should run '
             '(DesiredState v1; header X-Desired-Version)',
             responses={200: {'description': 'the document', 'content': {'application/json': {
                 'schema': {'type': 'object'}}}}, **r(304, 401, 403, 404, 503)})
    def desired(request: Request, robot_id: str = Depends(deps.robot_scope)) -> Response:
        found = rollouts.desired_for(robot_id)
        if found is None:
            raise HTTPException(404, f'no desired state for robot {robot_id}')
        version, document = found
        etag = f'"v{version}"'
        if request.headers.get('if-none-match') == etag:
            return Response(status_code=304, headers={'ETag': etag})
        return Response(document, media_type='application/json',
                        headers={'ETag': etag, 'X-Desired-Version': str(version)})

