"""Everything the platform keeps, behind one interface over SQLAlchemy Core, the same on SQLite
and PostgreSQL. State that several API processes must agree on (tokens and their revocation,
per-store budgets, sequence checks, statistics) lives only in the database.

Ingest (`store_events`) answers per event: `accepted` (stored now), `duplicate` (already stored
with the same content) or `rejected` with a reason (`event_id_reused`: the idempotency key came
back with other content; `seq_reused`: the robot's sequence number already belongs to another
event: flagged; or why the event is invalid). A robot's batches are serialised by a lock in the
database (PostgreSQL: an advisory transaction lock per robot; SQLite: its single writer), so
two API processes given the same batch at once store it once. On PostgreSQL the accepted rows go
in with COPY straight into the events table (partitioned by event time) when the lookup under
that lock found none of the batch's keys; were one there all the same, the primary key fails the
COPY and the batch is stored once more through a per-session staging table and `INSERT ...
SELECT ... ON CONFLICT DO NOTHING`.

Budgets are token buckets in `store_budgets`: one per store (`Budget.rate`/`burst`, taken in the
batch's transaction), and the platform's catch-up bucket (row CATCH_UP_BUCKET, `admit_catch_up`,
taken before a backlog's large batch is stored, in a statement of its own).
"""
from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import sqlalchemy as sa

from retail_platform import schema as t
from retail_platform.database import create_engine

ROLES = ('robot', 'store_manager', 'region', 'analyst', 'admin')
STAFF_ROLES = ROLES[1:]
CHUNK = 500
STAGING_TRUNCATE_EVERY = 1000     # batches between two TRUNCATEs of a session's staging table


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8', 'surrogatepass')).hexdigest()


@dataclass(frozen=True)
class Credential:
    role: str
    robot_id: str | None = None
    store_id: str | None = None            # a robot's current store
    stores: frozenset[str] = frozenset()   # a store manager's stores
    region: str | None = None              # a region credential's region
    name: str = ''                         # the name it was issued under (for audit fields)


def credential_of(role: str, scope: str, name: str, robot_id: str | None = None,
                  store_id: str | None = None) -> Credential:
    """A Credential from a credentials row's fields (the API's and the pages' sessions')."""
    if role == 'robot':
        return Credential('robot', robot_id=robot_id, store_id=store_id, name=name)
    if role == 'store_manager':
        return Credential('store_manager', stores=frozenset(scope.split(',')), name=name)
    if role == 'region':
        return Credential('region', region=scope, name=name)
    return Credential(role, name=name)


def who_did(credential: Credential) -> str:
    """Who acted, for an audit field: the credential's name and role ('ann (store_manager)'),
    the robot's id, or 'admin (serve token)' for the serve credential; never a token."""
    if credential.role == 'robot':
        return credential.robot_id or 'robot'
    if not credential.name:
        return 'admin (serve token)' if credential.role == 'admin' else credential.role
    return f'{credential.name} ({credential.role})'[:200]


@dataclass
class EventRow:
    """One valid event of a batch, ready to store (store_id is filled in by the storage)."""
    event_id: str
    seq: int
    type: str
    version: int
    customer: str
    time: float
    data: str                    # canonical JSON text


@dataclass
class Rejected:
    event_id: Any
    reason: str


@dataclass
class Outcome:
    results: list[dict] = field(default_factory=list)
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0


class Backpressure(Exception):
    """The store's ingest budget is spent: retry after `retry_after` seconds."""

    def __init__(self, store_id: str, retry_after: int) -> None:
        super().__init__(f'store {store_id} is over its ingest budget; retry after {retry_after} s')
        self.retry_after = retry_after


class _KeyTaken(Exception):
    """PostgreSQL: a row of the batch's COPY straight into events had a stored key."""


class Revoked(Exception):
    """The uploading robot's token was revoked (or replaced) before its batch was stored."""


class NotFound(Exception):
    pass


class Refused(Exception):
    """A request that contradicts what is stored (one line: why)."""


@dataclass(frozen=True)
class Budget:
    """Per-store ingest budget: a token bucket of `burst` events refilled at `rate` events/s.
    `catch_up_rate`, `catch_up_burst`: the platform's budget for catching up (a backlog's
    large batches, every store and every API process together; `Storage.admit_catch_up`),
    a rate of 0: no such budget."""
    rate: float = 5000.0
    burst: float = 50000.0
    catch_up_rate: float = 2000.0
    catch_up_burst: float = 5000.0


# The platform-wide catch-up bucket is this row of store_budgets: no store id has a '*' (they
# match retail_sync.transport.ROBOT_ID's pattern), so it is never a store's bucket.
CATCH_UP_BUCKET = '*catch-up'


# A robot's member lookups on demand (`GET /v1/robots/{r}/members/{m}`) are paced by a token
# bucket of its own, a row of store_budgets keyed MEMBER_LOOKUPS + a hash of the robot id (a
# '*' no store id has): a robot asks only for the members its camera recognised and it does not
# hold (a few an hour), so a token used to guess member ids gets MEMBER_LOOKUP_BURST answers,
# then MEMBER_LOOKUPS_PER_HOUR an hour.
MEMBER_LOOKUPS = '*members:'
MEMBER_LOOKUP_BURST = 60
MEMBER_LOOKUPS_PER_HOUR = 120


class CatchUpRefused(Exception):
    """The platform's catch-up budget is spent for now: retry after `retry_after` seconds."""

    def __init__(self, events: int, retry_after: int) -> None:
        super().__init__(f'catching up is paced (a backlog batch of {events} events; live '
                         f'uploads go first); retry after {retry_after} s')
        self.retry_after = retry_after


class _IngestStatements:
    """The statements of every batch, built once with bound parameters (SQLAlchemy then keys its
    compiled-statement cache once, not on every batch): the robot's lock and store history
    (`found`, `found_token`: also whether the token is still valid), the store's budget
    (`take`), the ingest statistics (`count`)."""

    def __init__(self, postgresql: bool, budget: Budget) -> None:
        robot, token = sa.bindparam('robot', type_=sa.String), sa.bindparam('token', type_=sa.String)
        r, a, k = t.robots.c, t.robot_assignments.c, t.credentials.c
        lock = sa.select((sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(robot, 22))
                          if postgresql else sa.literal(1)).label('locked')).subquery()
        valid = sa.exists().where(k.token_hash == token, k.robot_id == robot, k.role == 'robot',
                                  k.revoked_at.is_(None))

        def found(valid):
            return sa.select(r.store_id.label('current'), a.since, a.store_id,
                             valid.label('valid')) \
                .select_from(lock.outerjoin(t.robots, r.robot_id == robot)
                             .outerjoin(t.robot_assignments, a.robot_id == r.robot_id)) \
                .order_by(a.since)
        self.found, self.found_token = found(sa.true()), found(valid)
        now = sa.bindparam('now', type_=sa.Float)
        self.take = _take_statement(budget.rate, budget.burst)
        self.take_catch_up = _take_statement(budget.catch_up_rate, budget.catch_up_burst)
        self.take_member_lookup = _take_statement(MEMBER_LOOKUPS_PER_HOUR / 3600.0,
                                                  float(MEMBER_LOOKUP_BURST))
        if postgresql:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        s = t.ingest_stats.c
        accepted, duplicate, rejected, lag = (sa.bindparam(name, type_=type_) for name, type_ in (
            ('accepted', sa.Integer), ('duplicate', sa.Integer), ('rejected', sa.Integer),
            ('lag', sa.Float)))
        upsert = insert(t.ingest_stats).values(
            store_id=sa.bindparam('store', type_=sa.String), accepted=accepted,
            duplicate=duplicate, rejected=rejected, last_seen=now, last_lag_s=lag)
        self.count = upsert.on_conflict_do_update(index_elements=['store_id'], set_=dict(
            accepted=s.accepted + accepted, duplicate=s.duplicate + duplicate,
            rejected=s.rejected + rejected, last_seen=now, last_lag_s=lag))
        # PostgreSQL: the lock-and-history statement as the driver's SQL with its constants,
        # run on the driver's cursor (SQLAlchemy's own work per statement was ~130 µs of an
        # API process's CPU, more than psycopg's), and the budget's parameters for _MERGED
        self.found_sql: dict[bool, tuple[str, dict]] = {}
        if postgresql:
            from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
            dialect = pg_dialect.dialect()
            for with_token, statement in ((False, self.found), (True, self.found_token)):
                compiled = statement.compile(dialect=dialect)
                self.found_sql[with_token] = (str(compiled), dict(compiled.params))
        self.budget = {'rate': float(budget.rate), 'burst': float(budget.burst)}


def _take_statement(rate_value: float, burst_value: float):
    """A token bucket's take (a row of store_budgets, `store`): refilled at `rate_value` since
    its last update, capped at `burst_value`, it gives `events` when it holds them (or is full:
    a batch larger than the burst passes then); no row returned when it does not."""
    b = t.store_budgets.c
    now = sa.bindparam('now', type_=sa.Float)
    events = sa.bindparam('events', type_=sa.Float)
    rate, burst = sa.literal(rate_value, sa.Float), sa.literal(burst_value, sa.Float)
    elapsed = sa.case((b.updated_at < now, now - b.updated_at), else_=0.0)
    refill = b.tokens + elapsed * rate
    refilled = sa.case((refill > burst, burst), else_=refill)
    return t.store_budgets.update().where(
        b.store_id == sa.bindparam('store', type_=sa.String),
        sa.or_(refilled >= events, refilled >= burst)) \
        .values(tokens=refilled - events, updated_at=now).returning(b.tokens)


def _tell_next_seq(c: sa.Connection, robot_id: str, fresh: list[tuple], reused: list[dict]) -> None:
    """Each seq_reused answer gets `next_seq`: the first number after every one this robot holds
    (stored, or taken by this batch's `fresh` rows). A robot whose stream was lost (a reinstall
    without its token folder) numbers the refused events on from there, so they are stored
    instead of held for good. Read under the robot's lock (PostgreSQL) / the write lock
    (SQLite): no batch between."""
    top = c.execute(sa.select(sa.func.max(t.events.c.seq))
                    .where(t.events.c.robot_id == robot_id)).scalar() or 0
    top = max([top, *(row[3] for row in fresh)])
    for answer in reused:
        answer['next_seq'] = top + 1


def _bucket_take(c: sa.Connection, take, key: str, amount: float, rate: float, burst: float,
                 now: float, postgresql: bool) -> tuple[float, Any]:
    """Take `amount` from the token bucket `key` (a row of store_budgets; `take` its
    _take_statement): (0, None) when taken, else (the seconds to wait, at least 1, and the row as
    read). The row of a new bucket is inserted full. Three tries: the row may appear or be
    refilled between the take and the read (the first batches of a store, or of the platform's
    catch-up, at once on several threads or processes); a read showing enough takes again
    rather than asking to wait."""
    b = t.store_budgets.c
    values = {'store': key, 'now': now, 'events': float(amount)}
    row: Any = None
    tokens = 0.0
    for _ in range(3):
        if (left := c.execute(take, values).first()) is not None:
            return 0.0, left
        row = c.execute(sa.select(b.tokens, b.updated_at).where(b.store_id == key)).first()
        if row is None:                     # a new bucket: full
            c.execute(_insert_ignore(t.store_budgets.insert().values(
                store_id=key, tokens=burst, updated_at=now), postgresql, ['store_id']))
            continue
        tokens = min(burst, row.tokens + max(0.0, now - row.updated_at) * rate)
        if tokens < min(amount, burst):
            break
    return max(1.0, float(math.ceil((min(amount, burst) - tokens) / rate))), row


class Storage:
    def __init__(self, target: str, pool_size: int = 5, budget: Budget = Budget()) -> None:
        self.target = str(target)
        self.engine = create_engine(self.target, pool_size=pool_size)
        self.postgresql = self.engine.dialect.name == 'postgresql'
        self.budget = budget
        self._statements = _IngestStatements(self.postgresql, budget)
        # (tokens, at): the catch-up bucket as the database last said (admit_catch_up)
        self._catch_up_known: tuple[float, float] | None = None

    def close(self) -> None:
        self.engine.dispose()

    def _read(self):
        """A connection for one read statement."""
        if self.postgresql:
            return self.engine.connect().execution_options(isolation_level='AUTOCOMMIT')
        return self.engine.begin()

    # --- chain shape ---------------------------------------------------------------------
    def add_region(self, region_id: str, name: str) -> None:
        with self.engine.begin() as c:
            if c.execute(sa.select(t.regions.c.id).where(t.regions.c.id == region_id)).first():
                raise Refused(f'region {region_id} already exists')
            c.execute(t.regions.insert().values(id=region_id, organisation_id='chain', name=name))

    def add_store(self, store_id: str, name: str, region_id: str | None = None) -> None:
        with self.engine.begin() as c:
            if c.execute(sa.select(t.stores.c.id).where(t.stores.c.id == store_id)).first():
                raise Refused(f'store {store_id} already exists')
            if region_id and not c.execute(sa.select(t.regions.c.id)
                                           .where(t.regions.c.id == region_id)).first():
                raise Refused(f'no region {region_id} (add it first: retailbot platform region add)')
            c.execute(t.stores.insert().values(id=store_id, name=name, region_id=region_id or None,
                                               created_at=time.time()))

    def stores(self) -> list[dict]:
        with self.engine.begin() as c:
            rows = c.execute(sa.select(t.stores.c.id, t.stores.c.name, t.stores.c.region_id)
                             .order_by(t.stores.c.id)).all()
        return [{'id': r.id, 'name': r.name, 'region_id': r.region_id} for r in rows]

    def regions(self) -> list[dict]:
        """Every region, by id, with how many stores it has."""
        count = sa.func.count(t.stores.c.id)
        with self.engine.begin() as c:
            rows = c.execute(sa.select(t.regions.c.id, t.regions.c.name, count.label('stores'))
                             .select_from(t.regions.outerjoin(t.stores,
                                                              t.stores.c.region_id == t.regions.c.id))
                             .group_by(t.regions.c.id, t.regions.c.name)
                             .order_by(t.regions.c.id)).all()
        return [{'id': r.id, 'name': r.name, 'stores': int(r.stores)} for r in rows]

    def store_region(self, store_id: str) -> tuple[bool, str | None]:
        """(exists, region id) of a store."""
        with self.engine.begin() as c:
            row = c.execute(sa.select(t.stores.c.region_id)
                            .where(t.stores.c.id == store_id)).first()
        return (row is not None, row.region_id if row else None)

    def _assign(self, c: sa.Connection, robot_id: str, store_id: str) -> None:
        now = time.time()
        known = c.execute(sa.select(t.robots.c.store_id)
                          .where(t.robots.c.robot_id == robot_id)).first()
        if known is None:
            c.execute(t.robots.insert().values(robot_id=robot_id, store_id=store_id,
                                               registered_at=now))
            # events from before the robot was registered count for its first store
            c.execute(t.robot_assignments.insert().values(robot_id=robot_id, since=-1e300,
                                                          store_id=store_id))
        elif known.store_id != store_id:
            c.execute(t.robots.update().where(t.robots.c.robot_id == robot_id)
                      .values(store_id=store_id))
            c.execute(t.robot_assignments.insert().values(robot_id=robot_id, since=now,
                                                          store_id=store_id))

    def move_robot(self, robot_id: str, store_id: str) -> None:
        with self.engine.begin() as c:
            self._require_store(c, store_id)
            if not c.execute(sa.select(t.robots.c.robot_id)
                             .where(t.robots.c.robot_id == robot_id)).first():
                raise Refused(f'no robot {robot_id} (issue its token with --store first)')
            self._assign(c, robot_id, store_id)

    def _require_store(self, c: sa.Connection, store_id: str) -> None:
        if not c.execute(sa.select(t.stores.c.id).where(t.stores.c.id == store_id)).first():
            raise Refused(f'no store {store_id} (add it first: retailbot platform store add)')

    # --- credentials ---------------------------------------------------------------------
    def issue_robot_token(self, robot_id: str, store_id: str, replace: bool = False) -> str:
        """A new token for `robot_id`, registering it in (or moving it to) `store_id`. Refused
        while the robot has an active token, unless `replace` (which revokes the old ones)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as c:
            if self.postgresql:           # two issues for one robot at once: one after the other
                c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:r, 23))'), {'r': robot_id})
            self._require_store(c, store_id)
            active = c.execute(sa.select(sa.func.count()).select_from(t.credentials).where(
                t.credentials.c.robot_id == robot_id, t.credentials.c.role == 'robot',
                t.credentials.c.revoked_at.is_(None))).scalar_one()
            if active and not replace:
                raise Refused(f'robot {robot_id} already has an active token: two robots with one '
                              'id would mix their events; give --replace to revoke it and issue '
                              'a new one')
            if active:
                c.execute(t.credentials.update().where(
                    t.credentials.c.robot_id == robot_id, t.credentials.c.revoked_at.is_(None))
                    .values(revoked_at=now))
                c.execute(t.flags.insert().values(robot_id=robot_id, kind='token_replaced',
                                                  detail=f'{active} active token(s) revoked',
                                                  created_at=now))
            self._assign(c, robot_id, store_id)
            c.execute(t.credentials.insert().values(token_hash=token_hash(token), role='robot',
                                                    robot_id=robot_id, scope='', name=robot_id,
                                                    issued_at=now))
        return token

    def issue_staff_token(self, role: str, name: str, stores: list[str] | None = None,
                          region: str | None = None) -> str:
        if role not in STAFF_ROLES:
            raise Refused(f'role {role!r} is not one of {", ".join(STAFF_ROLES)}')
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as c:
            scope = ''
            if role == 'store_manager':
                if not stores:
                    raise Refused('a store manager needs --store (one or more)')
                for store in stores:
                    self._require_store(c, store)
                scope = ','.join(stores)
            elif role == 'region':
                if not region:
                    raise Refused('a region credential needs --region R (a region of `region list`)')
                if not c.execute(sa.select(t.regions.c.id).where(t.regions.c.id == region)).first():
                    raise Refused(f'a region credential needs an existing --region, not {region!r}')
                scope = region
            c.execute(t.credentials.insert().values(token_hash=token_hash(token), role=role,
                                                    robot_id=None, scope=scope, name=name,
                                                    issued_at=time.time()))
        return token

    def revoke_robot(self, robot_id: str) -> int:
        with self.engine.begin() as c:
            return c.execute(t.credentials.update().where(
                t.credentials.c.robot_id == robot_id, t.credentials.c.revoked_at.is_(None))
                .values(revoked_at=time.time())).rowcount

    def revoke_fingerprint(self, fingerprint: str) -> int:
        """Revoke the active credential(s) whose hash starts with `token list`'s fingerprint."""
        with self.engine.begin() as c:
            return c.execute(t.credentials.update().where(
                t.credentials.c.token_hash.startswith(fingerprint, autoescape=True),
                t.credentials.c.revoked_at.is_(None)).values(revoked_at=time.time())).rowcount

    def list_tokens(self) -> list[dict]:
        with self.engine.begin() as c:
            rows = c.execute(sa.select(t.credentials).order_by(
                t.credentials.c.role, t.credentials.c.robot_id, t.credentials.c.issued_at)).all()
        return [dict(role=r.role, robot_id=r.robot_id, name=r.name, scope=r.scope,
                     fingerprint=r.token_hash[:12], issued_at=r.issued_at,
                     revoked_at=r.revoked_at) for r in rows]

    def credential(self, token: str) -> Credential | None:
        """The (not revoked) credential of a token, read from the database on every request,
        so a revocation holds at once on every API process (PostgreSQL: one round trip, in
        autocommit, no BEGIN/COMMIT around the single read)."""
        with self._read() as c:
            row = c.execute(sa.select(t.credentials.c.role, t.credentials.c.robot_id,
                                      t.credentials.c.scope, t.credentials.c.name,
                                      t.robots.c.store_id)
                            .select_from(t.credentials.outerjoin(
                                t.robots, t.robots.c.robot_id == t.credentials.c.robot_id))
                            .where(t.credentials.c.token_hash == token_hash(token),
                                   t.credentials.c.revoked_at.is_(None))).first()
        if row is None:
            return None
        return credential_of(row.role, row.scope, row.name, row.robot_id, row.store_id)

    # --- ingest --------------------------------------------------------------------------
    def robot_store(self, robot_id: str) -> str | None:
        with self.engine.begin() as c:
            return c.execute(sa.select(t.robots.c.store_id)
                             .where(t.robots.c.robot_id == robot_id)).scalar()

    def spend_budget(self, store_id: str, events: int) -> None:
        """Take `events` from the store's bucket in a transaction of its own."""
        with self.engine.begin() as c:
            self._spend(c, store_id, events)

    def _spend(self, c: sa.Connection, store_id: str, events: int) -> None:
        """Take `events` from the store's bucket (in the database, so every process agrees);
        Backpressure when it does not hold them (a batch larger than the burst passes when the
        bucket is full). One UPDATE in the usual case: the row's lock orders concurrent batches
        and the refill is computed from the row as it is when locked."""
        if events <= 0:
            return
        wait, _ = _bucket_take(c, self._statements.take, store_id, float(events), self.budget.rate,
                               self.budget.burst, time.time(), self.postgresql)
        if wait:
            raise Backpressure(store_id, int(wait))

    def take_member_lookup(self, robot_id: str, now: float | None = None) -> int:
        """Take one from the robot's member-lookup bucket (MEMBER_LOOKUPS; in the database, so
        every API process draws on one): 0 when taken, else the seconds to wait (at least 1)."""
        rate, burst = MEMBER_LOOKUPS_PER_HOUR / 3600.0, float(MEMBER_LOOKUP_BURST)
        key = MEMBER_LOOKUPS + hashlib.sha256(robot_id.encode()).hexdigest()[:48]
        now = time.time() if now is None else now
        with self.engine.begin() as c:
            wait, _ = _bucket_take(c, self._statements.take_member_lookup, key, 1.0, rate, burst, now,
                                   self.postgresql)
        return int(wait)

    def admit_catch_up(self, events: int, now: float | None = None) -> int:
        """Take `events` from the platform's catch-up bucket (CATCH_UP_BUCKET, in the database
        so that every API process draws on one budget): 0 when taken, else the seconds to wait
        (at least 1) before the batch is worth sending again. A batch larger than the burst is
        taken when the bucket is full. Its own short transaction (PostgreSQL: one autocommit
        UPDATE in the usual case), so the bucket's row is locked for that statement only.

        The process keeps what the database last said of the bucket (tokens at a time): other
        processes only take from it, so those tokens plus the refill since are an upper bound
        of what it holds now, and a batch that bound cannot pay for is refused without asking
        the database (a drain's robots retry many times a second)."""
        rate, burst = self.budget.catch_up_rate, self.budget.catch_up_burst
        if rate <= 0 or events <= 0:
            return 0
        now = time.time() if now is None else now
        need = min(float(events), burst)
        known = self._catch_up_known
        if known is not None:
            at_most = min(burst, known[0] + max(0.0, now - known[1]) * rate)
            if at_most < need:
                return max(1, math.ceil((need - at_most) / rate))
        with (self.engine.connect().execution_options(isolation_level='AUTOCOMMIT')
              if self.postgresql else self.engine.begin()) as c:
            wait, row = _bucket_take(c, self._statements.take_catch_up, CATCH_UP_BUCKET, float(events),
                                     rate, burst, now, self.postgresql)
        if not wait:
            self._catch_up_known = (float(row.tokens), now)
        elif row is not None:
            self._catch_up_known = (float(row.tokens), float(row.updated_at))
        return int(wait)

    def store_events(self, robot_id: str, items: list[EventRow | Rejected],
                     token: str | None = None) -> Outcome:
        """Store a robot's batch. `token`: the hash of the uploader's token, checked (not
        revoked, this robot's) in the transaction's first statement; Revoked otherwise."""
        now = time.time()
        rows = [item for item in items if isinstance(item, EventRow)]
        with self.engine.connect() as c:
            try:
                try:
                    with c.begin():
                        return self._store(c, robot_id, items, rows, now, token)
                except _KeyTaken:
                    # A key the lookup did not find was there at the COPY (not seen: the
                    # robot's lock orders its batches). Rolled back; once more through the
                    # staging table, whose INSERT ... ON CONFLICT DO NOTHING skips it.
                    c.info['direct'] = False
                    try:
                        with c.begin():
                            return self._store(c, robot_id, items, rows, now, token)
                    finally:
                        c.info.pop('direct', None)
            except BaseException:
                with contextlib.suppress(Exception):     # (an invalidated connection: new info)
                    c.info.pop('staging', None)  # a temp table made in it is rolled back too
                raise

    def _store(self, c: sa.Connection, robot_id: str, items: list[EventRow | Rejected],
               rows: list[EventRow], now: float, token: str | None = None) -> Outcome:
        # One round trip: the robot's lock (PostgreSQL: its batches one after the other, so
        # the lookup below sees every earlier batch), its current store and where it was
        # when (each event keeps the store it happened in).
        if self.postgresql:
            from psycopg.rows import namedtuple_row
            sql, constants = self._statements.found_sql[bool(token)]
            driver = c.connection.driver_connection
            assert driver is not None                      # (a checked-out connection)
            with driver.cursor(row_factory=namedtuple_row) as cursor:
                found = cursor.execute(sql, {**constants, 'robot': robot_id,
                                             'token': token}).fetchall()
        else:
            found = c.execute(self._statements.found_token, {'robot': robot_id, 'token': token}) \
                .all() if token else c.execute(self._statements.found, {'robot': robot_id}).all()
        if not found or not found[0].valid:
            raise Revoked(robot_id)
        current = found[0].current if found else None
        assignments = [row for row in found if row.since is not None]
        # The store's budget, in the same transaction (one commit, one fsync a batch): over
        # it, Backpressure rolls back and nothing of the batch is stored. SQLite (one writer):
        # first. PostgreSQL: last, in the statement that moves the rows (_insert_events), so the
        # store's budget row is locked only from there to the commit: taken first, it was held
        # through the lookup and the COPY, and a store's other robots waited for it (their
        # batches one after the other; pg_stat_statements: the budget UPDATE was the second
        # largest time of the ingest, nearly all of it waiting for that lock).
        if not self.postgresql:
            self._spend(c, current or '', len(rows))
        by_id: dict[str, Any] = {}
        by_seq: dict[int, str] = {}
        known, forgotten = self._known(c, robot_id, rows)
        for row in known:
            by_id[row.event_id] = row
            by_seq[row.seq] = row.event_id
        if forgotten:       # a forgotten member's events (late uploads, replays): tombstones only
            rows = [_tombstone(r) if r.customer in forgotten else r for r in rows]
            items = [_tombstone(i) if isinstance(i, EventRow) and i.customer in forgotten else i
                     for i in items]
        return self._store_fresh(c, robot_id, items, rows, by_id, by_seq, assignments, now,
                                 (current or '', len(rows)))

    def _store_fresh(self, c: sa.Connection, robot_id: str, items: list[EventRow | Rejected],
                     rows: list[EventRow], by_id: dict[str, Any], by_seq: dict[int, str],
                     assignments: list, now: float, spend: tuple[str, int]) -> Outcome:
        outcome = Outcome()
        fresh: list[tuple] = []                 # rows in the order of t.EVENT_COLUMNS
        seen: dict[str, EventRow] = {}
        flags: list[dict] = []
        reused: list[dict] = []                 # seq_reused answers: told where to number on
        since = [a.since for a in assignments]          # (once a batch, not once an event)
        if _usual_batch(items, rows, by_id, by_seq, assignments):
            # The usual batch: nothing of it stored, every event valid, no id or seq twice, one
            # store in the robot's history: each event is accepted (the loop below would say the
            # same, at ~3x the cost per event).
            store_id = assignments[0].store_id if assignments else None
            fresh = [(robot_id, r.event_id, r.time, r.seq, store_id, r.type, r.version,
                      r.customer, r.data, now) for r in rows]
            outcome.results = [{'event_id': r.event_id, 'status': 'accepted'} for r in rows]
            outcome.accepted = len(rows)
            items = []
        for item in items:
            if isinstance(item, Rejected):
                outcome.results.append({'event_id': item.event_id, 'status': 'rejected',
                                        'reason': item.reason})
                outcome.rejected += 1
                continue
            known = by_id.get(item.event_id) or seen.get(item.event_id)
            if known is not None:
                answer = _answer_to_known(known, item)
                outcome.results.append(answer)
                if answer['status'] == 'duplicate':
                    outcome.duplicate += 1
                else:
                    outcome.rejected += 1
                continue
            owner = by_seq.get(item.seq)
            if owner is not None:
                reused.append({
                    'event_id': item.event_id, 'status': 'rejected',
                    'reason': f'seq_reused: seq {item.seq} of robot {robot_id} belongs to '
                              f'event {owner}'})
                outcome.results.append(reused[-1])
                outcome.rejected += 1
                flags.append(dict(robot_id=robot_id, kind='seq_reused', created_at=now,
                                  detail=f'seq {item.seq}: stored {owner}, offered '
                                         f'{item.event_id}'[:2000]))
                continue
            seen[item.event_id] = item
            by_seq[item.seq] = item.event_id
            fresh.append((robot_id, item.event_id, item.time, item.seq,   # t.EVENT_COLUMNS
                          _store_at(assignments, item.time, since), item.type, item.version,
                          item.customer, item.data, now))
            outcome.results.append({'event_id': item.event_id, 'status': 'accepted'})
            outcome.accepted += 1
        if flags:
            c.execute(t.flags.insert(), flags)
        if reused:
            _tell_next_seq(c, robot_id, fresh, reused)
        store = assignments[-1].store_id if assignments else ''
        newest = max((r.time for r in rows), default=None)
        if self.postgresql:     # the rows, the statistics and the budget in one statement
            if not self._insert_events(c, fresh, self._count_values(store, outcome, newest, now)
                                       | self._statements.budget
                                       | {'budget_store': spend[0], 'events': float(spend[1])}):
                # not taken: the store's first batch (no bucket yet) or over its budget
                # (Backpressure: the whole transaction is rolled back, nothing stored or counted)
                self._spend(c, *spend)
            return outcome
        if fresh:
            self._insert_events(c, fresh)
        self._count(c, store, outcome, newest, now)
        return outcome

    def _known(self, c: sa.Connection, robot_id: str, rows: list[EventRow]) -> tuple[list, set[str]]:
        """The robot's stored events that share an event_id or a seq with `rows`, and the
        members among `rows`' customers that were forgotten (retail_platform.chain's
        forget_requests): one round trip on PostgreSQL."""
        from retail_platform.chain import forget_requests
        ids = list({r.event_id for r in rows})
        seqs = list({r.seq for r in rows})
        customers = list({r.customer for r in rows if r.customer})
        if not ids:
            return [], set()
        if self.postgresql:
            # The lists as JSON text, unpacked into arrays by the database: one plan whatever
            # the batch size, and one C-speed json.dumps instead of the driver's array
            # encoder (a Python loop over every element: a tenth of a batch's CPU).
            from psycopg.rows import namedtuple_row
            raw = c.connection.driver_connection
            with raw.cursor(row_factory=namedtuple_row) as cursor:
                found = cursor.execute(_KNOWN, {'r': robot_id, 'ids': json.dumps(ids),
                                                'seqs': json.dumps(seqs),
                                                'members': json.dumps(customers)},
                                       prepare=False).fetchall()
            return [r for r in found if not r.gone], {r.event_id for r in found if r.gone}
        e = t.events.c
        cols = (e.event_id, e.seq, e.type, e.version, e.customer, e.time, e.data)
        known: list = []
        for start in range(0, max(len(ids), len(seqs)), CHUNK):
            part_ids, part_seqs = ids[start:start + CHUNK], seqs[start:start + CHUNK]
            # Two lookups, each on its own key (robot_id, event_id) and (robot_id, seq): one
            # statement with `event_id IN ... OR seq IN ...` was planned as a scan of every
            # event of the robot (its cost grew with the robot's history); a row found by both
            # comes twice (the same row: no harm).
            known += c.execute(sa.union_all(
                sa.select(*cols).where(e.robot_id == robot_id, e.event_id.in_(part_ids)),
                sa.select(*cols).where(e.robot_id == robot_id, e.seq.in_(part_seqs)))).all()
        forgotten: set[str] = set()
        for start in range(0, len(customers), CHUNK):
            forgotten |= set(c.execute(sa.select(forget_requests.c.member_id).where(
                forget_requests.c.member_id.in_(customers[start:start + CHUNK]))).scalars())
        return known, forgotten

    def _insert_events(self, c: sa.Connection, fresh: list[tuple],
                       count: dict | None = None) -> bool:
        """Insert `fresh` (tuples in the order of t.EVENT_COLUMNS). `count` (PostgreSQL): the
        batch's statistics (`_count_values`) and the budget to take (`budget_store`, `events`,
        `rate`, `burst`), both done by the statement that moves the rows; False when the
        budget was not taken (the caller then runs `_spend`, which says why)."""
        if not self.postgresql:       # one writer at a time: the clock's order is commit order
            position = c.execute(sa.text('UPDATE ingest_clock SET value = value + 1 WHERE id = 1 '
                                         'RETURNING value')).scalar_one()
            c.execute(t.events.insert().prefix_with('OR IGNORE'),
                      [dict(zip(t.EVENT_COLUMNS, row), commit_seq=position) for row in fresh])
            return True
        # PostgreSQL: commit_seq is the column's default, this transaction's id
        raw = c.connection.driver_connection
        assert raw is not None                             # (a checked-out connection)
        columns = ', '.join(t.EVENT_COLUMNS)
        if count is not None and c.info.get('direct', True):
            # Straight into events. The robot's advisory lock (taken by the transaction's first
            # statement) orders its batches, and the lookup after it found every stored event
            # of the robot with one of the batch's ids or seqs: none of `fresh` can be there, so
            # the staging table's INSERT ... ON CONFLICT DO NOTHING would skip nothing. The
            # primary key still holds: a row that were there would fail the COPY
            # (UniqueViolation: _KeyTaken, rolled back, stored again through the staging
            # table). Saves the staging table's write and read of every row (~7 µs of the
            # database's CPU per event) and a temporary table per database session.
            import psycopg
            with raw.cursor() as cursor:
                if fresh:
                    try:
                        with cursor.copy(f'COPY events ({columns}) FROM STDIN') as copy:
                            for row in fresh:
                                copy.write_row(row)
                    except psycopg.errors.UniqueViolation as exc:
                        raise _KeyTaken() from exc
                # the statistics and the budget in one statement (statistics row locked
                # first, then the budget's, in every batch: no deadlock between two)
                taken = cursor.execute(f'{_TAKE} {_COUNT} RETURNING (SELECT count(*) FROM take)',
                                       count).fetchone()
            return bool(taken and taken[0])
        with raw.cursor() as cursor:
            # The staging table is made once per database session and emptied by the statement
            # that moves its rows (ON COMMIT DELETE ROWS truncated its files at every commit: a
            # file system operation per batch); TRUNCATE now and then clears the dead rows.
            batches = c.info.get('staging')
            if not batches:
                cursor.execute('CREATE TEMP TABLE IF NOT EXISTS events_staging '
                               '(LIKE events INCLUDING DEFAULTS) ON COMMIT PRESERVE ROWS')
                cursor.execute('TRUNCATE events_staging')
            elif batches % STAGING_TRUNCATE_EVERY == 0:
                cursor.execute('TRUNCATE events_staging')
            c.info['staging'] = (batches or 0) + 1   # (forgotten when this transaction fails)
            if fresh:
                with cursor.copy(f'COPY events_staging ({columns}) FROM STDIN') as copy:
                    for row in fresh:
                        copy.write_row(row)
            moved = f'WITH moved AS (DELETE FROM events_staging RETURNING {columns})'
            insert = (f'INSERT INTO events ({columns}) SELECT {columns} FROM moved '
                      'ON CONFLICT DO NOTHING')
            if count is None:
                cursor.execute(f'{moved} {insert}')
                return True
            # two round trips fewer: the statistics upsert and the budget ride on the move
            # (every PostgreSQL batch runs this one statement, so every batch locks the
            # store's statistics row, then its budget row, in the same order: no deadlock)
            taken = cursor.execute(f'{_TAKE}, {moved[5:]}, added AS ({insert}) {_COUNT} '
                                   'RETURNING (SELECT count(*) FROM take)', count).fetchone()
            return bool(taken and taken[0])

    @staticmethod
    def _count_values(store_id: str, outcome: Outcome, newest: float | None,
                      now: float) -> dict:
        lag = max(0.0, now - newest) if newest is not None else 0.0
        return {'store': store_id, 'accepted': outcome.accepted, 'duplicate': outcome.duplicate,
                'rejected': outcome.rejected, 'now': now, 'lag': lag}

    def _count(self, c: sa.Connection, store_id: str, outcome: Outcome, newest: float | None,
               now: float) -> None:
        c.execute(self._statements.count, self._count_values(store_id, outcome, newest, now))

    def stats(self) -> list[dict]:
        with self.engine.begin() as c:
            return [dict(r._mapping) for r in c.execute(sa.select(t.ingest_stats)
                                                        .order_by(t.ingest_stats.c.store_id))]

    def flags(self, limit: int = 1000) -> list[dict]:
        with self.engine.begin() as c:
            return [dict(r._mapping) for r in c.execute(
                sa.select(t.flags).order_by(t.flags.c.id.desc()).limit(limit))]

    def export(self, robot_id: str) -> Iterator[dict]:
        """A robot's stored events in sequence order."""
        with self.engine.connect() as c:
            result = c.execution_options(stream_results=True, yield_per=1000).execute(
                sa.select(t.events).where(t.events.c.robot_id == robot_id)
                .order_by(t.events.c.seq))
            for r in result:
                yield {'event_id': r.event_id, 'seq': r.seq, 'type': r.type,
                       'version': r.version, 'customer': r.customer, 'time': r.time,
                       'store_id': r.store_id, 'data': json.loads(r.data),
                       'received_at': r.received_at}

    def store_events_page(self, store_id: str, after: str, limit: int) -> tuple[list[dict], str]:
        """A store's events stored after the cursor `after` ('' from the start), in commit order:
        (events, the cursor of the next page). ValueError for a cursor this did not give.

        The cursor is a position in commit order, `commit_seq:seq:robot_id`, never a clock: a
        batch that commits after another one that started later is still read. PostgreSQL: a
        page holds only rows of transactions older than every one still in progress
        (`pg_snapshot_xmin`): rows below it can no longer appear, so what was passed is final.
        (A transaction that stays open holds readers back, never makes them skip.) SQLite
        writes one transaction at a time, so every committed row is final."""
        position, seq, robot = parse_cursor(after)
        e = t.events.c
        order = (e.commit_seq, e.seq, e.robot_id)
        query = sa.select(t.events).where(e.store_id == store_id,
                                          sa.tuple_(*order) > sa.tuple_(
                                              sa.literal(position, sa.BigInteger),
                                              sa.literal(seq, sa.BigInteger),
                                              sa.literal(robot, sa.String)))
        if self.postgresql:
            query = query.where(e.commit_seq < sa.text(
                'pg_snapshot_xmin(pg_current_snapshot())::text::bigint'))
        with self._read() as c:
            rows = c.execute(query.order_by(*order).limit(limit)).all()
        events = [{'robot_id': r.robot_id, 'event_id': r.event_id, 'seq': r.seq, 'type': r.type,
                   'version': r.version, 'customer': r.customer, 'time': r.time,
                   'data': json.loads(r.data), 'received_at': r.received_at} for r in rows]
        last = rows[-1] if rows else None
        return events, (f'{last.commit_seq}:{last.seq}:{last.robot_id}' if last else after)

    # --- appointments ----------------------------------------------------------------------
    def add_appointment(self, store_id: str | None, robot_id: str | None, customer: str,
                        when: str, purpose: str, note: str) -> int:
        with self.engine.begin() as c:
            if store_id is None and robot_id is not None:
                store_id = c.execute(sa.select(t.robots.c.store_id)
                                     .where(t.robots.c.robot_id == robot_id)).scalar()
            return c.execute(t.appointments.insert().values(
                store_id=store_id, robot_id=robot_id, customer=customer, time=when,
                purpose=purpose, note=note)).inserted_primary_key[0]

    def appointments(self, robot_id: str) -> list[dict]:
        """The appointments of the robot's store (and any made for the robot itself)."""
        with self.engine.begin() as c:
            store = c.execute(sa.select(t.robots.c.store_id)
                              .where(t.robots.c.robot_id == robot_id)).scalar()
            a = t.appointments.c
            where = a.robot_id == robot_id if store is None else \
                sa.or_(a.store_id == store, a.robot_id == robot_id)
            rows = c.execute(sa.select(a.id, a.customer, a.time, a.purpose, a.note).where(where)
                             .order_by(a.time, a.id)).all()
        return [dict(id=r.id, customer=r.customer, time=r.time, purpose=r.purpose, note=r.note)
                for r in rows]

    def ping(self) -> None:
        with self.engine.connect() as c:
            c.execute(sa.text('SELECT 1'))


# Storage._known on PostgreSQL (ids, seqs, members: JSON arrays), as the driver's SQL. Run with
# psycopg's prepare=False: planned for each batch with the robot at hand and the statistics of
# the moment. Prepared (psycopg prepares a statement from its 5th run), PostgreSQL kept the
# generic plan it made while the events partitions were new and empty: the robot's index
# scanned on robot_id alone, every one of its events filtered by both lists, a cost that grew
# with the robot's history (pg_stat_statements, one thread, 100-event batches: 4.6 ms of
# database per batch at ~1 900 events per robot, 13 ms at ~4 000; planned per batch: 1.9 ms,
# of which 0.7 ms planning, at ~4 000).
_KNOWN = (
    'SELECT false AS gone, event_id, seq, type, version, customer, time, data FROM events '
    'WHERE robot_id = %(r)s AND (event_id = ANY(ARRAY(SELECT jsonb_array_elements_text('
    'CAST(%(ids)s AS jsonb)))) OR seq = ANY(ARRAY(SELECT CAST(jsonb_array_elements_text('
    'CAST(%(seqs)s AS jsonb)) AS bigint)))) '
    'UNION ALL SELECT true, member_id, NULL, NULL, NULL, NULL, NULL, NULL FROM forget_requests '
    'WHERE member_id = ANY(ARRAY(SELECT jsonb_array_elements_text(CAST(%(members)s AS jsonb))))')
_COUNT = (   # the statistics upsert of _IngestStatements.count, as the driver's SQL (PostgreSQL)
    'INSERT INTO ingest_stats (store_id, accepted, duplicate, rejected, last_seen, last_lag_s) '
    'VALUES (%(store)s, %(accepted)s, %(duplicate)s, %(rejected)s, %(now)s, %(lag)s) '
    'ON CONFLICT (store_id) DO UPDATE SET accepted = ingest_stats.accepted + EXCLUDED.accepted, '
    'duplicate = ingest_stats.duplicate + EXCLUDED.duplicate, '
    'rejected = ingest_stats.rejected + EXCLUDED.rejected, last_seen = EXCLUDED.last_seen, '
    'last_lag_s = EXCLUDED.last_lag_s')
# The store's budget (_IngestStatements.take, as the driver's SQL), a CTE of the statement that
# moves a batch's rows: the bucket refilled at `rate` since its last update, capped at `burst`,
# takes `events` when it holds them (or is full: a batch larger than the burst passes then).
_REFILLED = ('CASE WHEN b.tokens + CASE WHEN b.updated_at < %(now)s THEN %(now)s - b.updated_at '
             'ELSE 0.0 END * %(rate)s > %(burst)s THEN %(burst)s ELSE b.tokens + CASE WHEN '
             'b.updated_at < %(now)s THEN %(now)s - b.updated_at ELSE 0.0 END * %(rate)s END')
_TAKE = (f'WITH take AS (UPDATE store_budgets AS b SET tokens = {_REFILLED} - %(events)s, '
         f'updated_at = %(now)s WHERE b.store_id = %(budget_store)s AND ({_REFILLED} >= '
         f'%(events)s OR {_REFILLED} >= %(burst)s) RETURNING b.tokens)')
FORGOTTEN_DATA = '{"forgotten":true}'     # what "forget this member" leaves of an event's data


def _tombstone(row: EventRow) -> EventRow:
    """The event as "forget this member" leaves it: no member id, no data."""
    return EventRow(row.event_id, row.seq, row.type, row.version, '', row.time, FORGOTTEN_DATA)


def parse_cursor(cursor: str) -> tuple[int, int, str]:
    """(commit_seq, seq, robot_id) of a page cursor; '' is the start. ValueError otherwise."""
    if cursor in ('', '0'):
        return (-1, -1, '')
    parts = cursor.split(':', 2)
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() and len(part) <= 19
                                  and int(part) < 2 ** 63 for part in parts[:2]) \
            or len(parts[2]) > 64:
        raise ValueError(f'cursor {cursor[:80]!r} is not one this platform gave '
                         '(commit_seq:seq:robot_id; empty to start)')
    return int(parts[0]), int(parts[1]), parts[2]


def _usual_batch(items: list, rows: list, by_id: dict, by_seq: dict, assignments: list) -> bool:
    """Nothing of the batch stored, every event valid, no id or seq twice, one store in the
    robot's history: each event is accepted."""
    return not by_id and not by_seq and len(assignments) <= 1 and len(rows) == len(items) \
        and len({r.event_id for r in rows}) == len(rows) and len({r.seq for r in rows}) == len(rows)


def _answer_to_known(known: Any, item: EventRow) -> dict:
    """The answer to an event whose id is stored (or earlier in the batch): duplicate when its
    content is the same, else rejected (an idempotency key is used once)."""
    same = (known.type, known.version, known.customer, known.time, known.data) == \
        (item.type, item.version, item.customer, item.time, item.data)
    if same:
        return {'event_id': item.event_id, 'status': 'duplicate'}
    return {'event_id': item.event_id, 'status': 'rejected',
            'reason': 'event_id_reused: this event_id was stored with other content (an '
                      'idempotency key is used once)'}


def _store_at(assignments: list, when: float, since: list[float] | None = None) -> str | None:
    """The store a robot was in at `when` (its first store before that); `since`: the
    assignments' start times, when the caller has them already."""
    if not assignments:
        return None
    if len(assignments) == 1:
        return assignments[0].store_id
    index = bisect.bisect_right(since if since is not None else
                                [a.since for a in assignments], when) - 1
    return assignments[max(0, index)].store_id


def _insert_ignore(insert, postgresql: bool, keys: list[str]):
    if postgresql:
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(insert.table).values(insert.compile().params) \
            .on_conflict_do_nothing(index_elements=keys)
    return insert.prefix_with('OR IGNORE')
