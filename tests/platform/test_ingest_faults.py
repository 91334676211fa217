"""Durability, backpressure and faults of ingest, counting events before and after: acked means
on disk (SQLite synchronous=FULL in WAL mode; PostgreSQL synchronous_commit on); a store over its
budget gets 429 with Retry-After, and several API processes agree on it (the budget is in the
database); kill -9 of an API process mid-batch and an immediate PostgreSQL restart during ingest
lose nothing and store nothing twice when the robot re-sends what was not acknowledged."""
from __future__ import annotations

import gzip
import json
import os
import signal
import threading
import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from platform_support import ADMIN, start_server
from retail_platform.app import create_app, export_events
from retail_platform.storage import Budget, Storage
from rostest_support import stop_process


def events(start: int, count: int, robot_time: float = 1.75e9) -> list[dict]:
    return [{'event_id': f'e-{i}', 'seq': i, 'type': 'dialogue_turn', 'customer': f'p-{i % 50}',
             'time': robot_time + i, 'data': {
                 'intent': 'find_product', 'language': 'zh', 'confidence': 0.8,
                 'text': f'有没有华为 Mate 60 #{i}', 'products': [
                     {'sku': f'HW-{i}', 'price_cny': 5999.0, 'zone': 'phones'}]}}
            for i in range(start, start + count)]


def test_an_acknowledgement_means_the_commit_is_durable(engine_target):
    storage = Storage(engine_target)
    try:
        with storage.engine.connect() as connection:
            if storage.postgresql:
                assert connection.execute(sa.text('SHOW synchronous_commit')).scalar() == 'on'
                assert connection.execute(sa.text('SHOW fsync')).scalar() == 'on'
            else:
                assert connection.exec_driver_sql('PRAGMA journal_mode').scalar() == 'wal'
                assert connection.exec_driver_sql('PRAGMA synchronous').scalar() == 2   # FULL
    finally:
        storage.close()


def test_a_store_over_its_budget_gets_429_with_retry_after_on_every_process(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'One')
    storage.add_store('s-2', 'Two')
    robot_1 = storage.issue_robot_token('r-1', 's-1')
    robot_2 = storage.issue_robot_token('r-2', 's-2')
    storage.close()
    budget = Budget(rate=2.0, burst=20.0)
    with TestClient(create_app(engine_target, ADMIN, budget=budget)) as first, \
            TestClient(create_app(engine_target, ADMIN, budget=budget)) as second:
        one = {'Authorization': f'Bearer {robot_1}'}
        assert first.post('/v1/robots/r-1/events', headers=one,
                          json={'events': events(0, 20)}).json()['acked'] == 20
        refused = second.post('/v1/robots/r-1/events', headers=one, json={'events': events(20, 10)})
        assert refused.status_code == 429 and int(refused.headers['retry-after']) >= 1
        assert 'retry after' in refused.json()['detail']
        # another store's budget is its own
        two = {'Authorization': f'Bearer {robot_2}'}
        assert first.post('/v1/robots/r-2/events', headers=two,
                          json={'events': events(0, 5)}).json()['acked'] == 5
        metrics = first.get('/metrics', headers={'Authorization': f'Bearer {ADMIN}'}).text
        assert 'retailbot_events_accepted_total{store="s-1"} 20.0' in metrics
        assert 'retailbot_store_ingest_lag_seconds{store="s-2"}' in metrics
        first.app.state.storage.close()
        second.app.state.storage.close()
    assert len(list(export_events(engine_target, 'r-1'))) == 20


def upload_all(url: str, batches: list[list[dict]], stop_at: float = 120,
               stop: threading.Event | None = None, acked: set[str] | None = None) -> dict:
    """The robot's way: send each batch until it is answered 200, then delete (here: count)
    exactly the ids answered accepted/duplicate; wait on 429/503/connection errors. `acked`, when
    given, is filled as answers arrive (a caller watching the progress)."""
    acked = set() if acked is None else acked
    retries = 0
    deadline = time.monotonic() + stop_at
    with httpx.Client(base_url=url, timeout=10,
                      headers={'Authorization': f'Bearer {ADMIN}',
                               'Content-Encoding': 'gzip',
                               'Content-Type': 'application/json'}) as client:
        for batch in batches:
            body = gzip.compress(json.dumps({'events': batch}).encode())
            while True:
                if stop is not None and stop.is_set():
                    return {'acked': acked, 'retries': retries}
                assert time.monotonic() < deadline, 'uploads did not finish'
                try:
                    response = client.post('/v1/robots/r-1/events', content=body)
                except httpx.HTTPError:
                    retries += 1
                    time.sleep(0.2)
                    continue
                if response.status_code in (429, 503) or response.status_code >= 500:
                    retries += 1
                    time.sleep(min(2.0, float(response.headers.get('retry-after', '0.2'))))
                    continue
                assert response.status_code == 200, response.text
                results = response.json()['results']
                assert [r['event_id'] for r in results] == [e['event_id'] for e in batch]
                assert {r['status'] for r in results} <= {'accepted', 'duplicate'}
                acked |= {r['event_id'] for r in results}
                break
    return {'acked': acked, 'retries': retries}


def assert_exactly_once(target: str, count: int) -> None:
    stored = list(export_events(target, 'r-1'))
    ids = [e['event_id'] for e in stored]
    assert len(ids) == len(set(ids)), 'an event stored twice'
    assert set(ids) == {f'e-{i}' for i in range(count)}, f'{count - len(set(ids))} events lost'
    assert [e['seq'] for e in stored] == list(range(count))


def test_kill_9_of_an_api_process_mid_batch_loses_nothing_and_doubles_nothing(engine_target):
    """Two API processes on one database; one is killed with SIGKILL while batches are in
    flight, the robot re-sends what was not answered to the other."""
    count = 6000
    batches = [events(i, 300) for i in range(0, count, 300)]
    a = start_server(engine_target)
    b = start_server(engine_target)
    try:
        first: set[str] = set()
        give_up = threading.Event()
        uploader = threading.Thread(target=lambda: upload_all(a.url, batches, stop=give_up, acked=first))
        uploader.start()
        deadline = time.monotonic() + 60
        while len(first) < 300 and uploader.is_alive():    # the first batch answered: uploads are flowing
            assert time.monotonic() < deadline, 'no batch answered'
            time.sleep(0.01)
        os.killpg(a.process.pid, signal.SIGKILL)          # mid-upload, no chance to clean up
        give_up.set()
        uploader.join(timeout=20)
        assert 300 <= len(first) < count                  # it was stopped while uploading
        # the robot switches to the other process (a load balancer would) and re-sends all
        results = upload_all(b.url, batches)
        assert results['acked'] == {f'e-{i}' for i in range(count)}
        assert_exactly_once(engine_target, count)
    finally:
        stop_process(a.process)
        stop_process(b.process)


def test_postgresql_restarted_immediately_during_ingest_loses_nothing(pg_cluster, pg_database):
    count = 8000
    batches = [events(i, 200) for i in range(0, count, 200)]
    server = start_server(pg_database)
    try:
        restarted = threading.Event()

        def crash() -> None:
            time.sleep(1.0)
            pg_cluster.restart('immediate')               # a crash: no checkpoint, WAL replay
            restarted.set()
        crasher = threading.Thread(target=crash)
        crasher.start()
        results = upload_all(server.url, batches, stop_at=240)
        crasher.join(timeout=120)
        assert restarted.is_set()
        assert results['acked'] == {f'e-{i}' for i in range(count)}
        assert_exactly_once(pg_database, count)
    finally:
        stop_process(server.process)


@pytest.mark.parametrize('robot_days_off', [-30, 3650])
def test_a_robot_clock_days_off_is_stored_with_its_time(engine_target, robot_days_off):
    with TestClient(create_app(engine_target, ADMIN)) as client:
        client.headers['Authorization'] = f'Bearer {ADMIN}'
        robot_time = time.time() + robot_days_off * 86400
        answer = client.post('/v1/robots/r-1/events', json={'events': events(0, 3, robot_time)})
        assert answer.json()['acked'] == 3
        client.app.state.storage.close()
    assert [e['time'] for e in export_events(engine_target, 'r-1')] == \
        [robot_time + i for i in range(3)]
