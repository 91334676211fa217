"""The funnel off the request path (issue 23): the serve process's background refresher
(background.py) recomputes only dirty store-days and the API only reads rollups; a store
offline for a week, uploading through the real API with the refresher running, ends with the
numbers of a store that was never offline; `retailbot platform refresh-funnel` does the same
from a timer; rollups of an older definitions version are recomputed; the campaign metrics
(definitions 2) from offers, acceptances and the member's receipts."""
from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from loop_support import DAY, chain, event, receipts_for, store_floor_day
from platform_support import ADMIN, platform_cli
from retail_platform import funnel
from retail_platform import loop_schema as lt
from retail_platform.app import create_app
from retail_platform.funnel import day_bounds
from retail_platform.storage import Storage
from rostest_support import wait_for

DAYS = [f'2026-11-{d:02d}' for d in range(2, 9)]
A = {'Authorization': f'Bearer {ADMIN}'}


@pytest.fixture(params=['sqlite', 'postgresql'])
def two_databases(request, tmp_path):
    if request.param == 'sqlite':
        return str(tmp_path / 'a.sqlite3'), str(tmp_path / 'b.sqlite3')
    cluster, template = request.getfixturevalue('pg_cluster'), request.getfixturevalue('pg_template')
    return tuple(cluster.url(cluster.new_database(template=template)) for _ in range(2))


def _plan() -> dict[str, tuple[list[dict], str]]:
    out = {}
    for d in DAYS:
        receipts = [dict(r, receipt_id=f'{d}-{r["receipt_id"]}') for r in receipts_for(d)]
        out[d] = (store_floor_day(d), '\n'.join(json.dumps(r) for r in receipts) + '\n')
    return out


def _refreshed_after(client, moment: float) -> bool:
    """The background refresher finished a run that started after `moment`."""
    at = client.get('/v1/funnel', headers=A).json()['refreshed_at']
    return at is not None and at > moment


def _upload(client, robot: dict, events: list[dict], receipts: str) -> None:
    if events:
        answer = client.post('/v1/robots/robot-1/events', json={'events': events}, headers=robot)
        assert answer.status_code == 200 and answer.json()['rejected'] == 0, answer.text
    if receipts:
        answer = client.post('/v1/stores/s-1/receipts', content=receipts.encode(), headers=A)
        assert answer.status_code == 200 and answer.json()['bad'] == 0, answer.text


def test_a_store_offline_for_a_week_ends_with_the_same_numbers_through_the_api(two_databases):
    """A: each day uploaded that day, the refresher rolling it up before the next; B: offline a
    week, then one receipt, the events newest day first, the other receipts. Both served by the
    app with its background refresher; the API's rollups end identical."""
    plan = _plan()
    results = []
    for target, late in zip(two_databases, (False, True)):
        tokens = chain(target)
        robot = {'Authorization': f'Bearer {tokens["robot"]}'}
        with TestClient(create_app(target, ADMIN, funnel_refresh_s=0.2),
                        raise_server_exceptions=False) as client:
            if not late:
                for d in DAYS:
                    _upload(client, robot, *plan[d])
                    moment = time.time()
                    wait_for(lambda: _refreshed_after(client, moment), 60, f'the rollup of {d}')
            else:
                lines = [line for d in reversed(DAYS) for line in plan[d][1].splitlines()]
                _upload(client, robot, [], lines[0] + '\n')
                for d in reversed(DAYS):
                    _upload(client, robot, plan[d][0], '')
                _upload(client, robot, [], '\n'.join(lines[1:]) + '\n')
            moment = time.time()
            wait_for(lambda: _refreshed_after(client, moment), 60, 'the last rollup')
            answer = client.get('/v1/stores/s-1/funnel', headers=A,
                                params={'from': DAYS[0], 'to': DAYS[-1]}).json()
            client.app.state.storage.close()
        results.append(answer['days'])
    assert json.dumps(results[0], sort_keys=True) == json.dumps(results[1], sort_keys=True)
    assert len(results[0]) == 7 and all(r['purchased'] == 2 for r in results[0])


def test_the_api_only_reads_and_the_command_refreshes_from_a_timer(tmp_path):
    target = str(tmp_path / 'p.sqlite3')
    tokens = chain(target)
    robot = {'Authorization': f'Bearer {tokens["robot"]}'}
    with TestClient(create_app(target, ADMIN, funnel_refresh_s=0),
                    raise_server_exceptions=False) as client:
        _upload(client, robot, store_floor_day(), _plan()[DAY][1])
        before = client.get('/v1/stores/s-1/funnel', headers=A, params={'from': DAY, 'to': DAY})
        assert before.json()['days'] == [] and before.json()['refreshed_at'] is None
        first = platform_cli('refresh-funnel', '--database', target, '--json')
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)['recomputed'] >= 1
        after = client.get('/v1/stores/s-1/funnel', headers=A, params={'from': DAY, 'to': DAY}).json()
        assert after['days'][0]['purchased'] == 2 and after['refreshed_at'] is not None
        again = platform_cli('refresh-funnel', '--database', target, '--json')
        assert json.loads(again.stdout)['recomputed'] == 0          # nothing dirty: nothing redone
        client.app.state.storage.close()
    bad = platform_cli('refresh-funnel', '--database', target, '--every', '-1')
    assert bad.returncode == 2 and bad.stderr.count('\n') == 1 and '--every' in bad.stderr


def test_rollups_of_an_older_definitions_version_are_recomputed(tmp_path):
    target = str(tmp_path / 'p.sqlite3')
    chain(target)
    storage = Storage(target)
    try:
        from loop_support import store_events
        store_events(storage, 'robot-1', store_floor_day())
        assert funnel.refresh(storage.engine) >= 1
        with storage.engine.begin() as c:
            c.execute(lt.funnel_daily.update().values(definitions=1, metrics='{"day": "old"}'))
        assert funnel.refresh(storage.engine) >= 1
        [row] = funnel.read(storage.engine, ['s-1'], DAY, DAY)
        assert row['definitions'] == funnel.DEFINITIONS == 2 and row['engaged'] == 2
    finally:
        storage.close()


def _campaign_day(receipts: list[funnel.Receipt]) -> dict:
    t0 = day_bounds(DAY)[0] + 11 * 3600
    raw = [event('campaign_offered', t0, {'campaign_id': 'tv-week', 'skus': ['TV-85'], 'language': 'zh'}, 'm-1'),
           event('campaign_accepted', t0 + 5, {'campaign_id': 'tv-week'}, 'm-1'),
           event('campaign_offered', t0 + 60, {'campaign_id': 'tv-week', 'skus': ['TV-85'], 'language': 'en'}, 'm-2'),
           event('campaign_offered', t0 + 90, {'campaign_id': 'upgrade', 'skus': ['PH-1']}, ''),   # forgotten
           ]
    events = [funnel.Event('robot-1', e['seq'], e['time'], e['type'], e['customer'], e['data']) for e in raw]
    return funnel.compute_store_day(DAY, events, receipts, [], ['robot-1'])


@pytest.mark.parametrize('receipt, purchases', [
    (('m-1', 3, 'TV-85', 1), 1),            # the member bought what was offered, 3 days later
    (('m-1', 8, 'TV-85', 1), 0),            # after the 7-day window
    (('m-1', -1, 'TV-85', 1), 0),           # before the offer
    (('m-1', 3, 'PH-1', 1), 0),             # something else
    (('m-1', 3, 'TV-85', -1), 0),           # a return
    (('m-9', 3, 'TV-85', 1), 0),            # another member
    (('', 3, 'PH-1', 1), 0),                # the forgotten member's offer never converts
])
def test_campaign_uptake_and_purchases(receipt, purchases):
    member, days, sku, qty = receipt
    when = day_bounds(DAY)[0] + 11 * 3600 + days * 86400 + 30
    day = _campaign_day([funnel.Receipt('r-1', when, member, '', ((sku, qty, 100.0),))])
    assert (day['campaign_offers'], day['campaign_accepted'], day['campaign_purchases']) == (3, 1, purchases)
    assert day['campaign_uptake'] == round(1 / 3, 4)
    assert day['campaigns']['tv-week'] == {'offers': 2, 'accepted': 1, 'purchases': purchases}
    total = funnel.total([day, day])
    assert total['campaigns']['tv-week']['offers'] == 4 and total['campaigns']['upgrade']['uptake'] == 0.0
    assert funnel.total([])['campaign_uptake'] is None


def test_csv_and_parquet_exports_hold_the_same_store_days_typed(tmp_path):
    import io

    import pyarrow.parquet as pq
    target = str(tmp_path / 'p.sqlite3')
    tokens = chain(target)
    robot = {'Authorization': f'Bearer {tokens["robot"]}'}
    with TestClient(create_app(target, ADMIN, funnel_refresh_s=0),
                    raise_server_exceptions=False) as client:
        _upload(client, robot, store_floor_day(), _plan()[DAY][1])
        storage = Storage(target)
        funnel.refresh(storage.engine)
        storage.close()
        params = {'from': DAY, 'to': DAY}
        got = client.get('/v1/funnel/export', headers=A, params={**params, 'format': 'parquet'})
        assert got.status_code == 200 and got.headers['content-type'] == 'application/vnd.apache.parquet'
        table = pq.read_table(io.BytesIO(got.content))
        csv_text = client.get('/v1/funnel/export', headers=A, params=params).text
        assert csv_text.splitlines()[0].split(',') == table.column_names
        row = table.to_pylist()[0]
        assert str(row['day']) == DAY and row['purchased'] == 2 and row['vip_show_rate'] is None
        assert table.schema.field('purchased').type == 'int64'
        assert table.schema.metadata[b'definitions'] == str(funnel.DEFINITIONS).encode()
        for role, status in (('robot', 403), ('store_manager', 200), ('region', 200), ('analyst', 200)):
            answer = client.get('/v1/funnel/export', params={**params, 'format': 'parquet'},
                                headers={'Authorization': f'Bearer {tokens[role]}'})
            assert answer.status_code == status, (role, answer.text)
        other = client.get('/v1/funnel/export', params={**params, 'format': 'parquet'},
                           headers={'Authorization': f'Bearer {tokens["robot_other"]}'})
        assert other.status_code == 403
        assert client.get('/v1/funnel/export', headers=A, params={'format': 'xlsx'}).status_code == 422
        client.app.state.storage.close()


def test_the_refreshers_batched_path_equals_recomputing_each_day(engine_target):
    """refresh() reads a store's rows once for all its dirty days; each rollup and its inputs'
    fingerprint must be what the one-day path (`recompute`, `fingerprint` in SQL) gives."""
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        from loop_support import store_events
        from retail_platform import purchases
        for d in DAYS:
            store_events(storage, 'robot-1', store_floor_day(d))
            purchases.store_receipts(storage.engine, [('x', purchases.Receipt.model_validate(
                dict(r, receipt_id=f'{d}-{r["receipt_id"]}', member_id=r.get('member_id', ''),
                     code=r.get('code', '')))) for r in receipts_for(d)])
        assert funnel.refresh(storage.engine) >= len(DAYS)
        batched = {r['day']: r for r in funnel.read(storage.engine, ['s-1'], DAYS[0], DAYS[-1])}
        f = lt.funnel_daily.c
        import sqlalchemy as sa
        with storage.engine.connect() as c:
            kept = dict(c.execute(sa.select(f.day, f.inputs).where(f.store_id == 's-1')).all())
            prints = {d: funnel.fingerprint(c, 's-1', d) for d in DAYS}
        assert all(kept[d] == prints[d] for d in DAYS)
        for d in DAYS:
            one = funnel.recompute(storage.engine, 's-1', d)
            assert json.dumps(one, sort_keys=True) == json.dumps(
                {k: v for k, v in batched[d].items() if k != 'store_id'}, sort_keys=True)
        assert funnel.refresh(storage.engine) == 0          # nothing changed: nothing redone
    finally:
        storage.close()


def test_the_serve_refresher_spaces_its_runs_by_their_cost_and_keeps_the_numbers(engine_target):
    """The serve processes' refresher (refresh_once with SPACING) waits SPACING times its last
    run's duration (recorded in loop_state, so every process agrees) after that run ended:
    batches arriving meanwhile are folded into the next recompute of their store-day, which
    ends with exactly the numbers a from-scratch recompute gives (on both engines)."""
    import sqlalchemy as sa
    from loop_support import store_events
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        events = store_floor_day(DAYS[0])
        half = len(events) // 2
        store_events(storage, 'robot-1', events[:half])
        assert funnel.refresh_once(storage.engine, spacing=funnel.SPACING) >= 1
        first = funnel.read(storage.engine, ['s-1'], DAYS[0], DAYS[0])
        state = lt.loop_state.c
        with storage.engine.begin() as c:       # as if that run had taken 100 s, just now
            c.execute(lt.loop_state.update().where(state.key == 'funnel_cost').values(value=100.0))
            c.execute(lt.loop_state.update().where(state.key == 'funnel_run')
                      .values(value=time.time() - 100.0))
        store_events(storage, 'robot-1', events[half:])
        assert not funnel.due(storage.engine, funnel.SPACING)
        assert funnel.refresh_once(storage.engine, spacing=funnel.SPACING) == 0   # not yet
        assert funnel.read(storage.engine, ['s-1'], DAYS[0], DAYS[0]) == first
        assert funnel.due(storage.engine, funnel.SPACING, now=time.time() + funnel.SPACING * 100)
        assert funnel.due(storage.engine, 0.0)      # the command's timer: never held back
        assert funnel.refresh_once(storage.engine) >= 1
        rolled = funnel.read(storage.engine, ['s-1'], DAYS[0], DAYS[0])[0]
        with storage.engine.connect() as c:
            cost = c.execute(sa.select(state.value).where(state.key == 'funnel_cost')).scalar()
        assert 0 <= cost < 100
        fresh = funnel.recompute(storage.engine, 's-1', DAYS[0])
        assert json.dumps(fresh, sort_keys=True) == json.dumps(
            {k: v for k, v in rolled.items() if k != 'store_id'}, sort_keys=True)
        assert rolled != first[0] and rolled['appeared'] > first[0]['appeared']
    finally:
        storage.close()
