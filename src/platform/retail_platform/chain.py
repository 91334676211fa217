"""The chain's store data and each robot's downlink: product master with store-level price,
stock, zone and promotion; promotions at chain, region or store level; members; versioned
deltas; "forget this member". Pure SQLAlchemy Core over the platform's engine (SQLite or
PostgreSQL), no HTTP.

Versions. Every change of downlinked data appends a row to `changes` (scope `chain`,
`region:R` or `store:S`, kind, key) in the same transaction as the change; its autoincrement
`version` is the chain-wide downlink version. Writers take one lock (PostgreSQL: an advisory
transaction lock; SQLite: its single writer), so versions become visible in order and a reader
never sees version 11 without 10. `delta(robot, since)` answers the current state of every key
changed after `since` in the robot's store's scopes (an upsert, or a removal when it is gone):
state, not operations, so a delta applied twice or after a lost answer is still right. With no
`since`, one older than the pruned change log (`prune_changes`) or newer than the platform's
version, the answer is a full snapshot.

Members (data minimisation). A robot receives only consenting members its store has a reason to
know: an appointment at the store, the store as home store, or an event of the member at the
store within `member_window_s` (the setting `--member-window-days`) when a robot of the store
holds or held her (`robot_members`: an event names whom a robot recognised, and a recognised
member it did not hold it fetched on demand; events naming guessed ids bring no one), plus
members it fetched on demand (`member_on_demand`) within the same window. `robot_members` records every member sent to
a robot and the version of the answer that carried it; a robot asking `since=V` has applied
everything up to V, so a member sent in a lost answer (version > V) is sent again, and one no
longer relevant is sent as a removal.

Forget. `forget_member` removes the member's record, profile (`profiles.forget_profile`),
store-level data (appointments, robot records) and the member id from stored events (the id is
replaced by '' and the data by `{"forgotten": true}`; again at each robot's confirmation, for
events it uploaded in between), records the request and lists as expected every robot that may hold
the member (it was sent the member, or uploaded an event about them). Every robot registered
before the request receives the member id as a tombstone in each downlink answer (delta or
snapshot) until it confirms (`confirm_forget`), so a robot offline for days gets it when it
returns. `forget_status` lists the robots and their confirmations.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import sqlalchemy as sa

from retail_common.catalog import COLUMNS, parse_row
from retail_common.events import member_id_problem
from retail_platform import campaigns
from retail_platform import loop_schema as lt
from retail_platform import profiles
from retail_platform import schema as t

if TYPE_CHECKING:
    from retail_platform.forget_ledger import ForgetLedger

STORE_FIELDS = ('price_cny', 'stock', 'zone', 'promotion', 'promotion_en')
CHANGE_LOCK = 7_210_024          # advisory lock of change-log writers on PostgreSQL
DEFAULT_MEMBER_WINDOW_S = 30 * 86400.0
MAX_HISTORY = 500                # purchases kept per member record
CHUNK = 500


def valid_member_id(value: str) -> bool:
    """The rule for a member id (retail_common.events.MEMBER_ID: 1-128 characters, no /, white space or NUL)."""
    return member_id_problem(value) is None

products = sa.Table(
    'products', t.metadata,
    sa.Column('sku', sa.String(64), primary_key=True),
    sa.Column('fields', sa.Text, nullable=False),          # JSON: the catalog columns, as text
    sa.Column('updated_at', sa.Float, nullable=False))

store_products = sa.Table(
    'store_products', t.metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('sku', sa.String(64), primary_key=True),
    sa.Column('price_cny', sa.Float, nullable=True),
    sa.Column('stock', sa.Integer, nullable=True),
    sa.Column('zone', sa.String(64), nullable=True),
    sa.Column('promotion', sa.String(1000), nullable=True),
    sa.Column('promotion_en', sa.String(1000), nullable=True))

promotions = sa.Table(
    'promotions', t.metadata,
    sa.Column('id', sa.String(64), primary_key=True),
    sa.Column('scope', sa.String(80), nullable=False),
    sa.Column('content', sa.Text, nullable=False),
    sa.Column('updated_at', sa.Float, nullable=False))

members = sa.Table(
    'members', t.metadata,
    sa.Column('member_id', sa.String(128), primary_key=True),
    sa.Column('consent', sa.Boolean, nullable=False),
    sa.Column('home_store', sa.String(64), nullable=True),
    sa.Column('history', sa.Text, nullable=False),
    sa.Column('updated_at', sa.Float, nullable=False))

changes = sa.Table(
    'changes', t.metadata,
    sa.Column('version', sa.BigInteger().with_variant(sa.Integer, 'sqlite'), primary_key=True,
              autoincrement=True),
    sa.Column('scope', sa.String(80), nullable=False),
    sa.Column('kind', sa.String(20), nullable=False),
    sa.Column('key', sa.String(128), nullable=False),
    sa.Column('at', sa.Float, nullable=False),
    sqlite_autoincrement=True)

downlink_meta = sa.Table(
    'downlink_meta', t.metadata,
    sa.Column('key', sa.String(40), primary_key=True),
    sa.Column('value', sa.BigInteger, nullable=False))

robot_members = sa.Table(
    'robot_members', t.metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('member_id', sa.String(128), primary_key=True),
    sa.Column('sent_version', sa.BigInteger, nullable=False),
    sa.Column('dropped_version', sa.BigInteger, nullable=True),
    sa.Column('fetched_at', sa.Float, nullable=True))

forget_requests = sa.Table(
    'forget_requests', t.metadata,
    sa.Column('member_id', sa.String(128), primary_key=True),
    sa.Column('requested_at', sa.Float, nullable=False),
    sa.Column('requested_by', sa.String(200), nullable=False))

forget_robots = sa.Table(
    'forget_robots', t.metadata,
    sa.Column('member_id', sa.String(128), primary_key=True),
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('expected', sa.Boolean, nullable=False),
    sa.Column('confirmed_at', sa.Float, nullable=True),
    sa.Column('detail', sa.String(200), nullable=False, server_default=''))


class _NeedsLock(Exception):
    """An answer needs a version of its own: build it again under the change lock."""



def member_plan(relevant: set[str], held: dict, since: int | None,
                changed: set[str]) -> tuple[list[str], list[str], list[str]]:
    """(members to send, ids the answer drops, ids the robot no longer holds) for a robot that
    applied answers up to `since` (None: a snapshot, which replaces its members whole).
    `held`: member id -> its robot_members row (sent_version, dropped_version)."""
    if since is None:
        return sorted(relevant), [], sorted(m for m in held if m not in relevant)

    def holds(r) -> bool:     # as far as the answers the robot applied go
        return r.sent_version <= since and not (
            r.dropped_version is not None and r.dropped_version <= since)

    send = sorted(m for m in relevant if m not in held or not holds(held[m])
                  or m in changed or held[m].dropped_version is not None)
    drop = sorted(m for m, r in held.items() if m not in relevant
                  and (r.dropped_version is None or r.dropped_version > since))
    return send, drop, drop

class ChainError(ValueError):
    """A request the chain data refuses (one line: why)."""


class NoSuchThing(LookupError):
    """No such store, product, member or robot (one line)."""


def check_product(row: dict[str, Any], where: str) -> dict[str, str]:
    """A master product row as the catalog's text columns; ChainError naming `where` and the
    field when it is not a valid catalog row (retail_common.catalog's rules)."""
    if not isinstance(row, dict):
        raise ChainError(f'{where}: not an object')
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ChainError(f'{where}: unknown field(s) {", ".join(sorted(map(str, unknown))[:5])}')
    text = {}
    for name in COLUMNS:
        value = row.get(name, '')
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value is None:
            raise ChainError(f'{where}: {name} must be a string or a number')
        value = str(value)
        if len(value) > 1000 or '\x00' in value:
            raise ChainError(f'{where}: {name} is longer than 1000 characters or holds NUL')
        text[name] = value
    try:
        parse_row(text)
    except ValueError as exc:
        raise ChainError(f'{where}: {exc}') from None
    if len(text['sku']) > 64:
        raise ChainError(f'{where}: sku is longer than 64 characters')
    return text


@dataclass(frozen=True)
class RobotPlace:
    robot_id: str
    store_id: str
    region_id: str | None
    registered_at: float

    @property
    def scopes(self) -> list[str]:
        return ['chain', *([f'region:{self.region_id}'] if self.region_id else []),
                f'store:{self.store_id}']


class Chain:
    """The chain's store data over the platform engine (see the module docstring)."""

    def __init__(self, engine: sa.Engine, member_window_s: float = DEFAULT_MEMBER_WINDOW_S,
                 ledger: ForgetLedger | None = None) -> None:
        self.engine = engine
        self.ledger = ledger                 # forgets written outside the database too
        self.postgresql = engine.dialect.name == 'postgresql'
        self.member_window_s = member_window_s
        self._forgets_seen: int | None = None      # forget requests the last check counted
        self._ledger_size, self._ledger_ids = -1, 0  # the ledger's size and distinct ids then
        self._full_check_at = 0.0

    # --- change log ----------------------------------------------------------------------
    def _lock(self, c: sa.Connection) -> None:
        if self.postgresql:
            c.execute(sa.text('SELECT pg_advisory_xact_lock(:k)'), {'k': CHANGE_LOCK})

    def _changed(self, c: sa.Connection, scope: str, kind: str, keys: Iterable[str]) -> None:
        now = time.time()
        rows = [dict(scope=scope, kind=kind, key=key, at=now) for key in keys]
        for start in range(0, len(rows), 5000):
            c.execute(changes.insert(), rows[start:start + 5000])

    def version(self, c: sa.Connection | None = None) -> int:
        if c is None:
            with self.engine.connect() as c:
                return self.version(c)
        top = c.execute(sa.select(sa.func.max(changes.c.version))).scalar() or 0
        return max(int(top), self._pruned(c))

    def _pruned(self, c: sa.Connection) -> int:
        return int(c.execute(sa.select(downlink_meta.c.value)
                             .where(downlink_meta.c.key == 'pruned_through')).scalar() or 0)

    def prune_changes(self, older_than_s: float) -> int:
        """Drop change rows older than `older_than_s`; robots behind them get a snapshot. The
        number of rows dropped."""
        with self.engine.begin() as c:
            self._lock(c)
            cutoff = time.time() - older_than_s
            through = c.execute(sa.select(sa.func.max(changes.c.version))
                                .where(changes.c.at < cutoff)).scalar()
            if not through:
                return 0
            # keep at least the newest row, so the version never goes back
            top = c.execute(sa.select(sa.func.max(changes.c.version))).scalar()
            through = min(int(through), int(top) - 1)
            if through <= self._pruned(c):
                return 0
            dropped = c.execute(changes.delete().where(changes.c.version <= through)).rowcount
            c.execute(downlink_meta.delete().where(downlink_meta.c.key == 'pruned_through'))
            c.execute(downlink_meta.insert().values(key='pruned_through', value=through))
            return dropped

    # --- where things are ----------------------------------------------------------------
    def _store_scope(self, c: sa.Connection, store_id: str) -> tuple[str, str | None]:
        row = c.execute(sa.select(t.stores.c.region_id).where(t.stores.c.id == store_id)).first()
        if row is None:
            raise NoSuchThing(f'no store {store_id!r}')
        return store_id, row.region_id

    def place(self, c: sa.Connection, robot_id: str) -> RobotPlace:
        row = c.execute(sa.select(t.robots.c.store_id, t.robots.c.registered_at, t.stores.c.region_id)
                        .select_from(t.robots.join(t.stores, t.stores.c.id == t.robots.c.store_id))
                        .where(t.robots.c.robot_id == robot_id)).first()
        if row is None:
            raise NoSuchThing(f'no robot {robot_id!r}')
        return RobotPlace(robot_id, row.store_id, row.region_id, row.registered_at)

    # --- products ------------------------------------------------------------------------
    def put_products(self, rows: list[dict[str, Any]], remove: list[str] = ()) -> int:
        """Add or replace master products (validated as catalog rows; a sku given twice: the
        last row counts) and remove `remove`; one transaction, one change row per product that
        really changed. The new version."""
        checked = list({p['sku']: p for p in (check_product(row, f'products[{i}]')
                                               for i, row in enumerate(rows))}.values())  # last wins
        now = time.time()
        with self.engine.begin() as c:
            self._lock(c)
            old: dict[str, str] = {}
            skus = [p['sku'] for p in checked]
            for start in range(0, len(skus), CHUNK):
                old.update(c.execute(sa.select(products.c.sku, products.c.fields)
                                     .where(products.c.sku.in_(skus[start:start + CHUNK]))).all())
            changed = []
            for p in checked:
                text = json.dumps(p, ensure_ascii=False, sort_keys=True)
                if old.get(p['sku']) == text:
                    continue
                if p['sku'] in old:
                    c.execute(products.update().where(products.c.sku == p['sku'])
                              .values(fields=text, updated_at=now))
                else:
                    c.execute(products.insert().values(sku=p['sku'], fields=text, updated_at=now))
                changed.append(p['sku'])
            for sku in remove:
                if c.execute(products.delete().where(products.c.sku == sku)).rowcount:
                    c.execute(store_products.delete().where(store_products.c.sku == sku))
                    changed.append(sku)
            self._changed(c, 'chain', 'product', changed)
            return self.version(c)

    def set_store_product(self, store_id: str, sku: str, values: dict[str, Any]) -> int:
        """Store-level price, stock, zone or promotion of a master product (None: the master's)."""
        with self.engine.begin() as c:
            self._lock(c)
            self._store_scope(c, store_id)
            master = c.execute(sa.select(products.c.fields).where(products.c.sku == sku)).scalar()
            if master is None:
                raise NoSuchThing(f'no product {sku!r} in the master')
            merged = {**json.loads(master), **{k: str(v) for k, v in values.items() if v is not None}}
            check_product(merged, f'store {store_id} product {sku}')
            c.execute(store_products.delete().where(store_products.c.store_id == store_id,
                                                    store_products.c.sku == sku))
            if any(values.get(k) is not None for k in STORE_FIELDS):
                c.execute(store_products.insert().values(
                    store_id=store_id, sku=sku, **{k: values.get(k) for k in STORE_FIELDS}))
            self._changed(c, f'store:{store_id}', 'product', [sku])
            return self.version(c)

    def _effective(self, c: sa.Connection, store_id: str,
                   skus: list[str] | None) -> tuple[list[dict], list[str]]:
        """(rows, removed): the store's view of `skus` (None: every product)."""
        query = sa.select(products.c.sku, products.c.fields, *[store_products.c[k] for k in STORE_FIELDS]) \
            .select_from(products.outerjoin(store_products, sa.and_(
                store_products.c.sku == products.c.sku, store_products.c.store_id == store_id)))
        found: list = []
        if skus is None:
            found = c.execute(query.order_by(products.c.sku)).all()
        else:
            for start in range(0, len(skus), CHUNK):
                found += c.execute(query.where(products.c.sku.in_(skus[start:start + CHUNK]))).all()
        rows = []
        for r in found:
            row = json.loads(r.fields)
            for k in STORE_FIELDS:
                value = getattr(r, k)
                if value is not None:
                    row[k] = f'{value:g}' if isinstance(value, float) else str(value)
            rows.append(row)
        removed = [] if skus is None else sorted(set(skus) - {r.sku for r in found})
        return rows, removed

    # --- promotions ----------------------------------------------------------------------
    def scope_of(self, c: sa.Connection, scope: str) -> str:
        """A valid scope (`chain`, `region:R`, `store:S`) or ChainError/NoSuchThing."""
        level, _, name = scope.partition(':')
        if level == 'chain' and not name:
            return scope
        if level == 'region' and name:
            if not c.execute(sa.select(t.regions.c.id).where(t.regions.c.id == name)).first():
                raise NoSuchThing(f'no region {name!r}')
            return scope
        if level == 'store' and name:
            self._store_scope(c, name)
            return scope
        raise ChainError(f'scope {scope!r} must be chain, region:<id> or store:<id>')

    def put_promotion(self, promotion_id: str, scope: str, content: dict) -> int:
        text = json.dumps(content, ensure_ascii=False, sort_keys=True)
        with self.engine.begin() as c:
            self._lock(c)
            self.scope_of(c, scope)
            old = c.execute(sa.select(promotions.c.scope).where(promotions.c.id == promotion_id)).scalar()
            c.execute(promotions.delete().where(promotions.c.id == promotion_id))
            c.execute(promotions.insert().values(id=promotion_id, scope=scope, content=text,
                                                 updated_at=time.time()))
            if old is not None and old != scope:          # robots of the old scope drop it
                self._changed(c, old, 'promotion', [promotion_id])
            self._changed(c, scope, 'promotion', [promotion_id])
            return self.version(c)

    def promotion_scope(self, promotion_id: str) -> str | None:
        with self.engine.connect() as c:
            return c.execute(sa.select(promotions.c.scope).where(promotions.c.id == promotion_id)).scalar()

    def delete_promotion(self, promotion_id: str) -> int:
        with self.engine.begin() as c:
            self._lock(c)
            scope = c.execute(sa.select(promotions.c.scope).where(promotions.c.id == promotion_id)).scalar()
            if scope is None:
                raise NoSuchThing(f'no promotion {promotion_id!r}')
            c.execute(promotions.delete().where(promotions.c.id == promotion_id))
            self._changed(c, scope, 'promotion', [promotion_id])
            return self.version(c)

    def _promotions(self, c: sa.Connection, scopes: list[str],
                    ids: list[str] | None) -> tuple[list[dict], list[str]]:
        query = sa.select(promotions.c.id, promotions.c.scope, promotions.c.content) \
            .where(promotions.c.scope.in_(scopes))
        if ids is not None:
            query = query.where(promotions.c.id.in_(ids))
        found = c.execute(query.order_by(promotions.c.id)).all()
        rows = [{**json.loads(r.content), 'id': r.id, 'scope': r.scope} for r in found]
        removed = [] if ids is None else sorted(set(ids) - {r.id for r in found})
        return rows, removed

    # --- appointments (the platform's table; a change row per new one) --------------------
    def add_appointment(self, store_id: str | None, robot_id: str | None, customer: str,
                        when: str, purpose: str, note: str) -> int:
        """An appointment at a store (or at the store of `robot_id`) and its change row, in one
        transaction; its id."""
        with self.engine.begin() as c:
            self._lock(c)
            if store_id is None and robot_id is not None:
                store_id = c.execute(sa.select(t.robots.c.store_id)
                                     .where(t.robots.c.robot_id == robot_id)).scalar()
            new_id = c.execute(t.appointments.insert().values(
                store_id=store_id, robot_id=robot_id, customer=customer, time=when,
                purpose=purpose, note=note)).inserted_primary_key[0]
            if store_id is not None:
                self._changed(c, f'store:{store_id}', 'appointment', [str(new_id)])
            return int(new_id)

    def _appointments(self, c: sa.Connection, store_id: str,
                      ids: list[str] | None) -> tuple[list[dict], list[str]]:
        a = t.appointments.c
        query = sa.select(a.id, a.customer, a.time, a.purpose, a.note).where(a.store_id == store_id)
        if ids is not None:
            query = query.where(a.id.in_([int(i) for i in ids]))
        found = c.execute(query.order_by(a.time, a.id)).all()
        rows = [dict(id=r.id, customer=r.customer, time=r.time, purpose=r.purpose, note=r.note)
                for r in found]
        removed = [] if ids is None else sorted(set(ids) - {str(r.id) for r in found})
        return rows, removed

    # --- members -------------------------------------------------------------------------
    def put_member(self, member_id: str, consent: bool, home_store: str | None,
                   history: list[dict]) -> int:
        if home_store is not None:
            with self.engine.connect() as c:
                self._store_scope(c, home_store)
        text = json.dumps(history[-MAX_HISTORY:], ensure_ascii=False, sort_keys=True)
        with self.engine.begin() as c:
            self._lock(c)
            if c.execute(sa.select(forget_requests.c.member_id)
                         .where(forget_requests.c.member_id == member_id)).first():
                raise ChainError(f'member {member_id} was forgotten; a new id is needed')
            c.execute(members.delete().where(members.c.member_id == member_id))
            c.execute(members.insert().values(member_id=member_id, consent=consent,
                                              home_store=home_store, history=text,
                                              updated_at=time.time()))
            self._changed(c, 'chain', 'member', [member_id])
            return self.version(c)

    def put_members(self, records: list[tuple[str, bool, str | None, list[dict]]]) -> int:
        """Add or replace many members (member id, consent, home store, purchases) in one
        transaction (an import); ChainError naming the first forgotten id, NoSuchThing for an
        unknown home store. The new version."""
        records = list({r[0]: r for r in records}.values())      # an id given twice: the last
        now = time.time()
        with self.engine.begin() as c:
            self._lock(c)
            for home in sorted({r[2] for r in records if r[2] is not None}):
                self._store_scope(c, home)
            ids = [r[0] for r in records]
            for start in range(0, len(ids), CHUNK):
                gone = c.execute(sa.select(forget_requests.c.member_id).where(
                    forget_requests.c.member_id.in_(ids[start:start + CHUNK]))).first()
                if gone:
                    raise ChainError(f'member {gone.member_id} was forgotten; a new id is needed')
                c.execute(members.delete().where(members.c.member_id.in_(ids[start:start + CHUNK])))
            rows = [dict(member_id=m, consent=consent, home_store=home, updated_at=now,
                         history=json.dumps(history[-MAX_HISTORY:], ensure_ascii=False, sort_keys=True))
                    for m, consent, home, history in records]
            for start in range(0, len(rows), 5000):
                c.execute(members.insert(), rows[start:start + 5000])
            self._changed(c, 'chain', 'member', ids)
            return self.version(c)

    @staticmethod
    def _member_row(r) -> dict:
        return {'member_id': r.member_id, 'consent': bool(r.consent), 'home_store': r.home_store,
                'history': json.loads(r.history)}

    def _relevant(self, c: sa.Connection, place: RobotPlace, now: float) -> set[str]:
        """The consenting members this robot's store has a reason to know now."""
        cutoff = now - self.member_window_s
        # an event names a member as a reason only when a robot of the store holds or held her
        # (sent, or fetched on demand when recognised: paced): events naming guessed ids would
        # otherwise bring any consenting member's record to the store (session 13)
        known_here = sa.select(robot_members.c.member_id).where(robot_members.c.robot_id.in_(
            sa.select(t.robots.c.robot_id).where(t.robots.c.store_id == place.store_id)))
        reasons = sa.union(
            sa.select(t.appointments.c.customer.label('m'))
            .where(t.appointments.c.store_id == place.store_id),
            sa.select(members.c.member_id.label('m')).where(members.c.home_store == place.store_id),
            sa.select(t.events.c.customer.label('m')).where(
                t.events.c.store_id == place.store_id, t.events.c.time >= cutoff,
                t.events.c.customer != '', t.events.c.customer.in_(known_here)),
            sa.select(robot_members.c.member_id.label('m')).where(
                robot_members.c.robot_id == place.robot_id, robot_members.c.fetched_at >= cutoff),
        ).subquery()
        rows = c.execute(sa.select(members.c.member_id).where(
            members.c.consent.is_(True), members.c.member_id.in_(sa.select(reasons.c.m)))).all()
        return {r.member_id for r in rows}

    def member_on_demand(self, robot_id: str, member_id: str) -> dict:
        """A consenting member's record for a robot that recognised them (recorded as held by
        the robot); NoSuchThing when there is no such consenting member."""
        self.refresh_profiles()
        with self.engine.begin() as c:
            if self.postgresql:
                c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:r, 24))'),
                          {'r': robot_id})
            self.place(c, robot_id)
            r = c.execute(sa.select(members).where(members.c.member_id == member_id,
                                                   members.c.consent.is_(True))).first()
            if r is None:
                raise NoSuchThing(f'no consenting member {member_id!r}')
            version = self.version(c)
            c.execute(robot_members.delete().where(robot_members.c.robot_id == robot_id,
                                                   robot_members.c.member_id == member_id))
            # sent_version 0: held from now on, whatever answer the robot applied
            c.execute(robot_members.insert().values(robot_id=robot_id, member_id=member_id,
                                                    sent_version=0, fetched_at=time.time()))
            return {**self._member_row(r), **self._profiles(c, [member_id]).get(member_id, {}),
                    'version': version}

    # --- the downlink --------------------------------------------------------------------
    def delta(self, robot_id: str, since: int | None) -> dict:
        """The robot's store data changed after `since`, or a full snapshot (module docstring).

        Built without the change lock (answers for many robots at once on PostgreSQL): versions
        up to the one read are all committed (writers number them under the lock), and a key
        changed again while the answer is built is sent in its newer state and again next time.
        Only an answer that must take a version of its own (see _member_delta) is built again
        under the lock."""
        self.refresh_profiles()
        try:
            return self._delta(robot_id, since, locked=False)
        except _NeedsLock:
            return self._delta(robot_id, since, locked=True)

    def _delta(self, robot_id: str, since: int | None, locked: bool) -> dict:
        now = time.time()
        with self.engine.begin() as c:
            if locked:
                self._lock(c)
            elif self.postgresql:     # one answer per robot at a time (its robot_members rows)
                c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:r, 24))'),
                          {'r': robot_id})
            place = self.place(c, robot_id)
            version = self.version(c)
            full = since is None or since < self._pruned(c) or since > version
            answer: dict[str, Any] = {'store_id': place.store_id, 'version': version,
                                      'since': None if full else since, 'full': full}
            if full:
                answer['products'], _ = self._effective(c, place.store_id, None)
                answer['promotions'], _ = self._promotions(c, place.scopes, None)
                answer['appointments'], _ = self._appointments(c, place.store_id, None)
                for key in ('products', 'promotions', 'appointments'):
                    answer[f'{key}_removed'] = []
            else:
                keys: dict[str, set[str]] = {'product': set(), 'promotion': set(),
                                             'appointment': set(), 'member': set()}
                for kind, key in c.execute(sa.select(changes.c.kind, changes.c.key).where(
                        changes.c.version > since, changes.c.scope.in_(place.scopes))):
                    keys.setdefault(kind, set()).add(key)
                answer['products'], answer['products_removed'] = self._effective(
                    c, place.store_id, sorted(keys['product']))
                answer['promotions'], answer['promotions_removed'] = self._promotions(
                    c, place.scopes, sorted(keys['promotion']))
                answer['appointments'], answer['appointments_removed'] = self._appointments(
                    c, place.store_id, sorted(keys['appointment']))
            answer['members'], answer['members_removed'], answer['version'] = self._member_delta(
                c, place, None if full else since, version,
                set() if full else keys['member'], now, locked)
            answer['forget'] = self._tombstones(c, place)
            # campaigns (retail_platform.campaigns): a typed section of its own, whole each time
            answer['campaigns'] = campaigns.section(c, place.store_id, place.region_id,
                                                    self._relevant(c, place, now), now)
            return answer

    def campaigns_for(self, robot_id: str) -> dict:
        """The downlink's `campaigns` section for this robot, on its own."""
        now = time.time()
        with self.engine.connect() as c:
            place = self.place(c, robot_id)
            return campaigns.section(c, place.store_id, place.region_id,
                                     self._relevant(c, place, now), now)

    def _member_delta(self, c: sa.Connection, place: RobotPlace, since: int | None, version: int,
                      changed: set[str], now: float, locked: bool) -> tuple[list[dict], list[str], int]:
        """(members to send, member ids to drop, the answer's version). A send or drop that no
        change row caused (a visit made a member relevant, the window let one go) takes a new
        version of its own (scope `robot:R`, seen by no other robot), so an answer lost on the
        way is recognised by its version and sent again."""
        relevant = self._relevant(c, place, now)
        held = {r.member_id: r for r in c.execute(sa.select(robot_members).where(
            robot_members.c.robot_id == place.robot_id))}
        send, drop, gone = member_plan(relevant, held, since, changed)
        if (send or gone) and since is not None and version == since:
            if not locked:
                raise _NeedsLock()
            self._changed(c, f'robot:{place.robot_id}', 'members', ['-'])
            version = self.version(c)
        rows = []
        for start in range(0, len(send), CHUNK):
            rows += [self._member_row(r) for r in c.execute(
                sa.select(members).where(members.c.member_id.in_(send[start:start + CHUNK])))]
        said = self._profiles(c, [r['member_id'] for r in rows])
        rows = [{**r, **said.get(r['member_id'], {})} for r in rows]
        self._note_members_sent(c, place.robot_id, held, send, gone, version)
        return sorted(rows, key=lambda r: r['member_id']), drop, version

    # --- members' profiles (retail_platform.profiles; loop engineer) -------------------------
    @staticmethod
    def _profiles(c: sa.Connection, member_ids: list[str]) -> dict[str, dict]:
        """member id -> {'profile': what she said on earlier visits} for those that have one: the
        member record carries it, so the robots of every store greet and advise her with it."""
        return {m: {'profile': p} for m, p in profiles.kept(c, member_ids).items()}

    def refresh_profiles(self) -> int:
        """Fold members' new statements into their profiles and mark their records changed
        (every reader of profiles on the platform goes through here, so none folds a statement
        without the downlink hearing of it). How many members changed."""
        return profiles.refresh(self.engine, self._profiles_changed)

    def _profiles_changed(self, c: sa.Connection, member_ids: list[str]) -> list[str]:
        """New statements of these members are about to be folded into their profiles (in `c`):
        under the change lock, members forgotten meanwhile are left out, and the others'
        records are marked changed, so robots holding them get them again in the next delta."""
        self._lock(c)
        forgotten = {r.member_id for r in c.execute(sa.select(forget_requests.c.member_id).where(
            forget_requests.c.member_id.in_(member_ids)))}
        kept = [m for m in member_ids if m not in forgotten]
        self._changed(c, 'chain', 'member', kept)
        return kept

    def _note_members_sent(self, c: sa.Connection, robot_id: str, held: dict, send: list[str],
                           gone: list[str], version: int) -> None:
        rm = robot_members.c
        for m in send:
            if m in held:
                c.execute(robot_members.update().where(rm.robot_id == robot_id, rm.member_id == m)
                          .values(sent_version=version, dropped_version=None))
            else:
                c.execute(robot_members.insert().values(robot_id=robot_id, member_id=m,
                                                        sent_version=version))
        for m in gone:
            c.execute(robot_members.update().where(rm.robot_id == robot_id, rm.member_id == m,
                                                   rm.dropped_version.is_(None))
                      .values(dropped_version=version))

    def _tombstones(self, c: sa.Connection, place: RobotPlace) -> list[str]:
        confirmed = sa.select(forget_robots.c.member_id).where(
            forget_robots.c.robot_id == place.robot_id, forget_robots.c.confirmed_at.is_not(None))
        return [r.member_id for r in c.execute(
            sa.select(forget_requests.c.member_id).where(
                forget_requests.c.requested_at >= place.registered_at,
                forget_requests.c.member_id.not_in(confirmed)).order_by(forget_requests.c.member_id))]

    # --- forget --------------------------------------------------------------------------
    def member_seen(self, member_id: str) -> bool:
        """Whether the platform has ever seen the member: a member record, a robot that was sent
        it, a forget request, an appointment, a till receipt, a profile or a stored event."""
        probes = [
            sa.select(members.c.member_id).where(members.c.member_id == member_id),
            sa.select(robot_members.c.member_id).where(robot_members.c.member_id == member_id),
            sa.select(forget_requests.c.member_id).where(forget_requests.c.member_id == member_id),
            sa.select(t.appointments.c.customer).where(t.appointments.c.customer == member_id),
            sa.select(lt.receipts.c.customer).where(lt.receipts.c.customer == member_id),
            sa.select(lt.member_profiles.c.customer)
            .where(lt.member_profiles.c.customer == member_id),
            sa.select(t.events.c.customer).where(t.events.c.customer == member_id),
        ]
        with self.engine.connect() as c:
            return any(c.execute(probe.limit(1)).first() for probe in probes)

    def forget_member(self, member_id: str, requested_by: str) -> dict:
        """Remove the member's data on the platform and send the tombstone (idempotent). With a
        ledger, the request is in it (durable) before the database commits it."""
        now = time.time()
        if self.ledger is not None:
            self.ledger.append(member_id, now, requested_by)
        return self._forget(member_id, requested_by, now)

    def reapply_ledger(self) -> tuple[list[str], list[str]]:
        """Forget again every member the ledger holds and the database does not list as forgotten
        (a database restored from a backup made before the request): (those ids, the ledger's
        skipped lines)."""
        if self.ledger is None:
            return [], []
        read = self.ledger.read()
        with self.engine.connect() as c:
            listed = {r.member_id for r in c.execute(sa.select(forget_requests.c.member_id))}
        again = sorted(set(read.entries) - listed)
        for member_id in again:
            entry = read.entries[member_id]
            self._forget(member_id, f'forget ledger, after a restore (asked by {entry.requested_by} '
                                    f'at {entry.requested_at:.0f})', time.time())
        return again, read.problems

    LEDGER_FULL_CHECK_S = 3600.0

    def watch_restores(self, now: float | None = None) -> None:
        """Start `check_restored`'s watch from what the database lists now (just reapplied)."""
        self._forgets_seen = self._count_forgets()
        self._full_check_at = time.time() if now is None else now

    def _count_forgets(self) -> int:
        with self.engine.connect() as c:
            return c.execute(sa.select(sa.func.count()).select_from(forget_requests)).scalar_one()

    def check_restored(self, now: float | None = None) -> list[str]:
        """The serve processes' periodic check (a database restored while the platform runs):
        when the database lists fewer forget requests than at the last check or than the ledger
        holds ids (a restore took some back), or once an hour, the ledger is carried out again
        (`reapply_ledger`); else one count (the ledger is re-read only when it grew). The ids
        forgotten again."""
        if self.ledger is None:
            return []
        now = time.time() if now is None else now
        count = self._count_forgets()
        fewer = self._forgets_seen is not None and count < self._forgets_seen
        self._forgets_seen = count
        size = self.ledger.size()
        if size != self._ledger_size:     # every id of the ledger must be listed: count them
            self._ledger_size, self._ledger_ids = size, len(self.ledger.read().entries)
        if not fewer and count >= self._ledger_ids \
                and now - self._full_check_at < self.LEDGER_FULL_CHECK_S:
            return []
        self._full_check_at = now
        again, _ = self.reapply_ledger()
        if again:
            self._forgets_seen = self._count_forgets()
        return again

    def _forget(self, member_id: str, requested_by: str, now: float) -> dict:
        with self.engine.begin() as c:
            self._lock(c)
            if not c.execute(sa.select(forget_requests.c.member_id)
                             .where(forget_requests.c.member_id == member_id)).first():
                c.execute(forget_requests.insert().values(member_id=member_id, requested_at=now,
                                                          requested_by=requested_by[:200]))
            holders = {r.robot_id for r in c.execute(sa.select(robot_members.c.robot_id)
                                                     .where(robot_members.c.member_id == member_id))}
            holders |= {r.robot_id for r in c.execute(
                sa.select(t.events.c.robot_id).where(t.events.c.customer == member_id).distinct())}
            known = {r.robot_id for r in c.execute(sa.select(forget_robots.c.robot_id)
                                                   .where(forget_robots.c.member_id == member_id))}
            for robot_id in sorted(holders - known):
                c.execute(forget_robots.insert().values(member_id=member_id, robot_id=robot_id,
                                                        expected=True, detail=''))
            c.execute(forget_robots.update().where(forget_robots.c.member_id == member_id,
                                                   forget_robots.c.robot_id.in_(holders))
                      .values(expected=True))
            c.execute(members.delete().where(members.c.member_id == member_id))
            for a in c.execute(sa.select(t.appointments.c.id, t.appointments.c.store_id)
                               .where(t.appointments.c.customer == member_id)).all():
                if a.store_id is not None:       # its store's robots drop it
                    self._changed(c, f'store:{a.store_id}', 'appointment', [str(a.id)])
            c.execute(t.appointments.delete().where(t.appointments.c.customer == member_id))
            c.execute(robot_members.delete().where(robot_members.c.member_id == member_id))
            self._scrub(c, member_id)
            self._changed(c, 'chain', 'member', [member_id])
        return self.forget_status(member_id)

    @staticmethod
    def _scrub(c: sa.Connection, member_id: str) -> None:
        """The member's profile and the statements it was built from (profiles.forget_profile),
        and the member id in every other stored event and in her till receipts."""
        profiles.forget_profile(c, member_id)
        c.execute(t.events.update().where(t.events.c.customer == member_id)
                  .values(customer='', data='{"forgotten":true}'))
        # her till receipts keep the purchase, not her id (purchases.store_receipts drops it too)
        c.execute(lt.receipts.update().where(lt.receipts.c.customer == member_id)
                  .values(customer=''))

    def confirm_forget(self, robot_id: str, member_id: str, detail: str) -> None:
        """The robot erased the member. Events about them it uploaded after the request (sent
        before its outbox was cleared) are scrubbed now, in the same transaction."""
        with self.engine.begin() as c:
            if not c.execute(sa.select(forget_requests.c.member_id)
                             .where(forget_requests.c.member_id == member_id)).first():
                raise NoSuchThing(f'no forget request for member {member_id!r}')
            self._scrub(c, member_id)
            row = c.execute(sa.select(forget_robots.c.confirmed_at).where(
                forget_robots.c.member_id == member_id, forget_robots.c.robot_id == robot_id)).first()
            if row is None:
                c.execute(forget_robots.insert().values(member_id=member_id, robot_id=robot_id,
                                                        expected=False, confirmed_at=time.time(),
                                                        detail=detail[:200]))
            elif row.confirmed_at is None:
                c.execute(forget_robots.update().where(forget_robots.c.member_id == member_id,
                                                       forget_robots.c.robot_id == robot_id)
                          .values(confirmed_at=time.time(), detail=detail[:200]))

    def forget_status(self, member_id: str) -> dict:
        with self.engine.connect() as c:
            request = c.execute(sa.select(forget_requests).where(
                forget_requests.c.member_id == member_id)).first()
            if request is None:
                raise NoSuchThing(f'no forget request for member {member_id!r}')
            robots = [dict(robot_id=r.robot_id, expected=bool(r.expected), confirmed=r.confirmed_at is not None,
                           confirmed_at=r.confirmed_at, detail=r.detail)
                      for r in c.execute(sa.select(forget_robots).where(
                          forget_robots.c.member_id == member_id).order_by(forget_robots.c.robot_id))]
        pending = [r['robot_id'] for r in robots if r['expected'] and not r['confirmed']]
        return {'member_id': member_id, 'requested_at': request.requested_at,
                'requested_by': request.requested_by, 'robots': robots, 'pending': pending,
                'complete': not pending}
