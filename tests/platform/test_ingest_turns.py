"""A backlog draining does not hold live traffic back: an API process stores its large batches
(decoded body over LARGE_BATCH_BYTES: the uploader's 500-event batches) one at a time, and a
small batch (a live robot's few events) is answered while large ones are being stored or wait
for their turn. Both engines; every batch is still stored exactly once."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import LARGE_AT_ONCE, LARGE_BATCH_BYTES, create_app
from retail_platform.storage import Storage

ROBOTS = ('robot-a', 'robot-b', 'robot-c', 'robot-live')


def events(robot: str, count: int, pad: int = 0) -> bytes:
    return json.dumps({'events': [
        {'event_id': f'{robot}-{seq}', 'seq': seq, 'type': 'dialogue_turn', 'version': 1,
         'customer': 'p-1', 'time': 1.75e9 + seq,
         'data': {'intent': 'find_product', 'language': 'zh', 'confidence': 0.9,
                  'text': 'x' * pad}}
        for seq in range(count)]}).encode()


@pytest.fixture
def served(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    tokens = {robot: storage.issue_robot_token(robot, 's-1') for robot in ROBOTS}
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, tokens
        client.app.state.storage.close()
    storage.close()


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.01)


def test_large_batches_take_turns_and_a_live_batch_goes_ahead(served):
    client, tokens = served
    storage = client.app.state.storage
    real = storage.store_events
    release = threading.Event()
    inside: list[str] = []
    peak = [0]
    lock = threading.Lock()

    def held(robot_id, items, token=None):        # holds large batches until released
        large = len(items) > 50
        if large:
            with lock:
                inside.append(robot_id)
                peak[0] = max(peak[0], len(inside))
            release.wait(60)
        try:
            return real(robot_id, items, token)
        finally:
            if large:
                with lock:
                    inside.remove(robot_id)
    storage.store_events = held

    def post(robot: str, body: bytes):
        return client.post(f'/v1/robots/{robot}/events', content=body,
                           headers={'Authorization': f'Bearer {tokens[robot]}',
                                    'Content-Type': 'application/json'})
    large = {robot: events(robot, 200, pad=300) for robot in ('robot-a', 'robot-b', 'robot-c')}
    assert all(len(body) > LARGE_BATCH_BYTES for body in large.values())
    with ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(post, robot, body) for robot, body in large.items()]
        turns = client.app.state.large_batches
        wait_until(lambda: len(inside) == LARGE_AT_ONCE and turns.waiting == 3 - LARGE_AT_ONCE,
                   'one large batch stored while the others wait their turn')
        live = post('robot-live', events('robot-live', 5))     # answered while the drain waits
        assert live.status_code == 200, live.text
        assert live.json()['stored'] == 5
        assert len(inside) == LARGE_AT_ONCE and not release.is_set()
        release.set()
        answers = [future.result(timeout=60) for future in pending]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()['stored'] for a in answers] == [200, 200, 200]
    assert peak[0] == LARGE_AT_ONCE
    assert turns.waiting == 0
    again = post('robot-a', large['robot-a'])                  # the same batch: duplicates
    assert again.json()['duplicates'] == 200 and again.json()['stored'] == 0
