"""A robot whose heartbeat the platform holds (waiting for a thread or the database) or refuses
(503: the database unreachable) is alive: it is not shown silent on the API, the store page or
the metric, its row says `platform_late`, and the platform says it is behind ("platform
overloaded") instead of blaming the robots. A robot that really stopped, or a heartbeat sent
with a token this platform never verified for that robot, still ends in `silent`.

Real parts: the app's own HTTP routes, a real database lock held by another connection (the
heartbeat's write waits for it, as it waits for a busy database), a real PostgreSQL stop for the
503. The passing of time is the last stored heartbeat's arrival moved back (test_fleet_silent_unswept)."""
from __future__ import annotations

import re
import threading
import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform import schema as t
from retail_platform.app import create_app
from retail_platform.storage import Storage

A = {'Authorization': f'Bearer {ADMIN}'}
PERIOD = 10


@pytest.fixture
def platform(one_store_fleet, engine_target):
    return (*one_store_fleet, engine_target)


def _beat(client, robot: str, token: str) -> int:
    return client.post(f'/v1/robots/{robot}/heartbeat', json={'period_s': PERIOD},
                       headers={'Authorization': f'Bearer {token}'}).status_code


def _age(client, robot: str, seconds: float) -> None:
    with client.app.state.storage.engine.begin() as c:
        c.execute(t.fleet_heartbeats.update().where(t.fleet_heartbeats.c.robot_id == robot)
                  .values(received_at=t.fleet_heartbeats.c.received_at - seconds))


def _silent_task(client, robot: str) -> bool:
    with client.app.state.storage.engine.connect() as c:
        return c.execute(sa.select(t.fleet_tasks.c.id).where(
            t.fleet_tasks.c.kind == 'silent', t.fleet_tasks.c.robot_id == robot)).first() is not None


def _row(client, robot: str) -> dict:
    return {r['robot_id']: r for r in client.get('/v1/fleet/robots', headers=A).json()}[robot]


class HeldDatabase:
    """Another connection holds the heartbeats' table so a heartbeat's write waits (a busy
    database), while reads go on."""

    def __init__(self, target: str) -> None:
        self.engine = sa.create_engine(target if '://' in target else f'sqlite:///{target}',
                                       poolclass=sa.pool.NullPool)
        self.connection = self.engine.connect()
        if self.engine.dialect.name == 'postgresql':
            self.connection.exec_driver_sql('BEGIN')
            self.connection.exec_driver_sql('LOCK TABLE fleet_heartbeats IN EXCLUSIVE MODE')
        else:
            self.connection.exec_driver_sql('BEGIN IMMEDIATE')

    def release(self) -> None:
        self.connection.exec_driver_sql('ROLLBACK')
        self.connection.close()
        self.engine.dispose()


def _wait(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _shown_alive_not_silent(client, manager) -> None:
    """r-1 is alive on every view, marked platform late; the platform says it is behind."""
    row = _row(client, 'r-1')
    assert row['state'] == 'ok' and row['platform_late'] is True, row
    assert row['last_heartbeat_s'] >= 2 * PERIOD     # the stored one is old
    assert client.get('/v1/fleet/platform', headers=A).json()['behind']
    client.app.state.fleet.sweep()                   # no silent task for it either
    assert not _silent_task(client, 'r-1')
    assert client.post('/hq/login', data={'token': manager},
                       headers={'Origin': 'http://testserver'}).status_code in (200, 303)
    page = client.get('/hq/stores/s-1').text
    assert 'id="platform-behind"' in page and 'Platform overloaded' in page
    cell = re.search(r'<tr id="fleet-r-1">(.*?)</tr>', page, re.S).group(1)
    assert 'healthy' in cell and 'platform late' in cell
    metrics = client.get('/metrics', headers=A).text
    others = sum(1 for r in client.get('/v1/fleet/robots', headers=A).json()   # r-2, beating
                 if r['state'] == 'silent' and r['robot_id'] != 'r-1')         # no more: may be
    assert f'retailbot_fleet_robots{{store="s-1",state="silent"}} {float(others)!r}' in metrics
    assert 'retailbot_fleet_heartbeats_behind 1.0' in metrics
    # the overview's fleet table (counted in SQL, hq.fleet_stores) judges as the API does
    overview = client.get('/hq').text
    table = re.search(r'<table id="fleet-stores">(.*?)</table>', overview, re.S).group(1)
    cells = re.findall(r'<td[^>]*>([^<]*)</td>', re.search(r'<tr><td><a href="/hq/stores/s-1[^"]*">'
                                                         r'.*?</tr>', table, re.S).group(0))
    assert cells[-1] == str(others), (cells, others)       # silent robots: not r-1


@pytest.mark.parametrize('sender, shown_alive', [
    ('own token', True),             # its heartbeat waits in (or is refused by) the platform
    ('unknown token', False),        # a stranger's request for r-1 is no sign of r-1's life
    ('other robot', False),          # r-2's token for r-1: refused (403), no sign either
])
def test_a_heartbeat_waiting_in_a_busy_platform_is_a_sign_of_life(platform, sender, shown_alive):
    """PostgreSQL: the heartbeat's write waits on the held table while reads go on (shown alive
    while it waits). SQLite: a held write lock blocks the platform's reads too; the heartbeat
    waits its busy timeout and is refused 503 — shown alive once the lock is gone."""
    client, robots, manager, target = platform
    for robot, token in robots.items():
        assert _beat(client, robot, token) == 200
    _age(client, 'r-1', 2 * PERIOD)                  # 2 periods since its last stored heartbeat
    assert _row(client, 'r-1')['state'] == 'silent'
    token = {'own token': robots['r-1'], 'unknown token': 'not-a-token',
             'other robot': robots['r-2']}[sender]
    postgresql = '://' in target
    answers: list[int] = []
    held = HeldDatabase(target)
    sent = threading.Thread(target=lambda: answers.append(_beat(client, 'r-1', token)),
                            daemon=True)
    try:
        sent.start()
        if shown_alive and postgresql:
            assert _wait(lambda: _row(client, 'r-1')['state'] != 'silent'), \
                'a robot whose heartbeat waits in the platform is shown silent'
            assert sent.is_alive()                   # still waiting for the database
            assert _wait(lambda: client.get('/v1/fleet/platform', headers=A).json()['behind'])
            state = client.get('/v1/fleet/platform', headers=A).json()
            assert state['waiting'] == 1 and state['oldest_waiting_s'] > 1
            _shown_alive_not_silent(client, manager)
        else:
            sent.join(60)            # refused: by the credential check, or 503 when SQLite waited
            refused = 401 if sender == 'unknown token' else 403
            # SQLite: the credential check's read waits for the lock as well (503 for them all)
            assert answers == [503] if shown_alive else answers[0] in (refused, 503)
    finally:
        held.release()
        sent.join(60)
    if shown_alive and not postgresql:
        _shown_alive_not_silent(client, manager)
        assert client.get('/v1/fleet/platform', headers=A).json()['refused_last_minute'] == 1
    elif shown_alive:                # stored at last: an ordinary healthy robot again
        assert answers == [200]
        row = _row(client, 'r-1')
        assert row['state'] == 'ok' and row['platform_late'] is False
        assert row['last_heartbeat_s'] < PERIOD
        assert client.get('/v1/fleet/platform', headers=A).json()['waiting'] == 0
    else:
        assert _row(client, 'r-1')['state'] == 'silent'
        client.app.state.fleet.sweep()                   # (r-2 too after SQLite's wait)
        assert _silent_task(client, 'r-1')


def test_a_robot_that_stopped_is_still_silent_while_others_wait(platform):
    """The platform being behind with r-2's heartbeat does not hide r-1, which stopped."""
    client, robots, _, target = platform
    if '://' not in target:
        pytest.skip('SQLite: a held write lock blocks the reads too (the variant above)')
    for robot, token in robots.items():
        assert _beat(client, robot, token) == 200
    _age(client, 'r-1', 2 * PERIOD)
    _age(client, 'r-2', 2 * PERIOD)
    held = HeldDatabase(target)
    sent = threading.Thread(target=_beat, args=(client, 'r-2', robots['r-2']), daemon=True)
    try:
        sent.start()
        assert _wait(lambda: _row(client, 'r-2')['state'] != 'silent')
        assert _row(client, 'r-1')['state'] == 'silent'
        assert client.app.state.fleet.sweep() == 1          # r-1's task only
        assert _silent_task(client, 'r-1')
    finally:
        held.release()
        sent.join(40)


def test_a_heartbeat_refused_with_503_is_a_sign_of_life(pg_cluster, pg_database):
    """The database stops: the robot's heartbeat is answered 503; once the database is back the
    robot is shown alive (platform late, the refusal counted), not silent."""
    storage = Storage(pg_database)
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token('r-1', 's-1')
    storage.close()
    client = TestClient(create_app(pg_database, ADMIN), raise_server_exceptions=False)
    try:
        assert _beat(client, 'r-1', token) == 200
        _age(client, 'r-1', 2 * PERIOD)
        pg_cluster.stop()
        try:
            assert _beat(client, 'r-1', token) == 503
        finally:
            pg_cluster.start()
        assert _wait(lambda: client.get('/v1/ready').status_code == 200)
        row = _row(client, 'r-1')
        assert row['state'] == 'ok' and row['platform_late'] is True, row
        state = client.get('/v1/fleet/platform', headers=A).json()
        assert state['behind'] and state['refused_last_minute'] == 1
        assert client.app.state.fleet.sweep() == 0
        assert not _silent_task(client, 'r-1')
    finally:
        client.app.state.storage.close()
