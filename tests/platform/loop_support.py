"""Helpers of the data-loop tests: a chain with stores, robots and credentials; one day of a
store floor as typed events (what the robots upload); receipts."""
from __future__ import annotations

import itertools

from retail_platform.app import check_event
from retail_platform.funnel import day_bounds
from retail_platform.storage import Storage

DAY = '2026-11-02'
_seq = itertools.count(1)


def event(kind: str, at: float, data: dict, customer: str = '', event_id: str | None = None) -> dict:
    n = next(_seq)
    return {'event_id': event_id or f'e-{n}', 'seq': n, 'type': kind, 'version': 1,
            'customer': customer, 'time': at, 'data': data}


def store_floor_day(day: str = DAY, hour: float = 11.0) -> list[dict]:
    """Three visitors at one robot: a member who is recommended a TV and guided to it; an
    anonymous customer shown a code; a passer-by who only appeared. Plus a tour and a staff call."""
    t0 = day_bounds(day)[0] + hour * 3600
    return [
        event('customer_appeared', t0, {'track_id': 1}),
        event('greeting', t0 + 1, {'member': True, 'vip': False, 'appointment': False}, 'm-0001'),
        event('dialogue_turn', t0 + 5, {'intent': 'find_product', 'language': 'zh',
                                        'confidence': 0.9, 'slots': {'category': '电视'},
                                        'products': [{'sku': 'TV-85', 'price_cny': 9999}]},
              'm-0001'),
        event('recommendation', t0 + 6, {'skus': ['TV-85', 'TV-65']}, 'm-0001'),
        event('guide', t0 + 8, {'zone': 'tv', 'status': 'started'}, 'm-0001'),
        event('guide', t0 + 60, {'zone': 'tv', 'status': 'arrived'}, 'm-0001'),
        event('session_end', t0 + 90, {'reason': 'goodbye'}, 'm-0001'),
        event('customer_appeared', t0 + 100, {'track_id': 2}),
        event('greeting', t0 + 101, {'member': False, 'vip': False, 'appointment': False}),
        event('dialogue_turn', t0 + 105, {'intent': 'find_product', 'language': 'en',
                                          'confidence': 0.8, 'slots': {'brand': 'Sony'},
                                          'products': [{'sku': 'HP-1', 'price_cny': 899}]}),
        event('screen_code', t0 + 106, {'code': 'K7Q2', 'skus': ['HP-1']}),
        event('session_end', t0 + 150, {'reason': 'left'}),
        event('customer_appeared', t0 + 200, {'track_id': 3}),
        event('customer_left', t0 + 210, {'track_id': 3}),
        event('tour', t0 + 300, {'route': 'highlights', 'status': 'started'}),
        event('tour', t0 + 600, {'route': 'highlights', 'status': 'finished'}),
        event('staff_request', t0 + 700, {'reason': 'customer_asked'}),
    ]


def receipts_for(day: str = DAY) -> list[dict]:
    t0 = day_bounds(day)[0] + 15 * 3600
    return [
        {'receipt_id': 'r-1', 'store_id': 's-1', 'time': t0, 'member_id': 'm-0001',
         'lines': [{'sku': 'TV-85', 'qty': 1, 'price_cny': 9999.0}]},
        {'receipt_id': 'r-2', 'store_id': 's-1', 'time': t0 + 60, 'code': 'K7Q2',
         'lines': [{'sku': 'HP-1', 'qty': 1, 'price_cny': 899.0},
                   {'sku': 'CABLE', 'qty': 2, 'price_cny': 20.0}]},
        {'receipt_id': 'r-3', 'store_id': 's-1', 'time': t0 + 120, 'member_id': 'm-0009',
         'lines': [{'sku': 'TV-85', 'qty': 1, 'price_cny': 9999.0}]},
    ]


def store_events(storage: Storage, robot_id: str, events: list[dict]) -> None:
    rows = [check_event(e, i) for i, e in enumerate(events)]
    outcome = storage.store_events(robot_id, rows)
    assert outcome.rejected == 0, outcome.results


def chain(target: str) -> dict[str, str]:
    """Regions north/south, stores s-1 (north), s-2 (south), robots r-1/r-2, a token per role."""
    from retail_platform.database import upgrade
    storage = Storage(target)
    upgrade(storage.engine)
    storage.add_region('north', 'North')
    storage.add_region('south', 'South')
    storage.add_store('s-1', 'Xuhui store', 'north')
    storage.add_store('s-2', 'Pudong store', 'south')
    tokens = {'robot': storage.issue_robot_token('robot-1', 's-1'),
              'robot_other': storage.issue_robot_token('robot-2', 's-2'),
              'store_manager': storage.issue_staff_token('store_manager', 'ann', ['s-1']),
              'region': storage.issue_staff_token('region', 'rob', region='north'),
              'analyst': storage.issue_staff_token('analyst', 'hq')}
    storage.close()
    return tokens


def store_four_days(storage: Storage) -> None:
    """Four days of two robots' floors (robot-1 whole days, robot-2 a part) and the till's
    receipts of each day, as the HQ pages' tests read them."""
    from retail_platform import purchases
    for offset, day in enumerate(['2026-10-30', '2026-10-31', '2026-11-01', DAY]):
        store_events(storage, 'robot-1', store_floor_day(day, hour=11 + offset))
        store_events(storage, 'robot-2', store_floor_day(day)[:8])
        purchases.store_receipts(storage.engine, [
            (f'{day}:{i}', purchases.Receipt.model_validate(
                dict(r, receipt_id=f'{day}-{r["receipt_id"]}', member_id=r.get('member_id', ''),
                     code=r.get('code', ''))))
            for i, r in enumerate(receipts_for(day)[:1 + offset % 2])])
