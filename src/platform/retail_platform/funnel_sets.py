"""The funnel of many store-days at once, set-based (docs/metrics.md, `funnel.DEFINITIONS`).

`funnel.compute_store_day` is the definition: a pure function of one store-day's rows. This
module gives the same numbers for a whole set of dirty store-days with a few SQL statements
over all of them at once (SQLite and PostgreSQL), instead of reading and walking each store-day's
events in Python:

1. the store-days and the 7 days after each (their attribution windows) go into a temporary
   table; one grouped join per source (events, receipts) gives each span day's counts and newest
   arrival, from which every dirty store-day's fingerprint (`funnel.fingerprint`'s three
   aggregates) is summed in Python; a store-day whose fingerprint and definitions version are
   those of its stored rollup is left alone (as `funnel.refresh_store` does);
2. per robot and store-day, one grouped statement over the events: events, newest event,
   distinct tracks appeared, tours, staff calls, active minutes in opening hours;
3. the conversations, one statement with window functions over the conversation events
   (docs/metrics.md, Conventions). `funnel._conversations` is a state machine, but its only
   decision that depends on the past — does this greeting start a new conversation — depends
   only on the events since the previous greeting or conversation start (proved in
   `_CONVERSATIONS`' comment), so it is a window over those runs, not a recursion;
4. last-touch attribution: the receipts of each day's window joined to its conversations by
   member (an equality join) or by screen code, the receipt's lines checked against the
   conversation's products, the latest conversation kept (ROW_NUMBER), a receipt a later day's
   touch took left out (a touch table of the span, indexed by store, key and time);
5. VIP appointments and campaigns (rare events) read as rows and counted by the pure
   functions of `funnel` on the receipts of the members concerned.

The metrics of each store-day are assembled in Python from those rows in the shape
`compute_store_day` returns and written per store (one transaction a store: the same
advisory locks, `funnel_daily` and HQ summaries as `funnel.refresh_store`). The statements run
over at most CHUNK store-days at a time (bounded temporary tables); a month of 1,000 stores is
19 chunks. Payloads are the typed contracts of retail_common.events (the API refuses others):
the statements read their fields as those contracts declare them.
"""
from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import sqlalchemy as sa

from retail_platform import funnel
from retail_platform import loop_schema as lt
from retail_platform import schema as t

CHUNK = 2_000           # dirty store-days per set-based pass (bounded temporary tables)
WINDOW_S = funnel.ATTRIBUTION_DAYS * 86400.0
WORK_MEM = '64MB'       # PostgreSQL: per sort of the set-based statements (SET LOCAL)
STATEMENT_TIMEOUT = '30min'     # PostgreSQL: each statement of a pass (SET LOCAL)


@dataclass(frozen=True)
class _Dialect:
    """The few pieces of SQL the two engines spell differently."""
    postgresql: bool

    def json(self, column: str) -> str:
        return f'CAST({column} AS jsonb)' if self.postgresql else column

    def get(self, doc: str, path: str) -> str:
        """A field as text (SQLite: as its SQL value)."""
        if self.postgresql:
            return f"({doc} #>> '{{{path.replace('.', ',')}}}')"
        return f"json_extract({doc}, '$.{path}')"

    def number(self, doc: str, path: str) -> str:
        got = self.get(doc, path)
        return f'CAST({got} AS double precision)' if self.postgresql else got

    def nonempty(self, doc: str, path: str) -> str:
        """Python's `value not in (None, '', [])` for a field."""
        if self.postgresql:
            node = f"({doc} #> '{{{path.replace('.', ',')}}}')"
            kind = f'jsonb_typeof({node})'
            return (f"({kind} IS NOT NULL AND {kind} <> 'null' AND NOT ({kind} = 'string' AND "
                    f"{self.get(doc, path)} = '') AND NOT ({kind} = 'array' AND "
                    f'jsonb_array_length({node}) = 0))')
        kind = f"json_type({doc}, '$.{path}')"
        return (f"({kind} IS NOT NULL AND {kind} <> 'null' AND NOT ({kind} = 'text' AND "
                f"{self.get(doc, path)} = '') AND NOT ({kind} = 'array' AND "
                f"json_array_length({doc}, '$.{path}') = 0))")

    def elements(self, doc: str, path: str, alias: str) -> str:
        """A FROM item: the elements of an array field, `alias.value` each (text for strings)."""
        if self.postgresql:
            return f"jsonb_array_elements({doc} -> '{path}') AS {alias}(value)"
        return f"json_each({doc}, '$.{path}') AS {alias}"

    def texts(self, doc: str, path: str, alias: str) -> str:
        if self.postgresql:
            return f"jsonb_array_elements_text({doc} -> '{path}') AS {alias}(value)"
        return f"json_each({doc}, '$.{path}') AS {alias}"

    def field(self, element: str, name: str) -> str:
        return f"({element} ->> '{name}')" if self.postgresql else \
            f"json_extract({element}, '$.{name}')"

    def concat(self, value: str) -> str:
        return f"string_agg({value}, '')" if self.postgresql else f"group_concat({value}, '')"

    def minute(self, seconds: str) -> str:
        return f'floor(({seconds}) / 60)' if self.postgresql else f'CAST(({seconds}) / 60 AS INTEGER)'

    def found(self, needle: str, haystack: str) -> str:
        return f'strpos({haystack}, {needle}) > 0' if self.postgresql else \
            f'instr({haystack}, {needle}) > 0'

    @property
    def binary(self) -> str:
        """Code-point order of text (Python's), whatever the database's collation."""
        return ' COLLATE "C"' if self.postgresql else ''

    def each(self, doc: str, alias: str) -> str:
        """A FROM item: the elements of a document that is an array."""
        if self.postgresql:
            return f'jsonb_array_elements({doc}) AS {alias}(value)'
        return f'json_each({doc}) AS {alias}'

    @property
    def fence(self) -> str:
        """PostgreSQL: a subquery kept a subquery (its jsonb parsed once a row, not once a use)."""
        return 'OFFSET 0' if self.postgresql else ''


_SPAN = """CREATE TEMPORARY TABLE fd_span (store_id VARCHAR(64) NOT NULL, day VARCHAR(10) NOT NULL,
  day_start DOUBLE PRECISION NOT NULL, day_end DOUBLE PRECISION NOT NULL,
  work INTEGER NOT NULL)"""

_SPAN_EVENTS = """SELECT d.store_id, d.day, COUNT(e.time) AS n, MAX(e.received_at) AS newest,
  SUM(CASE WHEN e.type IN ('recommendation', 'screen_code') THEN 1 ELSE 0 END) AS touches,
  MAX(CASE WHEN e.type IN ('recommendation', 'screen_code') THEN e.received_at END) AS touched
FROM fd_span d JOIN events e ON e.store_id = d.store_id AND e.time >= d.day_start
  AND e.time < d.day_end
GROUP BY d.store_id, d.day"""

_SPAN_RECEIPTS = """SELECT d.store_id, d.day, COUNT(r.time) AS n, MAX(r.imported_at) AS newest
FROM fd_span d JOIN receipts r ON r.store_id = d.store_id AND r.time >= d.day_start
  AND r.time < d.day_end
GROUP BY d.store_id, d.day"""

_ROBOTS = """SELECT d.store_id, d.day, e.robot_id, COUNT(*) AS events, MAX(e.time) AS last_event,
  COUNT(DISTINCT CASE WHEN e.type = 'customer_appeared' THEN {track} END) AS appeared,
  SUM(CASE WHEN e.type = 'tour' THEN CASE WHEN {status} = 'started' THEN 1 ELSE 0 END
      ELSE 0 END) AS tours_started,
  SUM(CASE WHEN e.type = 'tour' THEN CASE WHEN {status} = 'finished' THEN 1 ELSE 0 END
      ELSE 0 END) AS tours_finished,
  SUM(CASE WHEN e.type = 'staff_request' THEN 1 ELSE 0 END) AS staff_assists,
  COUNT(DISTINCT CASE WHEN ({opens_at} < {closes_at} AND {minute} >= {opens_at} AND {minute} < {closes_at})
                        OR ({closes_at} < {opens_at} AND ({minute} >= {opens_at} OR {minute} < {closes_at}))
                      THEN {minute} END) AS active_minutes
FROM fd_span d JOIN events e ON e.store_id = d.store_id AND e.time >= d.day_start
  AND e.time < d.day_end
  LEFT JOIN robot_hours k ON k.robot_id = e.robot_id AND k.day = d.day
WHERE d.work = 1
GROUP BY d.store_id, d.day, e.robot_id"""

# The conversations of the work days, one row each. funnel._conversations, per robot and day in
# (time, seq) order: an event opens a conversation when none is open (the robot's first
# conversation event of the day, or the one after a session_end: a "segment start"), or when it
# is a greeting and the open conversation is engaged (had a dialogue_turn) or its customer (its
# first non-empty one) is not the greeting's. Claim: for a greeting at i that is no segment
# start, the open conversation's engaged flag and customer equal those of the run of events from
# the previous "anchor" (greeting or segment start) p to i - 1. Proof: if the anchor at p opened
# the conversation, the run is the conversation so far. Else p is a greeting that did not open
# one: the conversation before p was not engaged and its customer equalled p's customer c; so
# nothing before p adds a dialogue_turn, and its first customer is c (and then p's, also c) or
# empty (all its events without a customer, and c = '' too): either way the first non-empty
# customer from the start equals the first from p.
# Every window is the robot-day's in (time, seq) order, so the events are sorted once (the
# windows of the later levels read them in that order: no re-sort). The run of a row is found
# by running maxima, not by a window partitioned by run: `anchor_rn` (the position of the newest
# anchor), `turn_rn` (of the newest dialogue_turn; the run had one when turn_rn >= anchor_rn)
# and `run_key`, the largest (anchor position, -position) of a row with a customer, with that
# customer: when its anchor is the row's own, it is the run's first customer, else the run has
# none. The payload fields are read below the sort (the fenced subquery: the sort carries a few
# flags and the SKU text, not the documents), and only the payloads of the types that have any.
_CONVERSATIONS = """CREATE TEMPORARY TABLE fd_conv AS
WITH ev AS (
  SELECT x.*,
    ROW_NUMBER() OVER w AS rn,
    LAG(x.type) OVER w AS prev
  FROM (
    SELECT e.store_id, e.day, e.robot_id, e.time, e.seq, e.type, e.customer,
      CASE WHEN e.type = 'dialogue_turn' THEN 1 ELSE 0 END AS turn,
      CASE WHEN e.type = 'dialogue_turn' THEN CASE WHEN {need} THEN 1 ELSE 0 END
           ELSE 0 END AS need,
      CASE WHEN e.type = 'dialogue_turn' THEN CASE WHEN EXISTS (
             SELECT 1 FROM {products} WHERE {product_sku} <> '') THEN 1 ELSE 0 END
           WHEN e.type = 'recommendation' THEN CASE WHEN {has_skus} THEN 1 ELSE 0 END
           ELSE 0 END AS rec,
      CASE WHEN e.type = 'guide' THEN CASE WHEN ({mission} IS NULL OR {mission} = 'guide')
           AND {status} = 'arrived' THEN 1 ELSE 0 END ELSE 0 END AS guided,
      CASE WHEN e.type = 'screen_code' THEN CASE WHEN {code} <> '' THEN ' ' || {code} || ' ' END
           END AS code,
      CASE WHEN e.type = 'dialogue_turn' THEN (
             SELECT {concat_s} FROM (SELECT {product_sku} AS s FROM {products}
                                     UNION ALL SELECT {slot_sku}) AS x WHERE s <> '')
           WHEN e.type IN ('recommendation', 'screen_code') THEN (
             SELECT {concat_v} FROM {skus} WHERE k.value <> '')
      END AS skus
    FROM (SELECT d.store_id, d.day, e.robot_id, e.time, e.seq, e.type, e.customer,
            CASE WHEN e.type IN ('dialogue_turn', 'recommendation', 'guide', 'screen_code')
                 THEN {doc} END AS j
          FROM fd_span d JOIN events e ON e.store_id = d.store_id AND e.time >= d.day_start
            AND e.time < d.day_end
          WHERE d.work = 1 AND e.type IN ({conversation}) {fence}) AS e
    {fence}) AS x
  WINDOW w AS (PARTITION BY x.store_id, x.day, x.robot_id ORDER BY x.time, x.seq)
), anchored AS (
  SELECT ev.*, CASE WHEN prev IS NULL OR prev = 'session_end' THEN 1 ELSE 0 END AS seg,
    MAX(CASE WHEN prev IS NULL OR prev = 'session_end' OR type = 'greeting' THEN rn END)
      OVER w AS anchor_rn,
    MAX(CASE WHEN turn = 1 THEN rn END) OVER w AS turn_rn
  FROM ev
  WINDOW w AS (PARTITION BY store_id, day, robot_id ORDER BY time, seq ROWS UNBOUNDED PRECEDING)
), runs AS (
  SELECT anchored.*, CASE WHEN turn_rn >= anchor_rn THEN 1 ELSE 0 END AS run_turned,
    MAX(CASE WHEN customer <> '' THEN CAST(anchor_rn + 1000000000 AS TEXT)
             || CAST(1999999999 - rn AS TEXT) || customer END{binary})
      OVER (PARTITION BY store_id, day, robot_id ORDER BY time, seq
            ROWS UNBOUNDED PRECEDING) AS run_key
  FROM anchored
), opened AS (
  SELECT runs.*, CASE WHEN seg = 1 THEN 1
    WHEN type = 'greeting' AND (
      LAG(run_turned) OVER w = 1
      OR CASE WHEN substr(LAG(run_key) OVER w, 1, 10)
                   = CAST(LAG(anchor_rn) OVER w + 1000000000 AS TEXT)
              THEN substr(LAG(run_key) OVER w, 21) ELSE '' END <> customer) THEN 1
    ELSE 0 END AS opens
  FROM runs WINDOW w AS (PARTITION BY store_id, day, robot_id ORDER BY time, seq)
), numbered AS (
  SELECT opened.*, SUM(opens) OVER (PARTITION BY store_id, day, robot_id ORDER BY time, seq
                                    ROWS UNBOUNDED PRECEDING) AS conv
  FROM opened
)
SELECT store_id, day, robot_id, conv, MIN(time) AS start_time,
  MAX(CASE WHEN opens = 1 THEN seq END) AS start_seq,
  COALESCE(substr(MIN(CASE WHEN customer <> '' THEN CAST(rn + 1000000000 AS TEXT) || customer
                       END{binary}), 11), '') AS customer,
  MAX(turn) AS engaged, MAX(need) AS need, MAX(rec) AS recommended, MAX(guided) AS guided,
  {concat_skus} AS skus, {concat_codes} AS codes
FROM numbered GROUP BY store_id, day, robot_id, conv"""

_CONVERSATION_COUNTS = """SELECT store_id, day, robot_id, COUNT(*) AS conversations,
  SUM(engaged) AS engaged, SUM(need) AS need_captured, SUM(recommended) AS recommended,
  SUM(guided) AS guided
FROM fd_conv GROUP BY store_id, day, robot_id"""

_TOUCHES = """CREATE TEMPORARY TABLE fd_touch AS
SELECT e.store_id, e.time,
  CASE WHEN e.type = 'recommendation' THEN 'm:' || e.customer
       ELSE 'c:' || {code} END AS touch
FROM (SELECT DISTINCT store_id FROM fd_span WHERE work = 1) AS s
  JOIN events e ON e.store_id = s.store_id AND e.time >= :first AND e.time < :last
WHERE e.type IN ('recommendation', 'screen_code')
  AND (e.type = 'recommendation' AND e.customer <> '' OR e.type = 'screen_code' AND {code} <> '')"""

# Last touch: per work day, the receipts of its window matched to its conversations by member
# or by screen code, holding (qty > 0) one of the conversation's products; the latest
# conversation (by its first event's (time, robot, seq)) kept; a receipt a later day's touch
# took (the same member recommended to, or the same code shown, after the day and before the
# receipt) left out.
_ATTRIBUTION = """WITH rc AS (
  SELECT d.store_id, d.day, d.day_end, r.receipt_id, r.time, r.customer, r.code, r.lines
  FROM fd_span d JOIN receipts r ON r.store_id = d.store_id AND r.time >= d.day_start
    AND r.time < d.day_end + {window}
  WHERE d.work = 1 AND (r.customer <> '' OR r.code <> '')
), pairs AS (
  SELECT rc.*, c.robot_id, c.start_time, c.start_seq, c.skus FROM rc JOIN fd_conv c
    ON c.store_id = rc.store_id AND c.day = rc.day AND c.customer = rc.customer
  WHERE rc.customer <> ''
  UNION ALL
  SELECT rc.*, c.robot_id, c.start_time, c.start_seq, c.skus FROM rc JOIN fd_conv c
    ON c.store_id = rc.store_id AND c.day = rc.day
  WHERE rc.code <> '' AND c.codes IS NOT NULL AND {code_found}
), matched AS (
  SELECT p.*, ROW_NUMBER() OVER (
    PARTITION BY p.store_id, p.day, p.receipt_id
    ORDER BY p.start_time DESC, p.robot_id{binary} DESC, p.start_seq DESC) AS pick
  FROM pairs p
  WHERE p.start_time <= p.time AND p.time < p.start_time + {window} AND p.skus IS NOT NULL
    AND EXISTS (SELECT 1 FROM {lines} WHERE {qty} > 0 AND {sku_found})
    AND NOT EXISTS (SELECT 1 FROM fd_touch k WHERE k.store_id = p.store_id
      AND k.touch IN ('m:' || p.customer, 'c:' || p.code) AND k.time >= p.day_end
      AND k.time < p.time)
)
SELECT store_id, day, receipt_id, time, lines, robot_id, start_time, start_seq, skus
FROM matched WHERE pick = 1"""

_RARE = """SELECT d.store_id, d.day, e.robot_id, e.seq, e.time, e.type, e.customer, e.data
FROM fd_span d JOIN events e ON e.store_id = d.store_id AND e.time >= d.day_start
  AND e.time < d.day_end
WHERE d.work = 1 AND e.type IN ('vip_checkin', 'campaign_offered', 'campaign_accepted')"""


def _hours_minute(at: int, chain: int) -> str:
    """The minute of the day of the robot's reported hours (robot_hours, canonical HH:MM-HH:MM;
    `at`: 1 opening, 7 closing), else the chain's."""
    return (f'COALESCE(CAST(substr(k.opening_hours, {at}, 2) AS INTEGER) * 60 '
            f'+ CAST(substr(k.opening_hours, {at + 3}, 2) AS INTEGER), {chain})')


def _sql(dialect: _Dialect) -> dict[str, str]:
    """The statements in the engine's spelling."""
    d = dialect
    conversation = ', '.join(f"'{k}'" for k in sorted(funnel.CONVERSATION))
    need = ' OR '.join(d.nonempty('e.j', f'slots.{k}') for k in funnel.NEED_SLOTS)
    return {
        'span_events': _SPAN_EVENTS,
        'span_receipts': _SPAN_RECEIPTS,
        'robots': _ROBOTS.format(track=d.get(d.json('e.data'), 'track_id'),
                                 status=d.get(d.json('e.data'), 'status'),
                                 opens_at=_hours_minute(1, funnel.CHAIN_HOURS.opens),
                                 closes_at=_hours_minute(7, funnel.CHAIN_HOURS.closes),
                                 minute=d.minute('e.time - d.day_start')),
        'conversations': _CONVERSATIONS.format(
            need=need, products=d.elements('e.j', 'products', 'p'),
            product_sku=d.field('p.value', 'sku'), has_skus=d.nonempty('e.j', 'skus'),
            mission=d.get('e.j', 'mission'), status=d.get('e.j', 'status'),
            code=d.get('e.j', 'code'), slot_sku=d.get('e.j', 'slots.sku'),
            concat_s=d.concat("' ' || s || ' '"), concat_v=d.concat("' ' || k.value || ' '"),
            skus=d.texts('e.j', 'skus', 'k'), doc=d.json('e.data'), conversation=conversation,
            binary=d.binary, fence=d.fence, concat_skus=d.concat('skus'),
            concat_codes=d.concat('code')),
        'conversation_counts': _CONVERSATION_COUNTS,
        'touches': _TOUCHES.format(code=d.get(d.json('e.data'), 'code')),
        'attribution': _ATTRIBUTION.format(
            window=repr(WINDOW_S), code_found=d.found("' ' || rc.code || ' '", 'c.codes'),
            binary=d.binary, lines=d.each(d.json('p.lines'), 'l'),
            qty=d.field('l.value', 'qty') if not d.postgresql else
            f"CAST({d.field('l.value', 'qty')} AS double precision)",
            sku_found=d.found("' ' || " + d.field('l.value', 'sku') + " || ' '", 'p.skus')),
        'rare': _RARE,
    }


# --- fingerprints ---------------------------------------------------------------------------------
def _combine(parts: Iterable[tuple[int, Any]]) -> str:
    """count:newest of several spans' (count, newest), as `funnel.fingerprint` spells it."""
    n, newest = 0, None
    for count, when in parts:
        n += count
        if when is not None and (newest is None or when > newest):
            newest = when
    return f'{n}:{newest!r}'


def _span(pairs: list[tuple[str, str]]) -> list[dict]:
    """The store-days and the ATTRIBUTION_DAYS after each, with their bounds; `work` 1 for the
    store-days asked for."""
    wanted = set(pairs)
    days = set(pairs)
    for store_id, day in pairs:
        days.update((store_id, later) for later in _following(day))
    out = []
    for store_id, day in sorted(days):
        start, end = funnel.day_bounds(day)
        out.append(dict(store_id=store_id, day=day, day_start=start, day_end=end,
                        work=1 if (store_id, day) in wanted else 0))
    return out


def _following(day: str) -> list[str]:
    from datetime import date, timedelta
    d = date.fromisoformat(day)
    return [(d + timedelta(days=i)).isoformat() for i in range(1, funnel.ATTRIBUTION_DAYS + 1)]


def _fingerprints(c: sa.Connection, sql: dict[str, str],
                  pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    ev = {(r.store_id, r.day): r for r in c.execute(sa.text(sql['span_events']))}
    rc = {(r.store_id, r.day): r for r in c.execute(sa.text(sql['span_receipts']))}
    out = {}
    for store_id, day in pairs:
        own = ev.get((store_id, day))
        later = [ev.get((store_id, d)) for d in _following(day)]
        window = [rc.get((store_id, d)) for d in [day, *_following(day)]]
        out[(store_id, day)] = '|'.join((
            _combine([(own.n, own.newest)] if own else []),
            _combine((r.n, r.newest) for r in window if r),
            _combine((r.touches or 0, r.touched) for r in later if r)))
    return out


# --- the recompute --------------------------------------------------------------------------------
def _create_span(c: sa.Connection, rows: list[dict]) -> None:
    c.execute(sa.text(_SPAN))
    span = sa.table('fd_span', *[sa.column(k) for k in ('store_id', 'day', 'day_start',
                                                        'day_end', 'work')])
    c.execute(span.insert(), rows)


def _joins(c: sa.Connection, dialect: _Dialect, nested: bool) -> None:
    """PostgreSQL: the next statements (the fingerprints) join fd_span to events store-day by
    store-day through the (store_id, time) index (`nested`), or the planner chooses again. Its
    estimate of a store-day's events from the range condition is ~3x too high, so for a span
    over many stores (2 000 store-days of 250 stores: the days before the month that the
    touches' look-back marks) it hashed the whole events table instead, reading all 50 M events:
    the fingerprints 22-40 s of such a pass, 2.3-3.3 s by the index; a month chunk (67 stores)
    had the index plan already (EXPLAIN ANALYZE, src/platform/README.md). The rows are the same
    either way. Not for the robots and conversations statements: forced there, a month chunk
    got slower (their small joins, e.g. robot_hours, became nested loops too)."""
    if dialect.postgresql:
        value = 'off' if nested else 'on'
        c.execute(sa.text(f'SET LOCAL enable_hashjoin = {value}'))
        c.execute(sa.text(f'SET LOCAL enable_mergejoin = {value}'))


def _drop(c: sa.Connection, names: Iterable[str]) -> None:
    for name in names:
        c.execute(sa.text(f'DROP TABLE IF EXISTS {name}'))


def recompute(engine: sa.Engine, store_days: Iterable[tuple[str, str]],
              force: bool = False) -> int:
    """Recompute these (store_id, day) set-based, CHUNK store-days per pass; a store-day whose
    inputs' fingerprint and definitions version are its stored rollup's is skipped (unless
    `force`). Returns how many were recomputed."""
    pairs = sorted(set(store_days))
    done = 0
    for start in range(0, len(pairs), CHUNK):
        done += _recompute_chunk(engine, pairs[start:start + CHUNK], force)
    return done


def _read_chunk(engine: sa.Engine, pairs: list[tuple[str, str]], force: bool
                ) -> tuple[dict[tuple[str, str], str], dict[str, Any]]:
    """(fingerprints of the store-days to recompute, the rows they are computed from)."""
    dialect = _Dialect(engine.dialect.name == 'postgresql')
    sql = _sql(dialect)
    f = lt.funnel_daily.c
    with engine.connect() as c:
        # one snapshot of every input: PostgreSQL repeatable read; SQLite a deferred transaction
        # (no write lock: ingest goes on; the temporary tables are the connection's own)
        c = c.execution_options(isolation_level='REPEATABLE READ') if dialect.postgresql else \
            c.execution_options(read_only=True)
        with c.begin():
            if dialect.postgresql:      # the windows' sorts in memory rather than on disk
                c.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
                # a background pass, not a request: the platform's 60 s statement timeout
                # cancelled the conversations statement of 1,520 store-days (2 M events)
                c.execute(sa.text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
            _drop(c, ('fd_span', 'fd_conv', 'fd_touch'))
            _create_span(c, _span(pairs))
            if dialect.postgresql:
                c.execute(sa.text('ANALYZE fd_span'))
            _joins(c, dialect, nested=True)
            prints = _fingerprints(c, sql, pairs)
            _joins(c, dialect, nested=False)
            stores = sorted({s for s, _ in pairs})
            first, last = min(d for _, d in pairs), max(d for _, d in pairs)
            kept = {}
            for part in range(0, len(stores), 500):
                kept.update({(r.store_id, r.day): r for r in c.execute(
                    sa.select(f.store_id, f.day, f.inputs, f.definitions).where(
                        f.store_id.in_(stores[part:part + 500]), f.day >= first,
                        f.day <= last))})
            work = [p for p in pairs if force or kept.get(p) is None
                    or kept[p].definitions != funnel.DEFINITIONS or kept[p].inputs != prints[p]]
            if not work:
                return {}, {}
            if len(work) < len(pairs):
                c.execute(sa.text('UPDATE fd_span SET work = 0'))
                span = sa.table('fd_span', sa.column('store_id'), sa.column('day'),
                                sa.column('work'))
                c.execute(span.update().where(span.c.store_id == sa.bindparam('s'),
                                              span.c.day == sa.bindparam('d'))
                          .values(work=1), [dict(s=s, d=d) for s, d in work])
            rows = _read_work(c, dialect, sql, work)
            _drop(c, ('fd_span', 'fd_conv', 'fd_touch'))
    return {p: prints[p] for p in work}, rows


def _read_work(c: sa.Connection, dialect: _Dialect, sql: dict[str, str],
               work: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out['robots'] = [r._asdict() for r in c.execute(sa.text(sql['robots']))]
    c.execute(sa.text(sql['conversations']))
    c.execute(sa.text('CREATE INDEX fd_conv_customer ON fd_conv (store_id, day, customer)'))
    if dialect.postgresql:
        c.execute(sa.text('ANALYZE fd_conv'))
    out['conversations'] = [r._asdict() for r in c.execute(sa.text(sql['conversation_counts']))]
    first = min(funnel.day_bounds(d)[1] for _, d in work)
    last = max(funnel.day_bounds(d)[1] for _, d in work) + WINDOW_S
    c.execute(sa.text(sql['touches']), {'first': first, 'last': last})
    c.execute(sa.text('CREATE INDEX fd_touch_key ON fd_touch (store_id, touch, time)'))
    if dialect.postgresql:
        c.execute(sa.text('ANALYZE fd_touch'))
    out['attribution'] = [r._asdict() for r in c.execute(sa.text(sql['attribution']))]
    out['rare'] = [r._asdict() for r in c.execute(sa.text(sql['rare']))]
    stores = sorted({s for s, _ in work})
    a = t.appointments.c
    out['appointments'] = [r._asdict() for part in range(0, len(stores), 500)
                           for r in c.execute(sa.select(a.id, a.store_id, a.customer, a.time)
                                              .where(a.store_id.in_(stores[part:part + 500])))]
    out['assigned'] = [r._asdict() for part in range(0, len(stores), 500)
                       for r in c.execute(sa.select(t.robots.c.robot_id, t.robots.c.store_id)
                                          .where(t.robots.c.store_id.in_(
                                              stores[part:part + 500])))]
    # the hours each robot reported per day (robot_hours: canonical HH:MM-HH:MM, heartbeats v4)
    days = sorted({d for _, d in work})
    h = t.robot_hours.c
    out['hours'] = {(r.robot_id, r.day): r.opening_hours
                    for r in c.execute(sa.select(h.robot_id, h.day, h.opening_hours)
                                       .where(h.day >= days[0], h.day <= days[-1]))}
    out['receipts'] = _member_receipts(c, out, work)
    return out


def _member_receipts(c: sa.Connection, rows: dict[str, Any], work: list[tuple[str, str]]
                     ) -> dict[tuple[str, str], list[funnel.Receipt]]:
    """The receipts of the members the rare rows concern (VIP appointments shown, campaign
    offers), per store and member, over the work days' windows."""
    wanted: set[tuple[str, str]] = set()
    days_of = {d for _, d in work}
    for ap in rows['appointments']:
        if ap['customer'] and isinstance(ap['time'], str) and ap['time'][:10] in days_of:
            wanted.add((ap['store_id'], ap['customer']))
    for ev in rows['rare']:
        if ev['type'] == 'campaign_offered' and ev['customer']:
            wanted.add((ev['store_id'], ev['customer']))
    if not wanted:
        return {}
    first = min(funnel.day_bounds(d)[0] for _, d in work)
    last = max(funnel.day_bounds(d)[1] for _, d in work) + WINDOW_S
    r = lt.receipts.c
    out: dict[tuple[str, str], list[funnel.Receipt]] = defaultdict(list)
    listed = sorted(wanted)
    for part in range(0, len(listed), 500):
        chunk = listed[part:part + 500]
        for row in c.execute(sa.select(r.store_id, r.receipt_id, r.time, r.customer, r.code,
                                       r.lines).where(
                sa.tuple_(r.store_id, r.customer).in_(chunk), r.time >= first, r.time < last)):
            lines = tuple((x['sku'], int(x['qty']), float(x['price_cny']))
                          for x in json.loads(row.lines))
            out[(row.store_id, row.customer)].append(
                funnel.Receipt(row.receipt_id, row.time, row.customer, row.code, lines))
    return dict(out)


def _recompute_chunk(engine: sa.Engine, pairs: list[tuple[str, str]], force: bool) -> int:
    prints, rows = _read_chunk(engine, pairs, force)
    if not prints:
        return 0
    metrics = assemble(list(prints), rows)
    by_store: dict[str, list[dict]] = defaultdict(list)
    for (store_id, _), m in metrics.items():
        by_store[store_id].append(m)
    now = time.time()
    for store_id, computed in sorted(by_store.items()):
        funnel.write_store_days(engine, store_id, computed,
                                {m['day']: prints[(store_id, m['day'])] for m in computed}, now)
    return len(metrics)


# --- the metrics of each store-day, in compute_store_day's shape ----------------------------------
def _robot_row(events: int = 0, last_event: float | None = None) -> dict[str, Any]:
    row = funnel._new_robot()
    row.update(events=events, last_event=last_event)
    return row


def assemble(work: list[tuple[str, str]], rows: dict[str, Any]) -> dict[tuple[str, str], dict]:
    """Each store-day's metrics (`funnel.compute_store_day`'s dict) from the statements' rows."""
    assigned: dict[str, list[str]] = defaultdict(list)
    for r in rows['assigned']:
        assigned[r['store_id']].append(r['robot_id'])
    per_robot: dict[tuple[str, str], dict[str, dict]] = {
        (s, d): {rid: _robot_row() for rid in assigned.get(s, ())} for s, d in work}
    for r in rows['robots']:
        robot = per_robot[(r['store_id'], r['day'])].setdefault(r['robot_id'], _robot_row())
        robot.update(events=int(r['events']), last_event=r['last_event'],
                     appeared=int(r['appeared']), tours_started=int(r['tours_started'] or 0),
                     tours_finished=int(r['tours_finished'] or 0),
                     staff_assists=int(r['staff_assists'] or 0),
                     active_minutes=int(r['active_minutes']))
    need: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows['conversations']:
        key = (r['store_id'], r['day'])
        robot = per_robot[key].setdefault(r['robot_id'], _robot_row())
        for k in ('conversations', 'engaged', 'recommended', 'guided'):
            robot[k] = int(r[k] or 0)
        need[key] += int(r['need_captured'] or 0)
    credited = _credited(rows['attribution'])
    rare: dict[tuple[str, str], list[funnel.Event]] = defaultdict(list)
    for r in rows['rare']:
        try:
            data = json.loads(r['data'])
        except ValueError:
            data = {}
        rare[(r['store_id'], r['day'])].append(funnel.Event(
            r['robot_id'], r['seq'], r['time'], r['type'], r['customer'],
            data if isinstance(data, dict) else {}))
    booked: dict[tuple[str, str], list[funnel.Appointment]] = defaultdict(list)
    for ap in rows['appointments']:
        if isinstance(ap['time'], str):
            booked[(ap['store_id'], ap['time'][:10])].append(
                funnel.Appointment(str(ap['id']), ap['customer'], ap['time'][:10]))
    out = {}
    for key in work:
        out[key] = _store_day(key, per_robot[key], need[key], credited.get(key, (0, 0)),
                              sorted(rare.get(key, []), key=lambda e: (e.time, e.robot_id,
                                                                       e.seq)),
                              booked.get(key, []), rows['receipts'], rows.get('hours', {}))
    return out


def _credited(attribution: list[dict]) -> dict[tuple[str, str], tuple[int, float]]:
    """purchased and attributed revenue per store-day from the receipts each credited to one
    conversation, summed in `funnel._attribution`'s order (receipts by time, then id)."""
    per_day: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in attribution:
        per_day[(r['store_id'], r['day'])].append(r)
    out = {}
    for key, credits in per_day.items():
        credits.sort(key=lambda r: (r['time'], r['receipt_id']))
        revenue: float = 0
        for r in credits:
            skus = set(r['skus'].split())
            revenue += sum(int(x['qty']) * float(x['price_cny']) for x in json.loads(r['lines'])
                           if x['sku'] in skus)
        convs = {(r['robot_id'], r['start_time'], r['start_seq']) for r in credits}
        out[key] = (len(convs), round(revenue, 2))
    return out


def _store_day(key: tuple[str, str], robots: dict[str, dict], need: int,
               credited: tuple[int, float], rare: list[funnel.Event],
               booked: list[funnel.Appointment],
               receipts: dict[tuple[str, str], list[funnel.Receipt]],
               hours: dict[tuple[str, str], str]) -> dict:
    store_id, day = key
    start, end = funnel.day_bounds(day)
    counts: dict[str, Any] = {k: 0 for k in funnel.COUNTS}
    for name in ('appeared', 'conversations', 'engaged', 'recommended', 'guided',
                 'staff_assists', 'tours_started', 'tours_finished', 'active_minutes'):
        counts[name] = sum(r[name] for r in robots.values())
    counts['need_captured'] = need
    counts['purchased'], counts['attributed_revenue_cny'] = credited
    members = {c for c in {a.customer for a in booked} | {e.customer for e in rare} if c}
    theirs = [rc for m in sorted(members) for rc in receipts.get((store_id, m), ())
              if start <= rc.time < end + WINDOW_S]
    theirs.sort(key=lambda rc: (rc.time, rc.receipt_id))
    shows, shown_members = funnel._vip_checkins(rare)
    counts.update(funnel._appointment_counts(day, booked, shows, shown_members, theirs,
                                             start, end))
    for rid, r in robots.items():       # funnel.robot_minutes' opening minutes, per robot
        r['opening_minutes'] = funnel.opening_of(hours.get((rid, day))).minutes
        r['availability'] = round(r['active_minutes'] / r['opening_minutes'], 4)
    counts['opening_minutes'] = sum(r['opening_minutes'] for r in robots.values())
    counts['staff_resolve_median_s'] = None
    by_campaign = funnel._campaigns(rare, theirs)
    for k, name in (('offers', 'campaign_offers'), ('accepted', 'campaign_accepted'),
                    ('purchases', 'campaign_purchases')):
        counts[name] = sum(row[k] for row in by_campaign.values())
    return {'day': day, 'definitions': funnel.DEFINITIONS, **counts, **funnel.rates(counts),
            'robots': dict(sorted(robots.items())), 'campaigns': by_campaign}
