"""A robot (or a stuck button) cannot flood the store page with staff calls: one open call per
robot, a repeat folded into it and answered with the same call id (idempotent for every call_id
it sent), at most one fold per REPEAT_EVERY_S (429 with Retry-After beyond), and the robot's
FleetLink honours the Retry-After without holding back its heartbeat. Audit fields name who
acted (the staff credential's name), never a role alone or a token. SQLite and PostgreSQL."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform import schema as t
from retail_platform.app import create_app
from retail_platform.storage import Storage

A = {'Authorization': f'Bearer {ADMIN}'}
REPEAT_EVERY_S = 5.0        # retail_platform.fleet.REPEAT_EVERY_S, the documented bound


@pytest.fixture
def platform(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    robots = {r: {'Authorization': f'Bearer {storage.issue_robot_token(r, "s-1")}'}
              for r in ('r-1', 'r-2')}
    tokens = {'ann': storage.issue_staff_token('store_manager', 'ann', ['s-1']),
              'bob': storage.issue_staff_token('store_manager', 'bob', ['s-1'])}
    storage.close()
    client = TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False)
    try:
        yield client, robots, tokens
    finally:
        client.app.state.storage.close()


def _call(client, robots, robot: str, call_id: str, wanted: str = 'a kettle'):
    return client.post(f'/v1/robots/{robot}/staff-calls', headers=robots[robot],
                       json={'call_id': call_id, 'reason': 'product_help', 'wanted': wanted})


def _back_in_time(client, seconds: float) -> None:
    """The open calls' last fold happened `seconds` earlier (time passed)."""
    with client.app.state.storage.engine.begin() as c:
        c.execute(t.staff_calls.update().values(
            created_at=t.staff_calls.c.created_at - seconds,
            updated_at=t.staff_calls.c.updated_at - seconds))


def test_a_stuck_button_is_one_call_on_the_store_page(platform):
    client, robots, tokens = platform
    first = _call(client, robots, 'r-1', 'c-0', 'a kettle')
    assert first.status_code == 200 and first.json()['duplicate'] is False
    call = first.json()['id']
    # a repeat at once: refused with Retry-After (the robot keeps it and sends it later)
    again = _call(client, robots, 'r-1', 'c-1', 'a kettle please')
    assert again.status_code == 429, again.text
    assert 1 <= int(again.headers['retry-after']) <= REPEAT_EVERY_S
    for k in range(1, 30):               # a stuck button: a call every REPEAT_EVERY_S
        _back_in_time(client, REPEAT_EVERY_S)
        folded = _call(client, robots, 'r-1', f'c-{k}', f'a kettle ({k})')
        assert folded.status_code == 200, folded.text
        assert folded.json() == {'id': call, 'duplicate': False, 'folded': True}
    # any call_id it sent, resent (a lost acknowledgement), is answered with the same call
    for k in (0, 1, 17, 29):
        resent = _call(client, robots, 'r-1', f'c-{k}', 'a kettle' if k == 0 else f'a kettle ({k})')
        assert resent.json() == {'id': call, 'duplicate': True}, (k, resent.text)
    reused = _call(client, robots, 'r-1', 'c-17', 'something else')
    assert reused.status_code == 409 and 'call_id_reused' in reused.text
    # another robot's call is its own
    assert _call(client, robots, 'r-2', 'c-0').json()['id'] != call

    calls = client.get('/v1/stores/s-1/staff-calls',
                       headers={'Authorization': f'Bearer {tokens["ann"]}'}).json()
    mine = [c for c in calls if c['robot_id'] == 'r-1']
    assert len(mine) == 1 and mine[0]['repeats'] == 29
    assert mine[0]['wanted'] == 'a kettle (29)'          # what the customer wants now
    assert client.post('/hq/login', data={'token': tokens['ann']},
                       headers={'Origin': 'http://testserver'}).status_code in (200, 303)
    page = client.get('/hq/stores/s-1').text
    rows = re.findall(r'<tr id="call-(\d+)">', page)
    assert sorted(rows) == sorted(str(c['id']) for c in calls) and len(rows) == 2
    assert 'called 30 times' in page

    # once staff answered it, the robot's next call is a new one (a new customer)
    assert client.post(f'/v1/stores/s-1/staff-calls/{call}/reply',
                       headers={'Authorization': f'Bearer {tokens["ann"]}'},
                       json={'kind': 'answer', 'text': 'coming'}).status_code == 200
    fresh = _call(client, robots, 'r-1', 'c-new', 'a fan')
    assert fresh.status_code == 200 and fresh.json()['id'] != call


def test_the_robot_honours_retry_after_and_still_beats(platform, tmp_path):
    """FleetLink (the robot's, real) against the real app: a 429 keeps the call and sends
    nothing until its Retry-After; the call goes once that passed."""
    from retail_sync.fleet import Heartbeat, StaffCall
    from retail_sync.fleet_link import FleetLink, LinkError
    client, robots, _ = platform
    client.headers.update(robots['r-1'])
    link = FleetLink('http://testserver', '', 'r-1', tmp_path, client=client, log=lambda _: None)
    try:
        link.raise_call(StaffCall(call_id='b-1', reason='product_help', wanted='a kettle'))
        assert link.send_calls() == 1
        link.raise_call(StaffCall(call_id='b-2', reason='product_help', wanted='a kettle!'))
        with pytest.raises(LinkError) as refused:
            link.send_calls()
        assert refused.value.status == 429 and refused.value.retry_after >= 1
        assert [c.call_id for c in link.calls.waiting()] == ['b-2']       # kept
        sent = []
        client.event_hooks['request'].append(lambda request: sent.append(request.url.path))
        assert link.send_calls() == 0 and sent == []         # nothing before Retry-After
        assert link.heartbeat(Heartbeat(period_s=10)).state == 'ok'      # beats meanwhile
        _back_in_time(client, REPEAT_EVERY_S)
        link.calls_not_before = 0.0                          # its Retry-After has passed
        assert link.send_calls() == 1 and link.calls.waiting() == []
    finally:
        link.calls.close()


def test_audit_fields_name_who_acted_never_a_token(platform):
    client, robots, tokens = platform
    ann = {'Authorization': f'Bearer {tokens["ann"]}'}
    bob = {'Authorization': f'Bearer {tokens["bob"]}'}
    assert client.post('/v1/robots/r-1/heartbeat', headers=robots['r-1'],
                       json={'period_s': 10, 'localisation_lost': True}).status_code == 200
    task = client.get('/v1/stores/s-1/tasks', headers=ann).json()[0]['id']
    assert client.post(f'/v1/stores/s-1/tasks/{task}', headers=ann,
                       json={'action': 'acknowledge'}).json()['acknowledged_by'] == 'ann (store_manager)'
    done = client.post(f'/v1/stores/s-1/tasks/{task}', headers=bob, json={'action': 'resolve'}).json()
    assert done['resolved_by'] == 'bob (store_manager)'
    call = _call(client, robots, 'r-1', 'a-1').json()['id']
    assert client.post(f'/v1/stores/s-1/staff-calls/{call}/reply', headers=bob,
                       json={'kind': 'answer', 'text': 'coming'}).status_code == 200
    shown = client.get('/v1/stores/s-1/staff-calls', headers=ann).json()[0]
    assert shown['answered_by'] == 'bob (store_manager)'
    assert shown['messages'][0]['by'] == 'bob (store_manager)'
    # from the store page: the signed-in credential's name
    assert client.post('/v1/robots/r-2/heartbeat', headers=robots['r-2'],
                       json={'period_s': 10, 'localisation_lost': True}).status_code == 200
    page_task = [x for x in client.get('/v1/stores/s-1/tasks', headers=ann).json()
                 if x['robot_id'] == 'r-2'][0]['id']
    login = client.post('/hq/login', data={'token': tokens['ann']},
                        headers={'Origin': 'http://testserver'})
    assert login.status_code in (200, 303)
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get('/hq/stores/s-1').text).group(1)
    assert client.post(f'/hq/stores/s-1/tasks/{page_task}', data={'csrf': csrf, 'action': 'resolve'},
                       headers={'Origin': 'http://testserver'},
                       follow_redirects=False).status_code == 303
    resolved = [x for x in client.get('/v1/stores/s-1/tasks?all=true', headers=ann).json()
                if x['id'] == page_task][0]
    assert resolved['resolved_by'].startswith('ann (store_manager)')
    # a rollout records who started it (the serve credential: named as such)
    assert client.put('/v1/admin/fleet/groups/g', headers=A, json={'robots': ['r-1']}).status_code == 200
    version = client.post('/v1/admin/fleet/groups/g/desired', headers=A,
                          json={'settings': {}}).json()['version']
    rollout = client.post('/v1/admin/fleet/groups/g/rollouts', headers=A,
                          json={'version': version, 'soak_s': 1}).json()
    assert rollout['started_by'] == 'admin (serve token)'
    assert client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}',
                      headers=A).json()['started_by'] == 'admin (serve token)'
    # never a token anywhere in what was recorded
    with client.app.state.storage.engine.connect() as c:
        recorded = [str(v) for table in (t.fleet_tasks, t.staff_calls, t.staff_messages, t.rollouts)
                    for row in c.execute(sa.select(table)).all() for v in row]
    for token in (*tokens.values(), ADMIN):
        assert not any(token in value for value in recorded)
