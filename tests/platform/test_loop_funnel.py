"""The funnel (docs/metrics.md): the pure store-day function on a store floor's day, undefined
rates null, the same numbers whatever order and whenever the events and receipts arrive (a store
offline for a week), and the API per store and chain-wide with its roles — on SQLite and
PostgreSQL."""
from __future__ import annotations

import json
import random

import pytest
from fastapi.testclient import TestClient

from loop_support import DAY, chain, receipts_for, store_events, store_floor_day
from platform_support import ADMIN
from retail_platform import funnel, purchases
from retail_platform.app import create_app
from retail_platform.storage import Storage
from rostest_support import wait_for


def _pure(events: list[dict], receipts: list[dict]) -> dict:
    evs = [funnel.Event('robot-1', e['seq'], e['time'], e['type'], e['customer'], e['data'])
           for e in events]
    rcs = [funnel.Receipt(r['receipt_id'], r['time'], r.get('member_id', ''), r.get('code', ''),
                          tuple((x['sku'], x['qty'], x['price_cny']) for x in r['lines']))
           for r in receipts]
    return funnel.compute_store_day(DAY, evs, rcs, [], ['robot-1'])


def test_a_store_floor_day_counts_each_stage_and_attributes_member_and_code_purchases():
    day = _pure(store_floor_day(), receipts_for())
    assert (day['appeared'], day['conversations'], day['engaged'], day['need_captured'],
            day['recommended'], day['guided'], day['purchased']) == (3, 3, 2, 2, 2, 1, 2)
    # r-1: the member's TV; r-2: the anonymous customer's headphones by the screen's code (the
    # cable was not recommended); r-3 is another member's: not attributed
    assert day['attributed_revenue_cny'] == 9999 + 899
    assert day['conversion'] == 1.0 and day['guided_rate'] == 0.5
    assert (day['tours_started'], day['tours_finished'], day['tour_completion']) == (1, 1, 1.0)
    assert day['staff_assists'] == 1
    assert day['robots']['robot-1']['conversations'] == 3     # the tour and staff call: a third


def test_undefined_rates_are_null_never_zero():
    day = _pure([], [])
    for rate in funnel.RATES:
        if rate != 'availability':          # a known robot has opening hours
            assert day[rate] is None, rate
    assert day['availability'] == 0.0 and day['vip_show_rate'] is None
    assert funnel.total([])['conversion'] is None


def test_purchases_outside_the_window_or_without_a_recommended_product_do_not_count():
    receipts = receipts_for()
    late = dict(receipts[0], time=receipts[0]['time'] + (funnel.ATTRIBUTION_DAYS + 1) * 86400)
    other = dict(receipts[1], lines=[{'sku': 'CABLE', 'qty': 1, 'price_cny': 20.0}])
    day = _pure(store_floor_day(), [late, other])
    assert day['purchased'] == 0 and day['attributed_revenue_cny'] == 0
    assert day['conversion'] == 0.0          # defined (2 recommended), and zero


def test_order_of_arrival_does_not_change_the_numbers():
    events, receipts = store_floor_day(), receipts_for()
    expected = _pure(events, receipts)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(events)
        rng.shuffle(receipts)
        assert _pure(events, receipts) == expected


@pytest.fixture(params=['sqlite', 'postgresql'])
def two_databases(request, tmp_path):
    if request.param == 'sqlite':
        return str(tmp_path / 'a.sqlite3'), str(tmp_path / 'b.sqlite3')
    cluster, template = request.getfixturevalue('pg_cluster'), request.getfixturevalue('pg_template')
    return tuple(cluster.url(cluster.new_database(template=template)) for _ in range(2))


def test_a_store_offline_for_a_week_ends_with_the_numbers_it_would_have_had_online(two_databases):
    """Database A gets each day's events and receipts the same day (refreshing the rollups each
    time); database B gets the whole week late: one receipt first, then the events newest day
    first, then the other receipts. Both end with identical rollups."""
    _compare_online_offline(*two_databases)


def _compare_online_offline(online: str, offline: str) -> None:
    days = [f'2026-11-{d:02d}' for d in range(2, 9)]
    plan = {d: (store_floor_day(d), [dict(r, receipt_id=f'{d}-{r["receipt_id"]}')
                                     for r in receipts_for(d)]) for d in days}
    results = []
    for target, late in ((online, False), (offline, True)):
        chain(target)
        storage = Storage(target)
        try:
            if not late:
                for d in days:
                    events, receipts = plan[d]
                    store_events(storage, 'robot-1', events)
                    purchases.store_receipts(storage.engine, [('x', purchases.Receipt.model_validate(
                        dict(r, member_id=r.get('member_id', ''), code=r.get('code', ''))))
                        for r in receipts])
                    funnel.refresh(storage.engine)
            else:
                everything = [r for d in reversed(days) for r in plan[d][1]]
                purchases.store_receipts(storage.engine, [('x', purchases.Receipt.model_validate(
                    dict(r, member_id=r.get('member_id', ''), code=r.get('code', ''))))
                    for r in everything[:1]])
                funnel.refresh(storage.engine)
                for d in reversed(days):
                    store_events(storage, 'robot-1', plan[d][0])
                purchases.store_receipts(storage.engine, [('x', purchases.Receipt.model_validate(
                    dict(r, member_id=r.get('member_id', ''), code=r.get('code', ''))))
                    for r in everything[1:]])
                funnel.refresh(storage.engine)
            rows = funnel.read(storage.engine, None, days[0], days[-1])
            results.append(json.dumps(rows, sort_keys=True))
        finally:
            storage.close()
    assert results[0] == results[1]
    rows = json.loads(results[0])
    assert len(rows) == 7 and all(r['purchased'] == 2 for r in rows)


FUNNEL_ROLES = [
    # (path, {role: status})
    ('/v1/stores/s-1/funnel', {'robot': 403, 'store_manager': 200, 'region': 200, 'analyst': 200,
                               'admin': 200}),
    ('/v1/stores/s-2/funnel', {'robot': 403, 'store_manager': 403, 'region': 403, 'analyst': 200,
                               'admin': 200}),
    ('/v1/funnel', {'robot': 403, 'store_manager': 403, 'region': 200, 'analyst': 200,
                    'admin': 200}),
]


def _with_days(answer, purchased: int):
    """The answer once its rollups show `purchased` purchases (else None: wait)."""
    assert answer.status_code == 200, answer.text
    days = answer.json()['days']
    return answer if days and days[0]['purchased'] == purchased else None


@pytest.fixture
def api(engine_target):
    tokens = chain(engine_target)
    tokens['admin'] = ADMIN
    with TestClient(create_app(engine_target, ADMIN, funnel_refresh_s=0.2),
                    raise_server_exceptions=False) as client:
        yield client, tokens


def test_funnel_api_answers_each_role_as_its_scope_allows(api):
    client, tokens = api
    for path, expected in FUNNEL_ROLES:
        for role, status in expected.items():
            got = client.get(path, params={'from': DAY, 'to': DAY},
                             headers={'Authorization': f'Bearer {tokens[role]}'})
            assert got.status_code == status, (path, role, got.text)


def test_funnel_api_shows_uploaded_events_and_receipts_per_store_and_chain_wide(api):
    client, tokens = api
    robot = {'Authorization': f'Bearer {tokens["robot"]}'}
    answer = client.post('/v1/robots/robot-1/events', json={'events': store_floor_day()},
                         headers=robot)
    assert answer.status_code == 200 and answer.json()['rejected'] == 0, answer.text
    body = '\n'.join(json.dumps(r) for r in receipts_for()) + '\n'
    manager = {'Authorization': f'Bearer {tokens["store_manager"]}'}
    imported = client.post('/v1/stores/s-1/receipts', content=body.encode(), headers=manager)
    assert imported.json() == {'stored': 3, 'duplicate': 0, 'bad': 0, 'problems': []}
    # the rollups are refreshed off the request path (the app's background refresher, 0.2 s)
    got = wait_for(lambda: _with_days(client.get('/v1/stores/s-1/funnel', headers=manager,
                                                 params={'from': DAY, 'to': DAY}), 2),
                   30, 'the refresher to roll up the day')
    assert got.json()['refreshed_at'] is not None
    day = got.json()['days'][0]
    assert (day['engaged'], day['recommended'], day['purchased']) == (2, 2, 2)
    hq = client.get('/v1/funnel', params={'from': DAY, 'to': DAY},
                    headers={'Authorization': f'Bearer {tokens["analyst"]}'}).json()
    assert hq['stores']['s-1']['purchased'] == 2 and hq['total']['conversion'] == 1.0
    region = client.get('/v1/funnel', params={'from': DAY, 'to': DAY},
                        headers={'Authorization': f'Bearer {tokens["region"]}'}).json()
    assert set(region['stores']) == {'s-1'}
    admin = {'Authorization': f'Bearer {ADMIN}'}
    assert client.get('/v1/funnel', params={'from': '2026-13-01'}, headers=admin).status_code == 422
    empty = client.get('/v1/funnel', params={'from': DAY, 'to': '2026-01-01'}, headers=admin)
    assert empty.status_code == 200 and empty.json()['stores'] == {}
    long = client.get('/v1/funnel', params={'from': '2020-01-01', 'to': '2026-01-01'},
                      headers=admin)
    assert long.status_code == 422 and '366 days' in long.json()['detail']   # never shortened
