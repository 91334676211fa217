"""The ingest's answer is returned as built (not re-validated per event, for speed): it must
still be exactly the declared `EventsAnswer` (the OpenAPI contract), one result per event in
order, on both engines; and each stored row keeps the store the robot was in at the event's
time (the per-batch assignment lookup)."""
from __future__ import annotations

import gzip
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import EventsAnswer, create_app
from retail_platform.storage import Storage

GOOD = {'type': 'guide', 'version': 1, 'customer': 'p-1',
        'data': {'zone': 'kitchen', 'status': 'started'}}


@pytest.fixture
def robot(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    storage.add_store('s-2', 'Store two')
    token = storage.issue_robot_token('robot-a', 's-1')
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, {'Authorization': f'Bearer {token}'}, storage
        client.app.state.storage.close()
    storage.close()


def post(client, headers, events, gzipped=False):
    body = json.dumps({'events': events}).encode()
    if gzipped:
        body = gzip.compress(body)
        headers = dict(headers, **{'Content-Encoding': 'gzip'})
    return client.post('/v1/robots/robot-a/events', content=body,
                       headers=dict(headers, **{'Content-Type': 'application/json'}))


@pytest.mark.parametrize('gzipped', [False, True])
def test_every_kind_of_answer_fits_the_declared_model(robot, gzipped):
    client, headers, _ = robot
    first = [dict(GOOD, event_id='e-1', seq=1, time=1.75e9),
             dict(GOOD, event_id='e-2', seq=2, time=1.75e9 + 1)]
    assert post(client, headers, first, gzipped).json()['stored'] == 2
    second = [dict(GOOD, event_id='e-1', seq=1, time=1.75e9),              # duplicate
              dict(GOOD, event_id='e-2', seq=2, time=1.75e9 + 5),          # event_id reused
              dict(GOOD, event_id='e-3', seq=1, time=1.75e9 + 6),          # seq reused
              dict(GOOD, event_id='e-4', seq=4, time=float('inf')),        # invalid (as text)
              {'event_id': 7, 'seq': 5},                                   # invalid, no id
              dict(GOOD, event_id='e-5', seq=5, time=1.75e9 + 7)]          # accepted
    raw = json.dumps({'events': second}).replace('Infinity', '1e999')
    response = client.post('/v1/robots/robot-a/events', content=raw.encode(),
                           headers=dict(headers, **{'Content-Type': 'application/json'}))
    assert response.status_code == 200, response.text
    answer = EventsAnswer.model_validate(response.json())
    assert [r.status for r in answer.results] == ['duplicate', 'rejected', 'rejected', 'rejected',
                                                  'rejected', 'accepted']
    assert [r.event_id for r in answer.results] == ['e-1', 'e-2', 'e-3', 'e-4', None, 'e-5']
    assert answer.results[1].reason.startswith('event_id_reused')
    assert answer.results[2].reason.startswith('seq_reused')
    assert all(r.reason is None for r in answer.results if r.status != 'rejected')
    assert (answer.acked, answer.stored, answer.duplicates, answer.rejected) == (2, 1, 1, 4)


def test_events_keep_the_store_of_their_time_after_a_move(robot):
    client, headers, storage = robot
    import time
    before = time.time() - 3600
    storage.move_robot('robot-a', 's-2')
    after = time.time() + 3600
    events = [dict(GOOD, event_id=f'e-{i}', seq=i, time=when)
              for i, when in enumerate([before, after, before - 10, after + 10], start=1)]
    answer = post(client, headers, events, gzipped=True).json()
    assert answer['stored'] == 4, answer
    with storage.engine.connect() as c:
        stored = dict(c.execute(sa.text('SELECT event_id, store_id FROM events')).all())
    assert stored == {'e-1': 's-1', 'e-2': 's-2', 'e-3': 's-1', 'e-4': 's-2'}


def test_the_ingest_statistics_count_every_answer_once(robot):
    """The per-store statistics (/metrics' accepted, duplicate, rejected totals) ride on the
    statement that moves a batch's rows on PostgreSQL: a first batch (the store's first row),
    a second one with new, repeated, conflicting and invalid events, and one of duplicates only
    (no rows to move: the statistics alone) each add exactly their answers."""
    client, headers, storage = robot

    def event(i, zone='kitchen'):
        return dict(GOOD, event_id=f'e-{i}', seq=i, time=1.8e9 + i,
                    data={'zone': zone, 'status': 'started'})
    expected = {'accepted': 0, 'duplicate': 0, 'rejected': 0}
    for events in ([event(1), event(2)],
                   [event(2), event(3), event(1, zone='hall'), {'event_id': 'bad'}, event(4)],
                   [event(3), event(4)]):
        answer = post(client, headers, events)
        assert answer.status_code == 200, answer.text
        for key, name in (('accepted', 'stored'), ('duplicate', 'duplicates'),
                          ('rejected', 'rejected')):
            expected[key] += answer.json()[name]
        stats = {row['store_id']: row for row in storage.stats()}
        assert {key: stats['s-1'][key] for key in expected} == expected
        assert stats['s-1']['last_seen'] > 0
    assert expected == {'accepted': 4, 'duplicate': 3, 'rejected': 2}
    with storage.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM events WHERE robot_id = 'robot-a'")) \
            .scalar() == 4


def test_the_known_events_lookup_reads_by_key_not_the_robots_history(tmp_path):
    """SQLite: the statements that look up a batch's already stored events (by event_id, by seq)
    each search their own key; none scans every event of the robot (`robot_id=?` alone), whose
    cost would grow with the robot's history. (PostgreSQL's plan depends on its statistics:
    see src/platform/README.md, Performance.)"""
    from retail_platform.app import check_event
    from retail_platform.database import upgrade
    storage = Storage(str(tmp_path / 'platform.sqlite3'))
    try:
        upgrade(storage.engine)
        storage.add_store('s-1', 'Store one')
        storage.issue_robot_token('robot-a', 's-1')
        seen: list = []

        @sa.event.listens_for(storage.engine, 'before_cursor_execute')
        def remember(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith('SELECT') and 'FROM events' in statement:
                seen.append((statement, parameters))
        items = [check_event(dict(GOOD, event_id=f'e-{i}', seq=i, time=1.8e9 + i), i)
                 for i in range(3)]
        assert storage.store_events('robot-a', items).accepted == 3
        sa.event.remove(storage.engine, 'before_cursor_execute', remember)
        assert seen, 'the lookup statements were not seen'
        with storage.engine.connect() as c:
            for statement, parameters in seen:
                plan = [row[3] for row in c.exec_driver_sql('EXPLAIN QUERY PLAN ' + statement,
                                                            parameters)]
                searches = [step for step in plan if 'events' in step]
                assert searches and all('robot_id=? AND' in step for step in searches), plan
    finally:
        storage.close()


def test_postgresql_plans_the_known_events_lookup_for_each_batch(pg_database):
    """PostgreSQL: the lookup of a batch's stored events is never kept as a prepared statement
    (whose generic plan, made while the events partitions were empty, scanned every event of the
    robot: a cost that grew with its history); the other per-batch statements are."""
    from retail_platform.app import check_event
    from retail_platform.database import upgrade
    storage = Storage(pg_database, pool_size=1)
    try:
        upgrade(storage.engine)
        storage.add_store('s-1', 'Store one')
        storage.issue_robot_token('robot-a', 's-1')
        for batch in range(8):          # psycopg prepares a statement from its 5th run
            items = [check_event(dict(GOOD, event_id=f'e-{batch}-{i}', seq=10 * batch + i,
                                      time=1.8e9 + 10 * batch + i), i) for i in range(3)]
            assert storage.store_events('robot-a', items).accepted == 3
        with storage.engine.connect() as c:
            prepared = c.exec_driver_sql('SELECT statement FROM pg_prepared_statements').scalars().all()
        assert any('store_budgets' in statement for statement in prepared), prepared
        assert not any('FROM events WHERE robot_id' in statement for statement in prepared), prepared
    finally:
        storage.close()


def test_postgresql_stores_once_even_when_the_lookup_misses_a_stored_key(pg_database,
                                                                          monkeypatch):
    """PostgreSQL copies a batch straight into events when the lookup (under the robot's lock)
    found none of its keys. Were a key there all the same, the primary key fails that COPY, the
    transaction is rolled back and the batch goes once more through the staging table, whose
    INSERT ... ON CONFLICT DO NOTHING skips the row: never a second copy, never an error. (The
    lookup is blinded here to make the case happen; with it, the robot's lock orders its
    batches and the case is not seen.)"""
    from retail_platform.app import check_event
    from retail_platform.database import upgrade
    storage = Storage(pg_database, pool_size=1)
    try:
        upgrade(storage.engine)
        storage.add_store('s-1', 'Store one')
        storage.issue_robot_token('robot-a', 's-1')

        def batch(first, n):
            return [check_event(dict(GOOD, event_id=f'e-{i}', seq=i, time=1.8e9 + i), i)
                    for i in range(first, first + n)]
        assert storage.store_events('robot-a', batch(0, 3)).accepted == 3
        monkeypatch.setattr(Storage, '_known', lambda self, c, robot, rows: ([], set()))
        outcome = storage.store_events('robot-a', batch(1, 4))      # e-1, e-2 stored already
        assert outcome.accepted == 4 and outcome.rejected == 0       # (blind: it cannot tell)
        monkeypatch.undo()
        assert storage.store_events('robot-a', batch(5, 2)).accepted == 2    # straight again
        with storage.engine.connect() as c:
            rows = c.execute(sa.text("SELECT event_id, count(*) FROM events WHERE robot_id = "
                                     "'robot-a' GROUP BY event_id")).all()
        assert sorted(rows) == [(f'e-{i}', 1) for i in range(7)]
        stats = {row['store_id']: row for row in storage.stats()}
        assert stats['s-1']['accepted'] == 3 + 4 + 2      # the rolled-back try counted once
    finally:
        storage.close()
