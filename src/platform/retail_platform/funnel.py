"""The robots' funnel per store and day (definitions: docs/metrics.md, version DEFINITIONS).

`compute_store_day` is a pure function of one store-day's events, the receipts of the store from
that day to the end of its attribution window, the appointments of that day and the store's
robots: the same inputs give the same numbers whatever order or day they arrived in, so a store
that was offline for a week ends with exactly the numbers it would have had online.

`refresh` finds the store-days made dirty since its last run (events received, receipts
imported: by their `received_at` / `imported_at`, with an overlap of WATERMARK_OVERLAP_S for
transactions that committed out of clock order; recomputing a clean day is harmless; rollups of
an older DEFINITIONS version) and recomputes each whole into `funnel_daily`: set-based
(`funnel_sets`: a few SQL statements over all the dirty store-days at once, the same numbers),
or store by store with `compute_store_day` (`method='stores'`, the definition and the peer the
set-based path is tested and benchmarked against).

Off the request path: the API and the pages only read `funnel_daily`. A background task (background.py) runs `refresh`
in the background of `retailbot platform serve` (every `--funnel-refresh-s`, default 10 s; one
process of several at a time on PostgreSQL, by a session advisory lock), or
`retailbot platform refresh-funnel` does it from a timer (`--every S` to loop).
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

import sqlalchemy as sa

from retail_common.events import EARLIEST_TIME, LATEST_TIME
from retail_common.hours import DEFAULT as DEFAULT_HOURS, HoursError, OpeningHours, parse_hours
from retail_platform import loop_schema as lt
from retail_platform import schema as t

DEFINITIONS = 2          # 2: the campaign metrics (docs/metrics.md, Campaigns)
CHAIN_ZONE = timezone(timedelta(hours=8), 'China Standard Time')   # no daylight saving
ZONE_OFFSET_S = 8 * 3600
ATTRIBUTION_DAYS = 7
CHAIN_HOURS = DEFAULT_HOURS     # a robot that reported no hours for the day: the chain's 10:00-22:00
WATERMARK_OVERLAP_S = 120.0
BATCH_DAYS = 31              # a store's dirty days recomputed from one read of its rows
# PostgreSQL: a refresh that wrote at least this many store-days ANALYZEs the HQ summaries: with
# the planner's statistics of before a bulk recompute, the /hq ranking joined 1,000 stores to
# their sums by a nested loop (EXPLAIN ANALYZE: 999,000 rows filtered, 172 of 218 ms), not
# waiting for autovacuum's analyze to notice
ANALYZE_AFTER = 1000
MAX_RANGE_DAYS = 366
SHOWN = ('early', 'late', 'on_time')
NEED_SLOTS = ('sku', 'skus', 'category', 'brand', 'min_price', 'max_price', 'size')
CONVERSATION = frozenset({'greeting', 'dialogue_turn', 'recommendation', 'guide', 'tour',
                          'staff_request', 'vip_checkin', 'screen_code', 'session_end',
                          'member_said'})
COUNTS = ('appeared', 'conversations', 'engaged', 'need_captured', 'recommended', 'guided',
          'purchased', 'attributed_revenue_cny', 'vip_appointments', 'vip_shows',
          'appointment_purchases', 'tours_started', 'tours_finished', 'staff_assists',
          'staff_resolved', 'active_minutes', 'opening_minutes', 'campaign_offers',
          'campaign_accepted', 'campaign_purchases')
RATES = {   # rate: (numerator, denominator)
    'engaged_rate': ('engaged', 'appeared'),
    'need_rate': ('need_captured', 'engaged'),
    'recommended_rate': ('recommended', 'need_captured'),
    'guided_rate': ('guided', 'recommended'),
    'conversion': ('purchased', 'recommended'),
    'vip_show_rate': ('vip_shows', 'vip_appointments'),
    'appointment_purchase_rate': ('appointment_purchases', 'vip_shows'),
    'tour_completion': ('tours_finished', 'tours_started'),
    'availability': ('active_minutes', 'opening_minutes'),
    'campaign_uptake': ('campaign_accepted', 'campaign_offers'),
    'campaign_conversion': ('campaign_purchases', 'campaign_offers'),
}


@dataclass(frozen=True)
class Event:
    robot_id: str
    seq: int
    time: float
    type: str
    customer: str
    data: dict


@dataclass(frozen=True)
class Receipt:
    receipt_id: str
    time: float
    customer: str
    code: str
    lines: tuple[tuple[str, int, float], ...]      # (sku, qty, price)


@dataclass(frozen=True)
class Appointment:
    id: str
    customer: str
    day: str


@dataclass
class _Conversation:
    robot_id: str
    start: float
    customer: str = ''
    engaged: bool = False
    need: bool = False
    skus: set[str] = field(default_factory=set)
    recommended: bool = False
    guided: bool = False
    codes: set[str] = field(default_factory=set)


def day_of(when: float) -> str:
    return datetime.fromtimestamp(when, CHAIN_ZONE).date().isoformat()


def day_bounds(day: str) -> tuple[float, float]:
    """[start, end) of a chain-local day, seconds since 1970."""
    d = date.fromisoformat(day)
    start = datetime(d.year, d.month, d.day, tzinfo=CHAIN_ZONE).timestamp()
    return start, start + 86400.0


def days(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def rates(counts: dict[str, Any]) -> dict[str, float | None]:
    """Each rate from its counts; None (null) when the denominator is 0 — never 0."""
    out: dict[str, float | None] = {}
    for name, (num, den) in RATES.items():
        n, d = counts.get(num) or 0, counts.get(den) or 0
        out[name] = round(n / d, 4) if d else None
    return out


# --- conversations (docs/metrics.md, Conventions: Conversation) -------------------------------
def _starts_conversation(conv: _Conversation | None, e: Event) -> bool:
    """No conversation is open on the robot, or a greeting of another customer (or after an
    engaged conversation) starts a new one."""
    return conv is None or e.type == 'greeting' and (conv.engaged or conv.customer != e.customer)


def _note_turn(conv: _Conversation, data: dict) -> None:
    """A dialogue_turn: engaged; need captured when its slots name a product, category, brand,
    price bound or size; recommended when it showed products (their SKUs, and a named SKU)."""
    conv.engaged = True
    slots = data.get('slots') or {}
    if any(slots.get(k) not in (None, '', []) for k in NEED_SLOTS):
        conv.need = True
    shown = [p.get('sku') for p in data.get('products') or [] if p.get('sku')]
    if shown:
        conv.recommended = True
        conv.skus.update(shown)
    if slots.get('sku'):
        conv.skus.add(slots['sku'])


def _note_event(conv: _Conversation, e: Event) -> None:
    """What one conversation event adds to its conversation (session_end is handled apart)."""
    d = e.data
    if e.type == 'dialogue_turn':
        _note_turn(conv, d)
    elif e.type == 'recommendation' and d.get('skus'):
        conv.recommended = True
        conv.skus.update(d['skus'])
    elif e.type == 'guide' and d.get('mission', 'guide') == 'guide' and \
            d.get('status') == 'arrived':
        conv.guided = True
    elif e.type == 'screen_code' and d.get('code'):
        conv.codes.add(d['code'])
        conv.skus.update(d.get('skus') or [])


def _conversations(events: list[Event]) -> list[_Conversation]:
    """A robot's conversations: from a greeting (or the first conversation event when none is
    open) to its session_end; events ordered by (time, seq)."""
    out: list[_Conversation] = []
    open_: dict[str, _Conversation] = {}
    for e in events:
        if e.type not in CONVERSATION:
            continue
        conv = open_.get(e.robot_id)
        if conv is None or _starts_conversation(conv, e):
            conv = _Conversation(e.robot_id, e.time)
            open_[e.robot_id] = conv
            out.append(conv)
        if e.customer and not conv.customer:
            conv.customer = e.customer
        if e.type == 'session_end':
            open_.pop(e.robot_id, None)
        else:
            _note_event(conv, e)
    return out


def _conversation_counts(conversations: list[_Conversation]) -> dict[str, Counter[str]]:
    """Per robot: conversations, and those engaged, with a need captured, recommended, guided."""
    out: dict[str, Counter[str]] = {name: Counter() for name in (
        'conversations', 'engaged', 'need_captured', 'recommended', 'guided')}
    for conv in conversations:
        out['conversations'][conv.robot_id] += 1
        for flag, name in ((conv.engaged, 'engaged'), (conv.need, 'need_captured'),
                           (conv.recommended, 'recommended'), (conv.guided, 'guided')):
            if flag:
                out[name][conv.robot_id] += 1
    return out


# --- events counted on their own (appeared, tours, staff assists, VIP check-ins) ----------------
def _appeared(events: list[Event]) -> Counter[str]:
    """Per robot: distinct (robot, track_id) of customer_appeared events."""
    tracks = {(e.robot_id, int(e.data.get('track_id', -1)))
              for e in events if e.type == 'customer_appeared'}
    return Counter(rid for rid, _ in tracks)


def _tours(events: list[Event], status: str) -> Counter[str]:
    """Per robot: tour events with that status ('started' or 'finished')."""
    return Counter(e.robot_id for e in events if e.type == 'tour' and e.data.get('status') == status)


def _staff_assists(events: list[Event]) -> Counter[str]:
    """Per robot: staff_request events (the customer's or the robot's own)."""
    return Counter(e.robot_id for e in events if e.type == 'staff_request')


def _vip_checkins(events: list[Event]) -> tuple[set[str], set[str]]:
    """The appointments shown (by appointment id, else `customer:<member>`) and the members
    shown: vip_checkin events of status on_time, early or late."""
    shows: set[str] = set()
    members: set[str] = set()
    for e in events:
        if e.type == 'vip_checkin' and e.data.get('status') in SHOWN:
            shows.add(e.data.get('appointment_id') or f'customer:{e.customer}')
            if e.customer:
                members.add(e.customer)
    return shows, members


# --- purchased and attributed revenue: last touch -----------------------------------------------
def _touch_keys(rc: Receipt) -> set[str]:
    """The touches a receipt can be credited through: its member (`m:`) and its code (`c:`)."""
    return ({f'm:{rc.customer}'} if rc.customer else set()) | \
        ({f'c:{rc.code}'} if rc.code else set())


def _taken_later(keys: set[str], rc: Receipt, later: list[tuple[str, float]],
                 day_end: float) -> bool:
    """A later day brought the same member a recommendation (or showed the same code) before
    the receipt: the receipt is that day's, not this one's."""
    return any(k in keys and day_end <= when < rc.time for k, when in later)


def _matches(conv: _Conversation, rc: Receipt) -> bool:
    """The receipt falls in the conversation's window, is of its member or carries a code its
    screen showed, and contains (qty > 0) one of its products."""
    if not conv.start <= rc.time < conv.start + ATTRIBUTION_DAYS * 86400.0 or not conv.skus:
        return False
    if not ((conv.customer and rc.customer == conv.customer)
            or (rc.code and rc.code in conv.codes)):
        return False
    return any(sku in conv.skus and q > 0 for sku, q, _ in rc.lines)


def _last_touch(rc: Receipt, conversations: list[_Conversation]) -> int | None:
    """The index of the latest conversation the receipt matches, or None."""
    best = None
    for index, conv in enumerate(conversations):
        if _matches(conv, rc):
            best = index
    return best


def _attribution(receipts: list[Receipt], conversations: list[_Conversation],
                 later: list[tuple[str, float]], day_end: float) -> tuple[int, float]:
    """`purchased` (conversations credited with a receipt) and `attributed_revenue_cny` (the
    credited receipts' lines that are products of the conversation credited)."""
    converted: set[int] = set()
    revenue: float = 0
    for rc in receipts:
        keys = _touch_keys(rc)
        if not keys or _taken_later(keys, rc, later, day_end):
            continue
        best = _last_touch(rc, conversations)
        if best is not None:
            converted.add(best)
            revenue += sum(q * p for sku, q, p in rc.lines if sku in conversations[best].skus)
    return len(converted), round(revenue, 2)


# --- appointments --------------------------------------------------------------------------------
def _appointment_counts(day: str, appointments: Iterable[Appointment], shows: set[str],
                        shown_members: set[str], receipts: list[Receipt], start: float,
                        end: float) -> dict[str, int]:
    """vip_appointments (the day's), vip_shows (checked in, by appointment id else by member)
    and appointment_purchases (shown, with a receipt of the member from the day's start to
    ATTRIBUTION_DAYS after its end)."""
    window = ATTRIBUTION_DAYS * 86400.0
    booked = {a.id: a for a in appointments if a.day == day}
    return {
        'vip_appointments': len(booked),
        'vip_shows': sum(1 for a in booked.values()
                         if a.id in shows or f'customer:{a.customer}' in shows
                         or a.customer in shown_members),
        'appointment_purchases': sum(
            1 for a in booked.values()
            if (a.id in shows or a.customer in shown_members) and a.customer and any(
                rc.customer == a.customer and start <= rc.time < end + window for rc in receipts)),
    }


# --- campaigns (version 2) ------------------------------------------------------------------------
def _campaigns(events: list[Event], receipts: list[Receipt]) -> dict[str, dict[str, int]]:
    """Per campaign: `offers` (campaign_offered events), `accepted` (campaign_accepted) and
    `purchases`: offers to a member followed, within ATTRIBUTION_DAYS, by a receipt of the same
    member at the store containing (qty > 0) a product offered."""
    out: dict[str, dict[str, int]] = {}
    window = ATTRIBUTION_DAYS * 86400.0
    for e in events:
        cid = e.data.get('campaign_id')
        if e.type not in ('campaign_offered', 'campaign_accepted') or not isinstance(cid, str):
            continue
        row = out.setdefault(cid, {'offers': 0, 'accepted': 0, 'purchases': 0})
        if e.type == 'campaign_accepted':
            row['accepted'] += 1
            continue
        row['offers'] += 1
        skus = {s for s in e.data.get('skus') or [] if isinstance(s, str)}
        if e.customer and skus and any(
                rc.customer == e.customer and e.time <= rc.time < e.time + window
                and any(sku in skus and q > 0 for sku, q, _ in rc.lines) for rc in receipts):
            row['purchases'] += 1
    return dict(sorted(out.items()))


# --- availability --------------------------------------------------------------------------------
def robot_minutes(robots: Iterable[str], events: list[Event], day_start: float,
                  hours: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """robot -> (active_minutes, opening_minutes) of one day: the minutes of the day (chain local
    time) in which the store is open by the hours the robot reported for that day (`hours`: robot
    -> 'HH:MM-HH:MM', retail_common.hours; absent or unreadable: CHAIN_HOURS), and those of them
    in which the robot recorded any event. A store closing after midnight (10:00-01:00) counts
    the day's 00:00-01:00 and 10:00-24:00."""
    out: dict[str, tuple[int, int]] = {}
    active: dict[str, set[int]] = {}
    for e in events:
        active.setdefault(e.robot_id, set()).add(int((e.time - day_start) // 60))
    for rid in robots:
        opening = opening_of((hours or {}).get(rid))
        out[rid] = (sum(1 for m in active.get(rid, ()) if opening.is_open(m)), opening.minutes)
    return out


def opening_of(text: str | None) -> OpeningHours:
    """The hours a robot reported (absent or unreadable: CHAIN_HOURS)."""
    if not text:
        return CHAIN_HOURS
    try:
        return parse_hours(text)
    except HoursError:
        return CHAIN_HOURS


def reported_hours(c: sa.Connection, robots: Iterable[str], first: str, last: str) -> dict[str, dict[str, str]]:
    """day -> {robot: the opening hours it reported that day} for days first..last (the fleet's
    robot_hours, kept from heartbeats v4); a robot-day not there counts CHAIN_HOURS."""
    h = t.robot_hours.c
    out: dict[str, dict[str, str]] = {}
    for row in c.execute(sa.select(h.robot_id, h.day, h.opening_hours).where(
            h.robot_id.in_(list(robots)), h.day >= first, h.day <= last)):
        out.setdefault(row.day, {})[row.robot_id] = row.opening_hours
    return out


# --- the store-day -------------------------------------------------------------------------------
def _new_robot() -> dict[str, Any]:
    return {'events': 0, 'appeared': 0, 'conversations': 0, 'engaged': 0, 'recommended': 0,
            'guided': 0, 'staff_assists': 0, 'tours_started': 0, 'tours_finished': 0,
            'active_minutes': 0, 'last_event': None}


def _robot_rows(robots: Iterable[str], events: list[Event]) -> dict[str, dict[str, Any]]:
    """A row per robot of the store or seen that day, with its events and its last event."""
    per_robot: dict[str, dict[str, Any]] = {}
    for rid in robots:
        per_robot.setdefault(rid, _new_robot())
    for e in events:
        r = per_robot.setdefault(e.robot_id, _new_robot())
        r['events'] += 1
        r['last_event'] = e.time
    return per_robot


def compute_store_day(day: str, events: Iterable[Event], receipts: Iterable[Receipt],
                      appointments: Iterable[Appointment], robots: Iterable[str],
                      later: Iterable[tuple[str, float]] = (), hours: dict[str, str] | None = None) -> dict:
    """The funnel of one store on `day` (docs/metrics.md, version DEFINITIONS).

    `events`: the store's events with time in the day (any order); `receipts`: the store's
    receipts from the day's start to ATTRIBUTION_DAYS after its end; `appointments`: the store's
    appointments of that day; `robots`: the robots assigned to the store (for availability);
    `later`: the touches after the day within the window (`m:<member>` or `c:<code>`, time) —
    recommendations and screen codes of the following ATTRIBUTION_DAYS days; `hours`: the opening
    hours each robot reported for the day (`robot_minutes`; absent: the chain's)."""
    later = list(later)
    start, end = day_bounds(day)
    events = sorted((e for e in events if start <= e.time < end),
                    key=lambda e: (e.time, e.robot_id, e.seq))
    receipts = sorted(receipts, key=lambda r: (r.time, r.receipt_id))
    counts: dict[str, Any] = {k: 0 for k in COUNTS}
    per_robot = _robot_rows(robots, events)
    conversations = _conversations(events)
    by_robot = {'appeared': _appeared(events), 'tours_started': _tours(events, 'started'),
                'tours_finished': _tours(events, 'finished'),
                'staff_assists': _staff_assists(events), **_conversation_counts(conversations)}
    for name, tally in by_robot.items():
        counts[name] = sum(tally.values())
        for rid, n in tally.items():
            if name in per_robot[rid]:
                per_robot[rid][name] = n
    counts['purchased'], counts['attributed_revenue_cny'] = _attribution(
        receipts, conversations, later, end)
    shows, shown_members = _vip_checkins(events)
    counts.update(_appointment_counts(day, appointments, shows, shown_members, receipts,
                                      start, end))
    minutes = robot_minutes(per_robot, events, start, hours)
    for rid, r in per_robot.items():
        r['active_minutes'], r['opening_minutes'] = minutes[rid]
        r['availability'] = round(r['active_minutes'] / r['opening_minutes'], 4)
    counts['active_minutes'] = sum(active for active, _ in minutes.values())
    counts['opening_minutes'] = sum(opening for _, opening in minutes.values())
    counts['staff_resolve_median_s'] = None        # needs a resolution event (docs/metrics.md)
    by_campaign = _campaigns(events, receipts)
    for key, name in (('offers', 'campaign_offers'), ('accepted', 'campaign_accepted'),
                      ('purchases', 'campaign_purchases')):
        counts[name] = sum(row[key] for row in by_campaign.values())
    return {'day': day, 'definitions': DEFINITIONS, **counts, **rates(counts),
            'robots': dict(sorted(per_robot.items())), 'campaigns': by_campaign}


def total(rows: list[dict]) -> dict:
    """Counts summed over store-days, rates recomputed from the sums (never averaged)."""
    counts: dict[str, Any] = {k: 0 for k in COUNTS}
    for row in rows:
        for k in COUNTS:
            counts[k] += row.get(k) or 0
    counts['attributed_revenue_cny'] = round(counts['attributed_revenue_cny'], 2)
    by_campaign: dict[str, dict[str, Any]] = {}
    for row in rows:
        for cid, tally in (row.get('campaigns') or {}).items():
            acc = by_campaign.setdefault(cid, {'offers': 0, 'accepted': 0, 'purchases': 0})
            for k in acc:
                acc[k] += tally.get(k) or 0
    for acc in by_campaign.values():
        acc['uptake'] = round(acc['accepted'] / acc['offers'], 4) if acc['offers'] else None
        acc['conversion'] = round(acc['purchases'] / acc['offers'], 4) if acc['offers'] else None
    return {'definitions': DEFINITIONS, 'store_days': len(rows), **counts, **rates(counts),
            'campaigns': dict(sorted(by_campaign.items()))}


# --- the database side ------------------------------------------------------------------------
def _events(c: sa.Connection, store_id: str, start: float, end: float) -> list[Event]:
    e = t.events.c
    rows = c.execute(sa.select(e.robot_id, e.seq, e.time, e.type, e.customer, e.data).where(
        e.store_id == store_id, e.time >= start, e.time < end)).all()
    out = []
    for r in rows:
        try:
            data = json.loads(r.data)
        except ValueError:
            data = {}
        out.append(Event(r.robot_id, r.seq, r.time, r.type, r.customer,
                         data if isinstance(data, dict) else {}))
    return out


TOUCHES = ('recommendation', 'screen_code')


def _later(c: sa.Connection, store_id: str, start: float, end: float) -> list[tuple[str, float]]:
    """Recommendations to members and screen codes shown in [start, end)."""
    e = t.events.c
    out = []
    for r in c.execute(sa.select(e.type, e.customer, e.time, e.data).where(
            e.store_id == store_id, e.time >= start, e.time < end, e.type.in_(TOUCHES))):
        if r.type == 'recommendation' and r.customer:
            out.append((f'm:{r.customer}', r.time))
        elif r.type == 'screen_code':
            try:
                code = json.loads(r.data).get('code')
            except (ValueError, AttributeError):
                code = None
            if isinstance(code, str):
                out.append((f'c:{code}', r.time))
    return out


def _receipts(c: sa.Connection, store_id: str, start: float, end: float) -> list[Receipt]:
    r = lt.receipts.c
    out = []
    for row in c.execute(sa.select(r.receipt_id, r.time, r.customer, r.code, r.lines).where(
            r.store_id == store_id, r.time >= start, r.time < end)):
        lines = tuple((x['sku'], int(x['qty']), float(x['price_cny']))
                      for x in json.loads(row.lines))
        out.append(Receipt(row.receipt_id, row.time, row.customer, row.code, lines))
    return out


def _appointments(c: sa.Connection, store_id: str, day: str) -> list[Appointment]:
    a = t.appointments.c
    out = []
    for row in c.execute(sa.select(a.id, a.customer, a.time).where(
            a.store_id == store_id, a.time.like(f'{day}%'))):
        out.append(Appointment(str(row.id), row.customer, day))
    return out


def _robots(c: sa.Connection, store_id: str) -> list[str]:
    return [r.robot_id for r in c.execute(sa.select(t.robots.c.robot_id)
                                          .where(t.robots.c.store_id == store_id))]


def fingerprint(c: sa.Connection, store_id: str, day: str) -> str:
    """What a store-day's numbers are computed from, in three aggregates (count and newest
    arrival of its events, of the receipts of its window, of the later touches): equal
    fingerprints, equal inputs, so a clean store-day is not recomputed."""
    start, end = day_bounds(day)
    later = end + ATTRIBUTION_DAYS * 86400.0
    e, r = t.events.c, lt.receipts.c
    parts = [
        c.execute(sa.select(sa.func.count(), sa.func.max(e.received_at)).where(
            e.store_id == store_id, e.time >= start, e.time < end)).one(),
        c.execute(sa.select(sa.func.count(), sa.func.max(r.imported_at)).where(
            r.store_id == store_id, r.time >= start, r.time < later)).one(),
        c.execute(sa.select(sa.func.count(), sa.func.max(e.received_at)).where(
            e.store_id == store_id, e.time >= end, e.time < later, e.type.in_(TOUCHES))).one()]
    return '|'.join(f'{n}:{m!r}' for n, m in parts)


def recompute(engine: sa.Engine, store_id: str, day: str) -> dict:
    """Compute one store-day from the database and keep it in funnel_daily (with the
    fingerprint of its inputs, taken before they are read: data arriving meanwhile changes the
    fingerprint, so the next refresh recomputes it)."""
    start, end = day_bounds(day)
    with engine.connect() as c:
        inputs = fingerprint(c, store_id, day)
        events, robots = _events(c, store_id, start, end), _robots(c, store_id)
        metrics = compute_store_day(
            day, events,
            _receipts(c, store_id, start, end + ATTRIBUTION_DAYS * 86400.0),
            _appointments(c, store_id, day), robots,
            _later(c, store_id, end, end + ATTRIBUTION_DAYS * 86400.0),
            hours=reported_hours(c, {*robots, *(e.robot_id for e in events)}, day, day).get(day))
    text = json.dumps(metrics, separators=(',', ':'), sort_keys=True)
    with engine.begin() as c:
        if engine.dialect.name == 'postgresql':      # two processes recomputing one store-day
            c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:k, 24))'),
                      {'k': f'{store_id}/{day}'})
        f = lt.funnel_daily.c
        c.execute(lt.funnel_daily.delete().where(f.store_id == store_id, f.day == day))
        c.execute(lt.funnel_daily.insert().values(store_id=store_id, day=day,
                                                  definitions=DEFINITIONS, metrics=text,
                                                  inputs=inputs, computed_at=time.time()))
        write_summaries(c, store_id, [metrics])
    return metrics


def summary_rows(store_id: str, metrics: Iterable[dict]) -> tuple[list[dict], list[dict],
                                                                   dict[str, float]]:
    """What the HQ summaries hold of a store's computed days: (hq_store_days rows,
    hq_campaign_days rows, each robot's newest event)."""
    days_, campaigns, robots = [], [], {}
    for m in metrics:
        days_.append({'store_id': store_id, 'day': m['day'], 'definitions': m['definitions'],
                      **{k: m.get(k) or 0 for k in COUNTS}})
        for cid, tally in (m.get('campaigns') or {}).items():
            campaigns.append({'store_id': store_id, 'day': m['day'], 'campaign_id': cid,
                              'offers': tally.get('offers') or 0,
                              'accepted': tally.get('accepted') or 0,
                              'purchases': tally.get('purchases') or 0})
        for rid, r in (m.get('robots') or {}).items():
            if r.get('last_event') is not None:
                robots[rid] = max(robots.get(rid, r['last_event']), r['last_event'])
    return days_, campaigns, robots


def write_summaries(c: sa.Connection, store_id: str, metrics: list[dict]) -> None:
    """Replace the HQ summaries of these store-days and their months' (in the caller's
    transaction, the one that writes their funnel_daily rows) and move each robot's newest
    event forward."""
    days_, campaigns, robots = summary_rows(store_id, metrics)
    if not days_:
        return
    wanted = [d['day'] for d in days_]
    for table in (lt.hq_store_days, lt.hq_campaign_days):
        c.execute(table.delete().where(table.c.store_id == store_id, table.c.day.in_(wanted)))
    c.execute(lt.hq_store_days.insert(), days_)
    write_months(c, store_id, wanted)
    if campaigns:
        c.execute(lt.hq_campaign_days.insert(), campaigns)
    if robots:
        r = lt.hq_robot_last.c
        known = dict(c.execute(sa.select(r.robot_id, r.last_event)
                               .where(r.robot_id.in_(list(robots)))).all())
        for rid, when in robots.items():
            if rid not in known:
                c.execute(lt.hq_robot_last.insert().values(robot_id=rid, last_event=when))
            elif when > known[rid]:
                c.execute(lt.hq_robot_last.update().where(r.robot_id == rid)
                          .values(last_event=when))


def write_months(c: sa.Connection, store_id: str, days: Iterable[str]) -> None:
    """Recompute the HQ month summaries (`hq_store_months`: a store's `MONTH_COUNTS` summed
    over a calendar month, with its number of store-days) of the months of these days from the
    store's `hq_store_days` rows, in the caller's transaction (write_summaries' own)."""
    months = sorted({d[:7] for d in days})
    if not months:
        return
    h, m = lt.hq_store_days.c, lt.hq_store_months.c
    month = sa.func.substr(h.day, 1, 7)
    c.execute(lt.hq_store_months.delete().where(m.store_id == store_id, m.month.in_(months)))
    c.execute(lt.hq_store_months.insert().from_select(
        ['store_id', 'month', 'store_days', *lt.MONTH_COUNTS],
        sa.select(h.store_id, month, sa.func.count(),
                  *[sa.func.sum(getattr(h, k)) for k in lt.MONTH_COUNTS])
        .where(h.store_id == store_id, h.day >= f'{months[0]}-01', h.day <= f'{months[-1]}-31',
               month.in_(months)).group_by(h.store_id, month)))


# --- a store's dirty days at once (the refresher's path) -------------------------------------------
@dataclass
class _StoreRows:
    """A store's rows over a range of days and their attribution windows, read once: events
    (with received_at), receipts (with imported_at), appointments, robots."""
    events: list[tuple[Event, float]]
    receipts: list[tuple[Receipt, float]]
    appointments: list[tuple[Appointment, str]]       # (appointment, its local time text)
    robots: list[str]
    _by_day: dict[str, dict[int, list]] | None = None

    def on_days(self, kind: str, first: int, last: int) -> list:
        """The rows (events or receipts) of chain-local day indexes first..last, bucketed once
        (not a scan of the store's whole range for every day)."""
        if self._by_day is None:
            self._by_day = {'events': {}, 'receipts': {}}
            for name, rows in (('events', self.events), ('receipts', self.receipts)):
                buckets = self._by_day[name]
                for row in rows:
                    buckets.setdefault(int((row[0].time + ZONE_OFFSET_S) // 86400), []).append(row)
        buckets = self._by_day[kind]
        return [row for index in range(first, last + 1) for row in buckets.get(index, ())]


def _load_store(c: sa.Connection, store_id: str, start: float, end: float) -> _StoreRows:
    e, r, a = t.events.c, lt.receipts.c, t.appointments.c
    events = []
    for row in c.execute(sa.select(e.robot_id, e.seq, e.time, e.type, e.customer, e.data,
                                   e.received_at).where(e.store_id == store_id, e.time >= start,
                                                        e.time < end)):
        try:
            data = json.loads(row.data)
        except ValueError:
            data = {}
        events.append((Event(row.robot_id, row.seq, row.time, row.type, row.customer,
                             data if isinstance(data, dict) else {}), row.received_at))
    receipts = []
    for row in c.execute(sa.select(r.receipt_id, r.time, r.customer, r.code, r.lines,
                                   r.imported_at).where(r.store_id == store_id, r.time >= start,
                                                        r.time < end)):
        lines = tuple((x['sku'], int(x['qty']), float(x['price_cny']))
                      for x in json.loads(row.lines))
        receipts.append((Receipt(row.receipt_id, row.time, row.customer, row.code, lines),
                         row.imported_at))
    appointments = [(Appointment(str(row.id), row.customer, ''), row.time) for row in c.execute(
        sa.select(a.id, a.customer, a.time).where(a.store_id == store_id))]
    return _StoreRows(events, receipts, appointments, _robots(c, store_id))


def _aggregate(stamps: list[float]) -> str:
    return f'{len(stamps)}:{(max(stamps) if stamps else None)!r}'


def _day_inputs(rows: _StoreRows, day: str) -> tuple[str, dict[str, Any]]:
    """(fingerprint, compute_store_day's arguments) of one day from a store's rows; the
    fingerprint equals `fingerprint`'s (the same three aggregates, counted in memory)."""
    start, end = day_bounds(day)
    window_end = end + ATTRIBUTION_DAYS * 86400.0
    index = int((start + ZONE_OFFSET_S) // 86400)
    day_events = [(ev, at) for ev, at in rows.on_days('events', index, index)
                  if start <= ev.time < end]
    in_window = [(rc, at) for rc, at in rows.on_days('receipts', index, index + ATTRIBUTION_DAYS)
                 if start <= rc.time < window_end]
    touches = [(ev, at) for ev, at in rows.on_days('events', index + 1, index + ATTRIBUTION_DAYS)
               if end <= ev.time < window_end and ev.type in TOUCHES]
    inputs = '|'.join((_aggregate([at for _, at in day_events]),
                       _aggregate([at for _, at in in_window]),
                       _aggregate([at for _, at in touches])))
    return inputs, {'events': [ev for ev, _ in day_events],
                    'receipts': [rc for rc, _ in in_window],
                    'appointments': [Appointment(ap.id, ap.customer, day)
                                     for ap, when in rows.appointments
                                     if isinstance(when, str) and when.startswith(day)],
                    'robots': rows.robots, 'later': _touches_of([ev for ev, _ in touches])}


def _touches_of(events: list[Event]) -> list[tuple[str, float]]:
    """As `_later`, from events in memory: recommendations to members, screen codes shown."""
    later = []
    for ev in events:
        if ev.type == 'recommendation' and ev.customer:
            later.append((f'm:{ev.customer}', ev.time))
        elif ev.type == 'screen_code' and isinstance(ev.data.get('code'), str):
            later.append((f'c:{ev.data["code"]}', ev.time))
    return later


def refresh_store(engine: sa.Engine, store_id: str, dirty_days: Iterable[str]) -> int:
    """Recompute the store's days among `dirty_days` whose inputs changed (or whose rollup is of
    an older definitions version), reading the store's rows once for all of them and writing
    them in one transaction; how many were recomputed."""
    wanted = sorted(set(dirty_days))
    if not wanted:
        return 0
    first, last = day_bounds(wanted[0])[0], day_bounds(wanted[-1])[1]
    f = lt.funnel_daily.c
    with engine.connect() as c:
        kept = {row.day: row for row in c.execute(sa.select(f.day, f.inputs, f.definitions).where(
            f.store_id == store_id, f.day.in_(wanted)))}
        rows = _load_store(c, store_id, first, last + ATTRIBUTION_DAYS * 86400.0)
        hours = reported_hours(c, {*rows.robots, *(ev.robot_id for ev, _ in rows.events)}, wanted[0], wanted[-1])
    computed, inputs_of = [], {}
    for day in wanted:
        inputs, args = _day_inputs(rows, day)
        old = kept.get(day)
        if old is not None and old.definitions == DEFINITIONS and old.inputs == inputs:
            continue
        computed.append(compute_store_day(day, **args, hours=hours.get(day)))
        inputs_of[day] = inputs
    write_store_days(engine, store_id, computed, inputs_of)
    return len(computed)


def write_store_days(engine: sa.Engine, store_id: str, computed: list[dict],
                     inputs: dict[str, str], now: float | None = None) -> None:
    """Keep a store's computed days (`compute_store_day`'s dicts) in funnel_daily with their
    inputs' fingerprints, and their HQ summaries, in one transaction (PostgreSQL: under the
    store-days' advisory locks, those of `recompute`)."""
    if not computed:
        return
    f = lt.funnel_daily.c
    fresh = [dict(store_id=store_id, day=m['day'], definitions=DEFINITIONS,
                  inputs=inputs[m['day']],
                  metrics=json.dumps(m, separators=(',', ':'), sort_keys=True),
                  computed_at=time.time() if now is None else now) for m in computed]
    with engine.begin() as c:
        if engine.dialect.name == 'postgresql':
            for row in fresh:      # the same locks as `recompute` (one store-day at a time)
                c.execute(sa.text('SELECT pg_advisory_xact_lock(hashtextextended(:k, 24))'),
                          {'k': f'{store_id}/{row["day"]}'})
        c.execute(lt.funnel_daily.delete().where(
            f.store_id == store_id, f.day.in_([row['day'] for row in fresh])))
        c.execute(lt.funnel_daily.insert(), fresh)
        write_summaries(c, store_id, computed)


def _day_index(column, postgresql: bool):
    shifted = (column + ZONE_OFFSET_S) / 86400.0
    return sa.func.floor(shifted) if postgresql else sa.cast(shifted, sa.Integer)


def _day_name(index: float) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(index))).isoformat()


def dirty(engine: sa.Engine) -> tuple[set[tuple[str, str]], float]:
    """Store-days touched since the watermark, and the new watermark."""
    postgresql = engine.dialect.name == 'postgresql'
    with engine.connect() as c:
        state = dict(c.execute(sa.select(lt.loop_state.c.key, lt.loop_state.c.value).where(
            lt.loop_state.c.key.in_(['funnel', 'funnel_run']))).all())
        mark = state.get('funnel') or 0.0
        # Rows this refresh has not seen committed after the last run started, so were stamped
        # after (that start - the overlap), as well as after (the newest seen - the overlap):
        # without the first bound a quiet chain would re-check its last batch on every run.
        since = max(mark, state.get('funnel_run') or 0.0) - WATERMARK_OVERLAP_S
        e = t.events.c
        ev_day = _day_index(e.time, postgresql).label('d')
        # an event stored before times were bounded (retail_common.events.event_time_problem)
        # on no calendar day is no store-day: it must not stop every store's refresh
        on_a_day = sa.and_(e.time >= EARLIEST_TIME, e.time < LATEST_TIME)
        found: set[tuple[str, str]] = set()
        newest = mark
        for row in c.execute(sa.select(e.store_id, ev_day, sa.func.max(e.received_at))
                             .where(e.received_at > since, e.store_id.is_not(None), on_a_day)
                             .group_by(e.store_id, ev_day)):
            found.add((row[0], _day_name(row[1])))
            newest = max(newest, row[2])
        for row in c.execute(sa.select(e.store_id, ev_day).where(
                e.received_at > since, e.store_id.is_not(None), e.type.in_(TOUCHES), on_a_day)
                .group_by(e.store_id, ev_day)):
            for back in range(1, ATTRIBUTION_DAYS + 1):  # a later touch can take their receipts
                found.add((row[0], _day_name(row[1] - back)))
        f = lt.funnel_daily.c          # rollups of an older definitions version: recomputed
        for row in c.execute(sa.select(f.store_id, f.day).where(f.definitions != DEFINITIONS)):
            found.add((row.store_id, row.day))
        r = lt.receipts.c
        rc_day = _day_index(r.time, postgresql).label('d')
        for row in c.execute(sa.select(r.store_id, rc_day, sa.func.max(r.imported_at))
                             .where(r.imported_at > since).group_by(r.store_id, rc_day)):
            for back in range(ATTRIBUTION_DAYS + 1):     # the days whose window holds it
                found.add((row[0], _day_name(row[1] - back)))
            newest = max(newest, row[2])
    return found, newest


def refresh(engine: sa.Engine, every_s: float = 0.0, method: str = 'sets') -> int:
    """Recompute every dirty store-day whose inputs changed; returns how many. `every_s`: skip
    when a refresh ran less than that long ago (the API and pages: rollups at most that much
    behind, and a burst of page views costs one refresh). `method`: 'sets' (funnel_sets: a few
    statements over all the dirty store-days at once) or 'stores' (each store's dirty days read
    once and computed one at a time by `compute_store_day`: the definition, the peer)."""
    if method not in ('sets', 'stores'):
        raise ValueError(f'method must be sets or stores, not {method!r}')
    now = time.time()
    if every_s > 0:
        with engine.connect() as c:
            last = c.execute(sa.select(lt.loop_state.c.value)
                             .where(lt.loop_state.c.key == 'funnel_run')).scalar()
        if last is not None and 0 <= now - last < every_s:
            return 0
    found, newest = dirty(engine)
    if method == 'sets':
        from retail_platform import funnel_sets
        done = funnel_sets.recompute(engine, found)
        if done >= ANALYZE_AFTER and engine.dialect.name == 'postgresql':
            with engine.connect() as c:     # the pages' plans see the new rows at once
                c.execution_options(isolation_level='AUTOCOMMIT').execute(sa.text(
                    'ANALYZE stores, funnel_daily, hq_store_days, hq_store_months, '
                    'hq_campaign_days, hq_robot_last'))
    else:
        by_store: dict[str, list[str]] = {}
        for store_id, day in found:
            by_store.setdefault(store_id, []).append(day)
        done = 0
        for store_id, store_days in sorted(by_store.items()):
            for start in range(0, len(store_days), BATCH_DAYS):    # bounded memory per store
                done += refresh_store(engine, store_id,
                                      sorted(store_days)[start:start + BATCH_DAYS])
    with engine.begin() as c:
        c.execute(lt.loop_state.delete().where(lt.loop_state.c.key.in_(
            ['funnel', 'funnel_run', 'funnel_cost'])))
        c.execute(lt.loop_state.insert(), [dict(key='funnel', value=newest),
                                           dict(key='funnel_run', value=now),
                                           dict(key='funnel_cost', value=time.time() - now)])
    return done


REFRESH_LOCK = 7_210_025          # PostgreSQL advisory lock: one refresher of the chain at a time
SPACING = 4.0      # the serve processes' refresher: idle >= SPACING x its last run's duration


def due(engine: sa.Engine, spacing: float, now: float | None = None) -> bool:
    """Whether a refresh may run now: the last run (any process's: its start and duration are
    in loop_state) ended at least `spacing` times its duration ago. Under continuous ingest a
    run re-reads every touched store-day whole, so its duration grows with the day's volume;
    spacing the runs by their cost coalesces more batches into each recompute of a store-day
    and bounds the refresher to 1/(1 + spacing) of the time, whatever the volume. The numbers
    are the same (each store-day is still recomputed whole from its rows); only how far the
    rollups lag behind grows with their cost."""
    if spacing <= 0:
        return True
    with engine.connect() as c:
        state = dict(c.execute(sa.select(lt.loop_state.c.key, lt.loop_state.c.value).where(
            lt.loop_state.c.key.in_(['funnel_run', 'funnel_cost']))).all())
    started, cost = state.get('funnel_run'), state.get('funnel_cost')
    if started is None or cost is None:
        return True
    ended = started + cost
    now = time.time() if now is None else now
    return not 0 <= now - ended < spacing * cost


def refresh_once(engine: sa.Engine, spacing: float = 0.0) -> int | None:
    """`refresh`, unless another process is refreshing (PostgreSQL): then None. `spacing`:
    0 when the last run ended less than `spacing` times its duration ago (`due`)."""
    if not due(engine, spacing):
        return 0
    if engine.dialect.name != 'postgresql':
        return refresh(engine)
    with engine.connect() as c:
        got = c.execute(sa.text('SELECT pg_try_advisory_lock(:k)'), {'k': REFRESH_LOCK}).scalar()
        c.commit()
        if not got:
            return None
        try:
            return refresh(engine) if due(engine, spacing) else 0
        finally:
            c.execute(sa.text('SELECT pg_advisory_unlock(:k)'), {'k': REFRESH_LOCK})
            c.commit()


def last_refresh(engine: sa.Engine | sa.Connection) -> float | None:
    """When the rollups were last brought up to date (seconds since 1970), None: never (read
    on the connection when given one)."""
    query = sa.select(lt.loop_state.c.value).where(lt.loop_state.c.key == 'funnel_run')
    if isinstance(engine, sa.Connection):
        return engine.execute(query).scalar()
    with engine.connect() as c:
        return c.execute(query).scalar()


def read(engine: sa.Engine, store_ids: list[str] | None, first: str, last: str) -> list[dict]:
    """Stored rollups of `store_ids` (None: every store) for days first..last."""
    f = lt.funnel_daily.c
    query = sa.select(f.store_id, f.day, f.metrics).where(f.day >= first, f.day <= last)
    if store_ids is not None:
        query = query.where(f.store_id.in_(store_ids))
    with engine.connect() as c:
        rows = c.execute(query.order_by(f.store_id, f.day)).all()
    return [{'store_id': r.store_id, **json.loads(r.metrics)} for r in rows]


def check_range(first: str | None, last: str | None, today: str | None = None,
                strict: bool = True, names: tuple[str, str] = ('from', 'to')) -> tuple[str, str]:
    """(first, last) days, defaulting to the 7 days up to today. strict: ValueError (one line,
    naming the field or option as `names` spell them: `--from`/`--to` on the command line)
    for an invalid range; else (the API, whose schema states only dates) a range longer than
    MAX_RANGE_DAYS ends at first + MAX_RANGE_DAYS - 1 and first after last is an empty range."""
    today = today or day_of(time.time())
    for name, value in zip(names, (first, last)):
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f'{name} {value!r} must be a date YYYY-MM-DD') from None
    try:
        last_d = date.fromisoformat(last) if last else date.fromisoformat(today)
        first_d = date.fromisoformat(first) if first else last_d - timedelta(days=6)
    except ValueError:
        raise ValueError(f'{names[0]} and {names[1]} must be dates YYYY-MM-DD') from None
    except OverflowError:               # `to` in the year 1: the range starts at the first day
        first_d = date.min
    if strict and first_d > last_d:
        raise ValueError(f'{names[0]} {first_d.isoformat()} is after {names[1]} '
                         f'{last_d.isoformat()}')
    if (last_d - first_d).days + 1 > MAX_RANGE_DAYS:
        if strict:
            raise ValueError(f'{names[0]} to {names[1]}: at most {MAX_RANGE_DAYS} days at once')
        try:
            last_d = first_d + timedelta(days=MAX_RANGE_DAYS - 1)
        except OverflowError:
            last_d = date.max
    return first_d.isoformat(), last_d.isoformat()
