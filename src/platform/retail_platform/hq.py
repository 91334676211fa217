"""What the HQ and store-manager pages read: the funnel's HQ summaries aggregated in SQL.

`funnel.refresh` writes, in the transaction that writes a store-day's `funnel_daily` row, its
counts as columns (`hq_store_days`), its campaigns' counts (`hq_campaign_days`) and each robot's
newest event seen (`hq_robot_last`) — migration 0008_hq. The numbers are the funnel's: counts
summed, rates recomputed from the sums by `funnel.rates` (null when nothing to divide by), exactly
as `funnel.total` does over the same store-days.

A page over 1,000 stores x 30 days reads on one connection (`reading`) a handful of
statements whose answers are a page long: the funnel's figures are one statement (`figures`:
the range's store-days grouped by store once, from which the database ranks and cuts the page
with LIMIT/OFFSET, counts the stores and sums the chain's total and the regions; grouped by day
once for the trend), the silent robots and the fleet table are counted, sorted and paged by the
database; which stores a page covers (`Scope`) is a sub-select of the stores table, never a list
of ids sent back and forth. The
export reads the store-days of the range in one query, a batch of rows at a time, as columns
(rates computed per column, `rate_column`).
"""
from __future__ import annotations

import time
from datetime import date, timedelta
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import sqlalchemy as sa

from retail_platform import funnel
from retail_platform import loop_schema as lt
from retail_platform import schema as t

EXPORT_FIRST = 1000     # store-days in the export's first batch (its first bytes wait for these)
EXPORT_BATCH = 5000     # store-days per batch of the export after it (doubling up to this)
SILENT_NAMES = 10       # silent stores named in the fleet's banner (the rest counted)
MAX_ALIVE = 20_000      # robots kept out of "silent" by a held or refused heartbeat, at most


STAGES = ('appeared', 'engaged', 'need_captured', 'recommended', 'guided', 'purchased')


@dataclass(frozen=True)
class Scope:
    """The stores a page covers: every store, a region's, listed ones (a store manager's), or
    a region's among listed ones."""
    region: str | None = None
    stores: tuple[str, ...] | None = None

    def where(self, query, column):
        """`query` limited to rows whose `column` is one of the scope's stores (a sub-select of
        the stores table; every store: no condition, the range's rows are all of them)."""
        if self.region is None and self.stores is None:
            return query
        s = t.stores.c
        ids = sa.select(s.id)
        if self.region is not None:
            ids = ids.where(s.region_id == self.region)
        if self.stores is not None:
            ids = ids.where(s.id.in_(self.stores))
        return query.where(column.in_(ids))


def _in_range(query, first: str, last: str):
    return query.where(lt.hq_store_days.c.day >= first, lt.hq_store_days.c.day <= last)


def _sums(names) -> list:
    h = lt.hq_store_days.c
    return [sa.func.count().label('store_days'),
            *[sa.func.sum(getattr(h, k)).label(k) for k in names]]


def _finish(counts: dict[str, Any], store_days: int,
            campaigns: dict[str, dict[str, Any]] | None = None) -> dict:
    """The shape of `funnel.total`: counts, rates from them, the campaigns' uptake."""
    counts = {k: (counts.get(k) or 0) for k in funnel.COUNTS}
    counts = {k: (float(v) if k == 'attributed_revenue_cny' else int(v)) for k, v in counts.items()}
    counts['attributed_revenue_cny'] = round(counts['attributed_revenue_cny'], 2)
    by_campaign = {}
    for cid, acc in sorted((campaigns or {}).items()):
        acc = {k: int(acc.get(k) or 0) for k in ('offers', 'accepted', 'purchases')}
        acc['uptake'] = round(acc['accepted'] / acc['offers'], 4) if acc['offers'] else None
        acc['conversion'] = round(acc['purchases'] / acc['offers'], 4) if acc['offers'] else None
        by_campaign[cid] = acc
    return {'definitions': funnel.DEFINITIONS, 'store_days': store_days, **counts,
            **funnel.rates(counts), 'campaigns': by_campaign}


def stores_in(c: sa.Connection, scope: Scope) -> list[dict]:
    """The scope's stores (id, name, region_id) by id."""
    s = t.stores.c
    return [{'id': r.id, 'name': r.name, 'region_id': r.region_id} for r in c.execute(
        scope.where(sa.select(s.id, s.name, s.region_id), s.id).order_by(s.id))]


RANKED = lt.MONTH_COUNTS    # the ranking table's counts and its rates' inputs (the stages first)


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One connection for every read of a page: PostgreSQL in autocommit (no BEGIN / ROLLBACK
    round trips; each statement its own snapshot), SQLite in a deferred transaction (one WAL
    snapshot, no write lock: `database.create_engine`'s `read_only` option)."""
    with engine.connect() as c:
        if engine.dialect.name == 'postgresql':
            c = c.execution_options(isolation_level='AUTOCOMMIT')
        else:
            c = c.execution_options(read_only=True)
        yield c


@dataclass(frozen=True)
class Figures:
    """What the overview shows of the funnel, read by one statement (`figures`)."""
    stores: int                                  # stores in the scope
    ranked: list[tuple[dict, dict]]              # the ranking's page: (store, its total)
    total: dict                                  # the scope's total (`STAGES`)
    regions: dict[str, dict]                     # per region with store-days (`STAGES`)
    days: list[dict]                             # per day: engaged, purchased (the trend)


def month_parts(first: str, last: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The calendar months (YYYY-MM) wholly inside the days first..last, and the day ranges of
    the rest (at most two: the range's first and last partial months)."""
    d0, d1 = date.fromisoformat(first), date.fromisoformat(last)
    months: list[str] = []
    ranges: list[tuple[str, str]] = []
    start = date(d0.year, d0.month, 1)
    while start <= d1:
        try:
            following: date | None = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        except ValueError:                                # December of the year 9999
            following = None
        end = following - timedelta(days=1) if following else date.max
        lo, hi = max(start, d0), min(end, d1)
        if (lo, hi) == (start, end):
            months.append(start.isoformat()[:7])
        else:
            ranges.append((lo.isoformat(), hi.isoformat()))
        if following is None:
            break
        start = following
    return months, ranges


def _store_sums(scope: Scope, first: str, last: str):
    """Per store: its store-days in first..last and `RANKED` summed, from the month summaries
    (`hq_store_months`) for the months wholly inside the range and from the store-days for the
    rest (a month of 1,000 stores: 1,000 rows, not 30,000)."""
    h, m = lt.hq_store_days.c, lt.hq_store_months.c
    months, ranges = month_parts(first, last)
    parts = [sa.select(m.store_id.label('store_id'), m.store_days.label('store_days'),
                       *[getattr(m, k).label(k) for k in RANKED]).where(m.month.in_(months))
             ] if months else []
    parts += [sa.select(h.store_id.label('store_id'), sa.literal(1).label('store_days'),
                        *[getattr(h, k).label(k) for k in RANKED])
              .where(h.day >= lo, h.day <= hi) for lo, hi in ranges]
    rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery('in_range')
    r = rows.c
    return scope.where(sa.select(r.store_id, sa.func.sum(r.store_days).label('store_days'),
                                 *[sa.func.sum(r[k]).label(k) for k in RANKED]),
                       r.store_id).group_by(r.store_id).cte('per_store')


def figures(c: sa.Connection, scope: Scope, first: str, last: str, offset: int,
            limit: int) -> Figures:
    """The overview's figures in one statement (one round trip; the range's store-days grouped
    by store once, a common table expression the ranking, the total and the regions read, and
    grouped by day once for the trend):

    * the ranking's page: the stores ranked by conversion over the range (the best first; a
      store without a conversion — nothing recommended — after every store with one; ties by
      purchases, then by store id: a stable order), sorted and cut (OFFSET/LIMIT) by the
      database, each with its total of `RANKED` (as `funnel.total` of its store-days; a store
      without rollups the empty total; the other counts 0);
    * how many stores the scope has; the scope's `STAGES` summed (the other counts 0);
    * per region with store-days in the range (stores without a region left out): its stores'
      `STAGES` summed, with their rates;
    * per day: engaged and purchased summed over the stores (the trend)."""
    h, s = lt.hq_store_days.c, t.stores.c
    per_store = _store_sums(scope, first, last)
    p = per_store.c
    recommended = sa.func.coalesce(p.recommended, 0)
    conversion = sa.case((recommended > 0, sa.cast(p.purchased, sa.Float)
                          / sa.cast(recommended, sa.Float)), else_=None)
    text, number = sa.String(), sa.Float()

    def row(kind: str, key, name, region, store_days, counts, pos=None):
        return [sa.literal(kind, text).label('kind'), sa.cast(key, text).label('key'),
                sa.cast(name, text).label('name'), sa.cast(region, text).label('region'),
                sa.cast(pos, number).label('pos'), sa.cast(store_days, number).label('store_days'),
                *[sa.cast(counts.get(k), number).label(k) for k in RANKED]]

    order = (sa.case((recommended > 0, 0), else_=1), conversion.desc(),
             sa.func.coalesce(p.purchased, 0).desc(), s.id)
    page = (scope.where(sa.select(*row('store', s.id, s.name, s.region_id, p.store_days,
                                       {k: p[k] for k in RANKED},
                                       sa.func.row_number().over(order_by=order))), s.id)
            .select_from(t.stores.outerjoin(per_store, p.store_id == s.id))
            .order_by(*order).offset(offset).limit(limit).subquery())
    counted = scope.where(sa.select(*row('count', None, None, None, sa.func.count(), {}))
                          .select_from(t.stores), s.id)
    total = sa.select(*row('total', None, None, None, sa.func.sum(p.store_days),
                           {k: sa.func.sum(p[k]) for k in STAGES})).select_from(per_store)
    regions = scope.where(
        sa.select(*row('region', s.region_id, None, None, sa.func.sum(p.store_days),
                       {k: sa.func.sum(p[k]) for k in STAGES}))
        .select_from(per_store.join(t.stores, s.id == p.store_id)), s.id) \
        .where(s.region_id.is_not(None), s.region_id != '').group_by(s.region_id)
    days = scope.where(_in_range(sa.select(*row('day', h.day, None, None, sa.func.count(), {
        'engaged': sa.func.sum(h.engaged), 'purchased': sa.func.sum(h.purchased)})), first,
        last), h.store_id).group_by(h.day)
    statement = sa.union_all(sa.select(*page.c), counted, total, regions, days)
    ranked: list[tuple[float, dict, dict]] = []
    out: dict[str, Any] = {'stores': 0, 'total': _finish({}, 0), 'regions': {}, 'days': []}
    for r in c.execute(statement):
        m = r._mapping
        if r.kind == 'store':
            ranked.append((r.pos, {'id': r.key, 'name': r.name, 'region_id': r.region},
                           _finish(m, int(r.store_days or 0))))
        elif r.kind == 'count':
            out['stores'] = int(r.store_days)
        elif r.kind == 'total':
            out['total'] = _finish(m, int(r.store_days or 0))
        elif r.kind == 'region':
            out['regions'][r.key] = _finish(m, int(r.store_days))
        else:
            out['days'].append({'day': r.key, 'engaged': int(r.engaged or 0),
                                'purchased': int(r.purchased or 0)})
    out['days'].sort(key=lambda d: d['day'])
    return Figures(ranked=[(store, tot) for _, store, tot in sorted(ranked, key=lambda x: x[0])],
                   **out)


def campaign_totals(c: sa.Connection, scope: Scope, first: str, last: str) -> dict[str, dict]:
    """Per campaign: offers, accepted, purchases summed over the stores' days in the range."""
    h = lt.hq_campaign_days.c
    query = scope.where(sa.select(h.campaign_id, sa.func.sum(h.offers), sa.func.sum(h.accepted),
                                  sa.func.sum(h.purchases))
                        .where(h.day >= first, h.day <= last), h.store_id)
    return {cid: {'offers': int(offers or 0), 'accepted': int(accepted or 0),
                  'purchases': int(purchases or 0)}
            for cid, offers, accepted, purchases in c.execute(query.group_by(h.campaign_id))}


# --- the export ---------------------------------------------------------------------------------
EXPORT_COLUMNS = ['store_id', 'day', 'definitions', *funnel.COUNTS]


def rate_column(numerators: Sequence[Any] | Any, denominators: Sequence[Any] | Any
                ) -> list[float | None]:
    """`funnel.rates` of one rate for a column of store-days at once: round(n / d, 4), None when
    d is 0. numpy divides and rounds the column; where the scaled quotient is within 1e-6 of a
    half (where scaling by 10^4 may round the other way than Python's correctly rounded
    `round`), Python's `round` decides, so every value is the one `funnel.rates` gives."""
    import numpy as np
    n = np.asarray(numerators, dtype=np.float64)
    d = np.asarray(denominators, dtype=np.float64)
    defined = d != 0
    with np.errstate(divide='ignore', invalid='ignore'):
        quotient = np.where(defined, n / np.where(defined, d, 1.0), 0.0)
    scaled = quotient * 10000.0
    out: list[float | None] = (np.rint(scaled) / 10000.0).tolist()
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    for i in np.flatnonzero(near_half & defined).tolist():
        out[i] = round(float(n[i]) / float(d[i]), 4)
    for i in np.flatnonzero(~defined).tolist():
        out[i] = None
    return out


def _columns(rows: Sequence[Sequence[Any]]) -> dict[str, list]:
    import numpy as np
    columns = dict(zip(EXPORT_COLUMNS, (list(col) for col in zip(*rows)))) if rows else \
        {c: [] for c in EXPORT_COLUMNS}
    # the funnel's JSON has 0 (not 0.0) for no revenue: the CSV says "0" as the API's does
    columns['attributed_revenue_cny'] = [v or 0 for v in columns['attributed_revenue_cny']]
    arrays = {k: np.asarray(columns[k], dtype=np.float64)
              for k in {c for pair in funnel.RATES.values() for c in pair}}
    for name, (num, den) in funnel.RATES.items():
        columns[name] = rate_column(arrays[num], arrays[den])
    return columns


def export_sizes(first: int | None = None, batch: int | None = None) -> Iterator[int]:
    """How many store-days each batch of the export holds: a small first batch (the first bytes
    of a download wait for it only), then doubling up to `batch`."""
    size, most = first or EXPORT_FIRST, batch or EXPORT_BATCH
    while True:
        yield min(size, most)
        size *= 2


def export_batches(engine: sa.Engine, scope: Scope, first: str, last: str,
                   batch: int | None = None, first_batch: int | None = None
                   ) -> Iterator[dict[str, list]]:
    """The store-days of the range (funnel_export's columns, rates from the counts as
    `funnel.compute_store_day` computes them), ordered by store and day, read by one query
    (PostgreSQL: a server-side cursor, fetched a batch at a time) and handed out as columns,
    `export_sizes` rows at a time."""
    h = lt.hq_store_days.c
    query = scope.where(_in_range(sa.select(*[getattr(h, c) for c in EXPORT_COLUMNS]), first,
                                  last), h.store_id).order_by(h.store_id, h.day)
    sizes = export_sizes(first_batch, batch)
    with engine.connect() as c:
        result = c.execution_options(stream_results=True,
                                     max_row_buffer=batch or EXPORT_BATCH).execute(query)
        for size in sizes:
            part = result.fetchmany(size)
            if not part:
                break
            yield _columns(part)
            if len(part) < size:
                break


# --- silent robots ------------------------------------------------------------------------------
def silent_robots(c: sa.Connection, scope: Scope, minutes: int, offset: int = 0,
                  limit: int | None = None, now: float | None = None) -> tuple[int, list[dict]]:
    """How many robots of these stores had no event and no heartbeat in the last `minutes`, and a
    page of them ordered by robot id (each with its newest event time from the rollups, `hq_robot_last`,
    None when they saw none). Heard or not is decided on the raw events of the window at the
    robot's store (by the (store_id, time) index: one short probe per robot). One statement
    (the count a window over the page's rows); a page past the end counts them again."""
    now = time.time() if now is None else now
    r, e, last = t.robots.c, t.events.c, lt.hq_robot_last.c
    h = t.fleet_heartbeats.c
    # heard: an event in the window, or a heartbeat (a robot with no customer to talk to is not
    # silent; the fleet table beside this list says so too)
    heard = sa.or_(sa.exists().where(e.store_id == r.store_id, e.time > now - minutes * 60,
                                     e.robot_id == r.robot_id),
                   sa.exists().where(h.robot_id == r.robot_id, h.received_at > now - minutes * 60))
    where = (r.store_id.is_not(None), ~heard)
    query = (scope.where(sa.select(r.robot_id, r.store_id, last.last_event,
                                   sa.func.count().over().label('silent')), r.store_id)
             .select_from(t.robots.outerjoin(lt.hq_robot_last, last.robot_id == r.robot_id))
             .where(*where).order_by(r.robot_id, r.store_id).offset(offset).limit(limit))
    rows = c.execute(query).all()
    if rows:
        return int(rows[0].silent), [{'robot_id': x.robot_id, 'store_id': x.store_id,
                                      'last_event': x.last_event} for x in rows]
    counted = scope.where(sa.select(sa.func.count()).select_from(t.robots), r.store_id)
    return (int(c.execute(counted.where(*where)).scalar() or 0) if offset else 0), []


# --- the fleet per store ------------------------------------------------------------------------
def fleet_stores(c: sa.Connection, scope: Scope, missed: float, offset: int = 0,
                 limit: int | None = None, now: float | None = None,
                 alive: Sequence[str] = ()) -> tuple[int, int, list[str], list[dict]]:
    """The fleet table of the overview, paged by the database: per store with robots that sent
    a heartbeat (robots without a store under ''), how many robots are ok / degraded / silent
    (`fleet.Fleet.stores`'s numbers: silent when no heartbeat came for `missed` x the robot's
    own period, judged at `now`; never the robots in `alive`, whose heartbeats the platform
    holds or refused: fleet.Fleet.judgement); silent stores (every robot silent) first, then by silent
    robots (most first), then by store id. Returns (stores in the table, silent stores, the
    names of the first SILENT_NAMES silent stores, the page's rows with the store's name)."""
    now = time.time() if now is None else now
    f, s = t.fleet_heartbeats.c, t.stores.c
    store = sa.func.coalesce(f.store_id, '')
    silent = now - f.received_at > missed * f.period_s
    if alive:
        silent = sa.and_(silent, f.robot_id.not_in(list(alive)[:MAX_ALIVE]))
    state = sa.case((silent, 'silent'), else_=f.state)
    per_store = scope.where(sa.select(
        store.label('store_id'), sa.func.count().label('robots'),
        *[sa.func.sum(sa.case((state == k, 1), else_=0)).label(k) for k in ('ok', 'degraded',
                                                                            'silent')]),
        f.store_id).group_by(store).subquery()
    p = per_store.c
    silent_store = sa.case((p.silent == p.robots, 0), else_=1)
    name = sa.func.coalesce(s.name, p.store_id)
    rows = c.execute(
        sa.select(p.store_id, name.label('name'), p.robots, p.ok, p.degraded, p.silent,
                  sa.func.count().over().label('stores'),
                  sa.func.sum(1 - silent_store).over().label('silent_stores'))
        .select_from(per_store.outerjoin(t.stores, s.id == p.store_id))
        .order_by(silent_store, p.silent.desc(), p.store_id).offset(offset).limit(limit)).all()
    named = c.execute(sa.select(name).select_from(per_store.outerjoin(t.stores, s.id == p.store_id))
                      .where(p.silent == p.robots).order_by(p.silent.desc(), p.store_id)
                      .limit(SILENT_NAMES)).scalars().all() if rows and rows[0].silent_stores else []
    if not rows:
        counted = c.execute(sa.select(sa.func.count(), sa.func.sum(1 - silent_store))
                            .select_from(per_store)).one() if offset else (0, 0)
        return int(counted[0] or 0), int(counted[1] or 0), [], []
    return (int(rows[0].stores), int(rows[0].silent_stores), list(named),
            [{'store_id': x.store_id, 'name': x.name, 'robots': int(x.robots), 'ok': int(x.ok),
              'degraded': int(x.degraded), 'silent': int(x.silent),
              'silent_store': x.silent == x.robots} for x in rows])
