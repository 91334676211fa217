"""Forgetting a member on the platform (SQLite and PostgreSQL) ends her profile and every event
naming her, also events a robot uploads between the request and its confirmation; members are
imported from a history CSV in one transaction (`retailbot platform member-import`), a bad row
refusing the whole file with its line."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from loop_support import chain, event
from platform_support import ADMIN, platform_cli
from retail_platform.app import create_app, export_events
from retail_platform.chain import Chain


@pytest.fixture
def api(engine_target):
    tokens = chain(engine_target)
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, tokens, engine_target


def _upload(client, token: str, events: list[dict]) -> None:
    got = client.post('/v1/robots/robot-1/events', json={'events': events},
                      headers={'Authorization': f'Bearer {token}'})
    assert got.status_code == 200 and got.json()['rejected'] == 0, got.text


def test_forget_ends_the_profile_and_every_event_naming_the_member(api):
    client, tokens, target = api
    robot = {'Authorization': f'Bearer {tokens["robot"]}'}
    admin = {'Authorization': f'Bearer {ADMIN}'}
    at = 1.78e9
    _upload(client, tokens['robot'], [
        event('member_said', at, {'category': '笔记本', 'max_price': 6000}, 'm-0001'),
        event('recommendation', at + 5, {'skus': ['NB-1']}, 'm-0001'),
        event('recommendation', at + 6, {'skus': ['NB-2']}, 'm-0002')])
    assert client.put('/v1/admin/members/m-0001', headers=admin, json={
        'consent': True, 'home_store': 's-1', 'history': []}).status_code == 200
    # a robot reads the profile of a member it holds (tests/platform/test_profile_tenancy.py)
    assert client.get('/v1/robots/robot-1/members/m-0001', headers=robot).status_code == 200
    assert client.get('/v1/members/m-0001/profile', headers=robot).status_code == 200
    status = client.post('/v1/admin/members/m-0001/forget', headers=admin).json()
    assert status['pending'] == ['robot-1']
    assert client.get('/v1/members/m-0001/profile', headers=robot).status_code == 404
    # an event the robot sent before it had cleared its outbox, then its confirmation
    _upload(client, tokens['robot'], [event('recommendation', at + 7, {'skus': ['NB-3']}, 'm-0001')])
    assert client.post('/v1/robots/robot-1/forgotten/m-0001', headers=robot,
                       json={'detail': 'cache deleted'}).status_code == 200
    stored = list(export_events(target, 'robot-1'))
    assert len(stored) == 3, 'her statements are gone, her other events kept without her id'
    assert [e['customer'] for e in stored].count('m-0002') == 1
    assert not [e for e in stored if e['customer'] == 'm-0001' or 'm-0001' in str(e['data'])]
    assert client.get('/v1/admin/members/m-0001/forget', headers=admin).json()['complete']


def test_member_import_stores_members_in_one_go_and_refuses_a_bad_file_whole(engine_target, tmp_path):
    chain(engine_target)
    good = tmp_path / 'history.csv'
    good.write_text('customer_id,sku,ts,qty,price_cny\n'
                    'm-1,P-1,2026-11-01T10:00:00Z,1,10.5\n'
                    'm-1,P-2,2026-11-02T10:00:00Z,2,3\n'
                    'm-2,P-1,2026-11-03T10:00:00Z,1,10.5\n', encoding='utf-8')
    done = platform_cli('member-import', '--database', engine_target, '--history', str(good),
                        '--home-store', 's-1', '--consent')
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('2 member(s) stored with consent')
    from retail_platform.storage import Storage
    storage = Storage(engine_target)
    try:
        m1 = Chain(storage.engine).member_on_demand('robot-1', 'm-1')
    finally:
        storage.close()
    assert m1['consent'] and m1['home_store'] == 's-1' and [p['qty'] for p in m1['history']] == [1, 2]
    for body, problem in (('customer_id,sku\n', 'line 1 must be'),
                          ('customer_id,sku,ts,qty,price_cny\nm-3,P-1,t,1,1\nm-3,P-1,t,x,1\n', 'line 3'),
                          ('customer_id,sku,ts,qty,price_cny\nm/3,P-1,t,1,1\n', 'line 2'),
                          ('customer_id,sku,ts,qty,price_cny\nm-3,P-1,t,1,nan\n', 'line 2'),
                          ('customer_id,sku,ts,qty,price_cny\nm-3,P-1,t,1\n', 'line 2: must have 5 fields')):
        bad = tmp_path / 'bad.csv'
        bad.write_text(body, encoding='utf-8')
        refused = platform_cli('member-import', '--database', engine_target, '--history', str(bad))
        assert refused.returncode == 2 and problem in refused.stderr, (body, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1
    unknown = platform_cli('member-import', '--database', engine_target, '--history', str(good),
                           '--home-store', 's-nowhere')
    assert unknown.returncode == 2 and 's-nowhere' in unknown.stderr


def test_forget_reaches_her_receipts_and_a_later_import_of_them(api):
    """Her till receipts keep the purchases but lose her id, in the forget's transaction; a
    receipt naming her that is imported (again or for the first time) after the forget is stored
    without her id, and the same receipt again is a duplicate, not a refusal."""
    client, tokens, target = api
    admin = {'Authorization': f'Bearer {ADMIN}', 'Content-Type': 'text/plain'}
    manager = {'Authorization': f'Bearer {tokens["store_manager"]}'}

    def receipt(rid: str, member: str) -> str:
        return json.dumps({'receipt_id': rid, 'store_id': 's-1', 'time': 1.78e9,
                           'member_id': member, 'lines': [{'sku': 'NB-1', 'qty': 1,
                                                           'price_cny': 10}]}) + '\n'
    got = client.post('/v1/stores/s-1/receipts', headers=admin,
                      content=receipt('rc-1', 'm-0001') + receipt('rc-2', 'm-0002'))
    assert got.status_code == 200 and got.json()['stored'] == 2, got.text
    assert client.post('/v1/admin/members/m-0001/forget', headers=admin).status_code == 200

    def members() -> dict:
        got = client.get('/v1/stores/s-1/receipts?from=0&to=2e9', headers=manager)
        assert got.status_code == 200, got.text
        return {r['receipt_id']: r['member_id'] for r in got.json()['receipts']}
    assert members() == {'rc-1': None, 'rc-2': 'm-0002'}
    again = client.post('/v1/stores/s-1/receipts', headers=admin,
                        content=receipt('rc-1', 'm-0001') + receipt('rc-3', 'm-0001'))
    assert again.json() == {'stored': 1, 'duplicate': 1, 'bad': 0, 'problems': []}, again.text
    assert members() == {'rc-1': None, 'rc-2': 'm-0002', 'rc-3': None}
