"""A store's events read page by page (`GET /v1/stores/{store}/events?after=<cursor>`) lose
nothing when batches commit out of order: the first batch to start commits after a second one
(two robots of one store uploading at once). A cursor on received_at (the platform's clock when
a batch arrived) skipped the late batch for good; the cursor is now a position in commit order.
On both engines; on PostgreSQL the late batch's transaction is really still open while the
second one commits and the reader reads."""
from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import check_event, create_app
from retail_platform.storage import Storage

EVENT = {'type': 'guide', 'version': 1, 'customer': '', 'time': 1.75e9,
         'data': {'zone': 'kitchen', 'status': 'started'}}


def events(prefix: str, n: int) -> list[dict]:
    return [dict(EVENT, event_id=f'{prefix}-{i}', seq=i + 1, time=1.75e9 + i) for i in range(n)]


@pytest.fixture
def store(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    tokens = {r: storage.issue_robot_token(r, 's-1') for r in ('robot-a', 'robot-b')}
    manager = storage.issue_staff_token('store_manager', 'ann', ['s-1'])
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, tokens, {'Authorization': f'Bearer {manager}'}
        client.app.state.storage.close()


def read_all(client: TestClient, headers: dict, after: str, limit: int) -> tuple[list[str], str]:
    seen: list[str] = []
    for _ in range(1000):
        answer = client.get('/v1/stores/s-1/events', headers=headers,
                            params={'after': after, 'limit': limit})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        if not page['events']:
            return seen, after
        seen += [e['event_id'] for e in page['events']]
        after = page['next']
    raise AssertionError('the reader never reached the end')


@pytest.mark.parametrize('limit', [1, 7, 1000])
def test_a_batch_that_commits_late_is_not_skipped(store, engine_target, limit):
    client, tokens, manager = store
    storage: Storage = client.app.state.storage
    late = events('late', 10)
    early = events('early', 10)
    started = time.time()
    rows = [('robot-a', r.event_id, r.time, r.seq, 's-1', r.type, r.version, r.customer,
             r.data, started)                           # in the order of schema.EVENT_COLUMNS
            for r in (check_event(e, i) for i, e in enumerate(late))]
    answers: list = []
    seen: list[str] = []
    after = ''
    with storage.engine.connect() as c:
        with c.begin():
            # robot A's batch is being written (its received_at taken first), not yet committed
            storage._insert_events(c, rows)
            time.sleep(0.01)
            # robot B's batch comes later and (PostgreSQL) commits first
            uploader = threading.Thread(target=lambda: answers.append(client.post(
                '/v1/robots/robot-b/events', json={'events': early},
                headers={'Authorization': f'Bearer {tokens["robot-b"]}'})))
            uploader.start()
            if storage.postgresql:          # SQLite: B waits for A's write lock
                uploader.join(timeout=60)
                assert answers and answers[0].json()['acked'] == 10
                # a reader pages now: it must not pass a position A's batch can still take
                seen, after = read_all(client, manager, after, limit)
        # A commits
    uploader.join(timeout=60)
    assert answers and answers[0].json()['acked'] == 10
    more, after = read_all(client, manager, after, limit)
    seen += more
    assert sorted(seen) == sorted(e['event_id'] for e in late + early), \
        f'the reader lost {sorted(set(e["event_id"] for e in late + early) - set(seen))}'
    assert len(seen) == len(set(seen)), 'the reader got an event twice'
    # and nothing more comes after the end
    assert read_all(client, manager, after, limit)[0] == []


@pytest.mark.parametrize('cursor', ['x', '1.5', '1:2', '-1:2:r', '99999999999999999999:1:r',
                                    '1:2:' + 'r' * 65])
def test_a_cursor_the_platform_did_not_give_is_refused(store, cursor):
    client, _, manager = store
    answer = client.get('/v1/stores/s-1/events', headers=manager, params={'after': cursor})
    assert answer.status_code == 422
    assert len(answer.json()['detail'].splitlines()) == 1
