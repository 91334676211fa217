"""Events replayed after their member was forgotten: the platform answers `duplicate` (the stored
tombstone is that event: same idempotency key, type, version and time), stores nothing twice
and never brings the member back; a forgotten member's event the platform had not seen yet (a
robot offline since before the forget) is stored as a tombstone only. Another event under the
same id is still `event_id_reused`. On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import create_app, export_events
from retail_platform.storage import Storage

ADMIN_H = {'Authorization': f'Bearer {ADMIN}'}


def event(event_id: str, seq: int, customer: str = 'm-7', **changes) -> dict:
    return dict({'event_id': event_id, 'seq': seq, 'type': 'guide', 'version': 1,
                 'customer': customer, 'time': 1.75e9 + seq,
                 'data': {'zone': 'kitchen', 'status': 'started'}}, **changes)


@pytest.fixture
def robot(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token('robot-1', 's-1')
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        def send(*events: dict) -> list[dict]:
            answer = client.post('/v1/robots/robot-1/events', json={'events': list(events)},
                                 headers={'Authorization': f'Bearer {token}'})
            assert answer.status_code == 200, answer.text
            return answer.json()['results']
        yield client, send
        client.app.state.storage.close()


def stored(target: str) -> dict[str, dict]:
    return {e['event_id']: e for e in export_events(target, 'robot-1')}


def test_a_replay_after_forget_is_a_duplicate_and_brings_nothing_back(robot, engine_target):
    client, send = robot
    assert [r['status'] for r in send(event('e-1', 1), event('e-2', 2, customer='m-8'))] == \
        ['accepted', 'accepted']
    assert client.post('/v1/admin/members/m-7/forget', headers=ADMIN_H).status_code == 200
    # the robot had not heard of the forget yet: it re-sends its batch (a lost answer), then
    # uploads a later event of the member from its outbox
    results = send(event('e-1', 1), event('e-2', 2, customer='m-8'), event('e-3', 3))
    assert [r['status'] for r in results] == ['duplicate', 'duplicate', 'accepted'], results
    # and the re-send of that one too
    assert [r['status'] for r in send(event('e-3', 3))] == ['duplicate']
    rows = stored(engine_target)
    assert sorted(rows) == ['e-1', 'e-2', 'e-3']               # nothing stored twice
    for gone in ('e-1', 'e-3'):                                # nothing of the member
        assert rows[gone]['customer'] == '' and rows[gone]['data'] == {'forgotten': True}
    assert rows['e-2']['customer'] == 'm-8'                    # other members untouched
    assert 'm-7' not in str(rows)


@pytest.mark.parametrize('changes', [{'type': 'greeting', 'data': {'member': True}},
                                     {'time': 1.76e9}, {'version': 2}])
def test_another_event_under_a_forgotten_events_id_is_still_refused(robot, changes):
    client, send = robot
    assert send(event('e-1', 1))[0]['status'] == 'accepted'
    assert client.post('/v1/admin/members/m-7/forget', headers=ADMIN_H).status_code == 200
    result = send(event('e-1', 1, **changes))[0]
    assert result['status'] == 'rejected'
    assert result['reason'].startswith(('event_id_reused', 'events[0]')), result
