"""The set-based recompute (funnel_sets: a few statements over all the dirty store-days) gives
exactly the numbers of the definition (`funnel.compute_store_day`, one store-day at a time):
on both engines, over random store floors built to hit the conversation rules' corners (a
greeting of another customer or after a turn opens a conversation, a session_end closes one,
events without a customer, equal times ordered by seq), screen codes, later days' touches taking
a receipt, returns, VIP appointments and campaigns; then after late events and late receipts
arrive; each rollup equal to the per-store path's (`refresh(method='stores')`) and to a
from-scratch `funnel.recompute` of the store-day."""
from __future__ import annotations

import json
import random

import sqlalchemy as sa

from loop_support import chain, event, store_events
from retail_platform import funnel, funnel_sets, purchases
from retail_platform import loop_schema as lt
from retail_platform import schema as t
from retail_platform.storage import Storage

DAYS = [f'2026-11-{d:02d}' for d in range(2, 7)]
MEMBERS = ['', '', 'm-1', 'm-2', 'm-3']
SKUS = ['TV-1', 'TV-2', 'HP-1', 'PH-1', 'CASE-1']
CODES = ['K7Q2', 'ZZ99']
ROBOTS = {'robot-1': 's-1', 'robot-3': 's-1', 'robot-2': 's-2'}


def _payload(rng: random.Random, kind: str) -> dict:
    skus = rng.sample(SKUS, rng.randrange(3))
    if kind == 'dialogue_turn':
        slots = rng.choice([{}, {'category': 'tv'}, {'skus': []}, {'min_price': 0},
                            {'sku': rng.choice(SKUS)}, {'brand': 'Sony', 'skus': skus},
                            {'consent': True}])
        return {'intent': rng.choice(['find_product', 'compare', 'greet']), 'language': 'zh',
                'confidence': 0.9, 'slots': slots,
                'products': [{'sku': s, 'price_cny': 100.0} for s in skus]}
    return {
        'customer_appeared': {'track_id': rng.randrange(6)},
        'greeting': {'member': True, 'vip': False, 'appointment': False},
        'recommendation': {'skus': skus},
        'guide': {'zone': 'tv', 'status': rng.choice(['started', 'arrived']),
                  'mission': rng.choice(['guide', 'guide', 'tour'])},
        'screen_code': {'code': rng.choice(CODES), 'skus': skus},
        'session_end': {'reason': 'goodbye'},
        'tour': {'route': 'r', 'status': rng.choice(['started', 'finished', 'failed'])},
        'staff_request': {'reason': 'customer_asked'},
        'vip_checkin': {'status': rng.choice(['on_time', 'late', 'missed']),
                        'appointment_id': rng.choice(['', '1', '2'])},
        'campaign_offered': {'campaign_id': rng.choice(['c-1', 'c-2']), 'skus': skus},
        'campaign_accepted': {'campaign_id': 'c-1'},
        'customer_left': {'track_id': rng.randrange(6)},
    }[kind]


KINDS = (['greeting'] * 5 + ['dialogue_turn'] * 6 + ['recommendation'] * 3 + ['session_end'] * 4
         + ['customer_appeared'] * 3 + ['guide', 'screen_code', 'screen_code', 'tour',
                                        'staff_request', 'vip_checkin', 'campaign_offered',
                                        'campaign_accepted', 'customer_left'])


def _floor(rng: random.Random, day: str, n: int) -> list[dict]:
    start = funnel.day_bounds(day)[0]
    out = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        at = start + rng.choice([9.5, 10, 11, 11, 12, 21.99, 23.9]) * 3600 + rng.randrange(0, 90, 3)
        out.append(event(kind, float(at), _payload(rng, kind), rng.choice(MEMBERS)))
    return out


def _receipts(rng: random.Random, n: int) -> list[tuple[str, purchases.Receipt]]:
    out = []
    first = funnel.day_bounds(DAYS[0])[0]
    for i in range(n):
        member, code = rng.choice(MEMBERS), rng.choice(['', '', *CODES])
        lines = [{'sku': rng.choice(SKUS), 'qty': rng.choice([1, 1, 2, -1]),
                  'price_cny': rng.choice([9.99, 100.0, 2999.5])} for _ in range(rng.randint(1, 3))]
        out.append((f'x{i}', purchases.Receipt.model_validate(dict(
            receipt_id=f'r-{i}', store_id=rng.choice(['s-1', 's-1', 's-2']),
            time=first + rng.uniform(10, 24 * (len(DAYS) + 6)) * 3600, member_id=member,
            code=code, lines=lines))))
    return out


def _rollups(storage: Storage) -> dict[tuple[str, str], tuple[str, str]]:
    f = lt.funnel_daily.c
    with storage.engine.connect() as c:
        return {(r.store_id, r.day): (r.metrics, r.inputs) for r in c.execute(
            sa.select(f.store_id, f.day, f.metrics, f.inputs))}


def _summaries(storage: Storage) -> list:
    with storage.engine.connect() as c:
        return [sorted(tuple(r) for r in c.execute(sa.select(*[col for col in table.c
                                                               if col.name != 'computed_at'])))
                for table in (lt.hq_store_days, lt.hq_store_months, lt.hq_campaign_days,
                              lt.hq_robot_last)]


def _clear(storage: Storage) -> None:
    with storage.engine.begin() as c:
        for table in (lt.funnel_daily, lt.hq_store_days, lt.hq_store_months,
                      lt.hq_campaign_days, lt.hq_robot_last, lt.loop_state):
            c.execute(table.delete())


def _both_paths_agree(storage: Storage) -> dict:
    """Refresh set-based, then from a clean slate per store; the rollups, their fingerprints
    and the HQ summaries must be equal, and each equal to a from-scratch recompute."""
    sets = _rollups(storage)
    summaries = _summaries(storage)
    _clear(storage)
    assert funnel.refresh(storage.engine, method='stores') == len(sets)
    stores = _rollups(storage)
    assert stores == sets
    assert _summaries(storage) == summaries
    for (store_id, day), (metrics, _) in sets.items():
        scratch = funnel.recompute(storage.engine, store_id, day)
        assert json.dumps(scratch, separators=(',', ':'), sort_keys=True) == metrics
    return {k: json.loads(m) for k, (m, _) in sets.items()}


def test_the_set_based_recompute_equals_the_definition_also_after_late_data(engine_target):
    rng = random.Random(23)
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        storage.issue_robot_token('robot-3', 's-1')
        with storage.engine.begin() as c:
            c.execute(t.appointments.insert(), [
                dict(store_id=s, robot_id=None, customer=m, time=f'{d}T11:00', purpose='', note='')
                for s, m, d in [('s-1', 'm-1', DAYS[0]), ('s-1', 'm-2', DAYS[1]),
                                ('s-2', 'm-3', DAYS[0]), ('s-1', '', DAYS[2])]])
            # hours robots reported (heartbeats v4): one closing after midnight, one early
            first, second = list(ROBOTS)[:2]
            c.execute(t.robot_hours.insert(), [
                dict(robot_id=r, day=d, opening_hours=h, reported_at=0.0)
                for r, d, h in [(first, DAYS[0], '10:00-01:00'), (second, DAYS[1], '08:30-20:15')]])
        late = {}
        for robot, _ in ROBOTS.items():
            for d in DAYS:
                floor = _floor(rng, d, 60)
                late[(robot, d)] = floor[45:]
                store_events(storage, robot, floor[:45])
        receipts = _receipts(rng, 120)
        purchases.store_receipts(storage.engine, receipts[:80])
        assert funnel.refresh(storage.engine) > 0
        first = _both_paths_agree(storage)
        assert sum(m['purchased'] for m in first.values()) > 0
        assert sum(m['conversations'] for m in first.values()) > 0
        # late events (the oldest day's among them) and late receipts
        _clear(storage)
        assert funnel.refresh(storage.engine) > 0
        for (robot, d), rest in late.items():
            store_events(storage, robot, rest)
        purchases.store_receipts(storage.engine, receipts[80:])
        again = funnel.refresh(storage.engine)
        assert again > 0
        after = _both_paths_agree(storage)
        assert after != first
        totals = funnel.total(list(after.values()))
        for name in ('appeared', 'engaged', 'need_captured', 'recommended', 'guided',
                     'purchased', 'vip_shows', 'campaign_offers', 'campaign_purchases',
                     'tours_finished', 'staff_assists'):
            assert totals[name] > 0, name        # the corners this data must reach
    finally:
        storage.close()


def test_a_clean_store_day_is_not_recomputed_and_a_changed_one_is(engine_target):
    rng = random.Random(5)
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        store_events(storage, 'robot-1', _floor(rng, DAYS[0], 30) + _floor(rng, DAYS[1], 30))
        pairs = [('s-1', DAYS[0]), ('s-1', DAYS[1])]
        assert funnel_sets.recompute(storage.engine, pairs) == 2
        assert funnel_sets.recompute(storage.engine, pairs) == 0
        assert funnel_sets.recompute(storage.engine, pairs, force=True) == 2
        store_events(storage, 'robot-1', _floor(rng, DAYS[1], 1))
        assert funnel_sets.recompute(storage.engine, pairs) == 1
    finally:
        storage.close()
