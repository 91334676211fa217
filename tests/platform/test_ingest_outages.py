"""Ingest faults at the database and between API processes, counting events before and after:
the database refusing connections for a while, the database's disk full, the same batch sent
to two API processes at once, a robot moved to another store in the middle of its backlog. In
every case 0 events lost, 0 stored twice, and each refusal is one line in the answer and in the
server's log. The robot side is the real uploader (retail_sync.uploader) over a real outbox.

The outage is `RETAILBOT_TEST_DB_OUTAGE_S` seconds (default 6; the issue's 60 s behaves the same,
only longer). The full disk is real: a small tmpfs mounted for the test (PostgreSQL: the events
partition moved to a tablespace on it; SQLite: the database file on it), grown again to resume,
as an operator freeing space would; where mounting is not permitted, SQLite runs under a file
size limit (RLIMIT_FSIZE: the same refusal, EFBIG instead of ENOSPC) and PostgreSQL is skipped
with that reason.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from pg_support import free_port
from platform_support import ADMIN, start_server
from retail_platform.app import export_events
from retail_platform.database import upgrade
from retail_platform.storage import Storage
from retail_sync.outbox import Outbox
from retail_sync.uploader import Uploader, UploaderConfig
from rostest_support import console_script, stop_process, wait_for
from test_ingest_faults import assert_exactly_once, events, upload_all

OUTAGE_S = float(os.environ.get('RETAILBOT_TEST_DB_OUTAGE_S', '6'))


def provision(target: str, robot: str = 'r-1', store: str = 's-1') -> str:
    storage = Storage(target)
    try:
        upgrade(storage.engine)
        for name in (store, 's-2'):
            if name not in {s['id'] for s in storage.stores()}:
                storage.add_store(name, name)
        return storage.issue_robot_token(robot, store)
    finally:
        storage.close()


def fill_outbox(path: Path, count: int, robot_time: float = 1.75e9) -> Outbox:
    outbox = Outbox(path)
    outbox.append_many([{'type': e['type'], 'data': e['data'], 'customer': e['customer'],
                         'event_id': e['event_id'], 'time': e['time']}
                        for e in events(0, count, robot_time)])
    return outbox


def assert_once(target: str, ids: set[str]) -> None:
    stored = list(export_events(target, 'r-1'))
    got = [e['event_id'] for e in stored]
    assert len(got) == len(set(got)), f'{len(got) - len(set(got))} events stored twice'
    assert set(got) == ids, f'{len(ids - set(got))} events lost'
    assert len({e['seq'] for e in stored}) == len(stored)


def server_log(server) -> list[str]:
    stop_process(server.process)
    return server.process.stdout.read().decode(errors='replace').splitlines()


def refusals(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith('platform: POST') and ' 503 ' in line]


def test_the_database_refusing_connections_for_a_while_loses_nothing(pg_cluster, pg_database,
                                                                     tmp_path):
    """The cluster is stopped while the robot uploads: the API answers 503 with Retry-After
    and one line, the uploader backs off and resumes once the database is back."""
    token = provision(pg_database)
    count = 3000
    outbox = fill_outbox(tmp_path / 'outbox.sqlite3', count)
    server = start_server(pg_database)
    config = UploaderConfig(server.url, token, 'r-1', batch_size=100, backoff_initial_s=0.2,
                            backoff_max_s=2.0)
    robot_log: list[str] = []
    uploader = Uploader(outbox, config, log=robot_log.append)
    stop = threading.Event()
    worker = threading.Thread(target=uploader.run, args=(stop,), kwargs={'until_empty': True})
    try:
        worker.start()
        wait_for(lambda: outbox.pending() < count - 200, timeout=60, what='uploads to flow')
        pg_cluster.stop('fast')                               # connections refused from now on
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answer = client.post('/v1/robots/r-1/events', json={'events': events(0, 5)},
                                     headers={'Authorization': f'Bearer {ADMIN}'})
                assert answer.status_code == 503, answer.text
                assert int(answer.headers['retry-after']) >= 1
                detail = answer.json()['detail']
                assert detail.startswith('database unavailable: ') and '\n' not in detail
                assert client.get('/v1/ready').status_code == 503
            pending_at_stop = outbox.pending()
            time.sleep(OUTAGE_S)
            assert outbox.pending() == pending_at_stop > 0    # nothing acknowledged meanwhile
        finally:
            pg_cluster.start()
        worker.join(timeout=180)
        assert not worker.is_alive(), 'the uploader did not finish after the database came back'
        assert outbox.pending() == 0 and uploader.quarantined == 0
    finally:
        stop.set()
        worker.join(timeout=30)
        uploader.close()
        lines = server_log(server)
    assert any('503' in line and 'retrying' in line for line in robot_log), robot_log
    assert refusals(lines), lines[-20:]
    assert_once(pg_database, {f'e-{i}' for i in range(count)})


class SmallDisk:
    """A tmpfs of `size` mounted on `path` (None when this machine does not allow it)."""

    def __init__(self, size: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix='retailbot-small-disk-'))   # reachable by postgres
        self.mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size},mode=0777',
                                       'tmpfs', str(self.path)], capture_output=True).returncode == 0

    def grow(self, size: str) -> None:
        subprocess.run(['mount', '-o', f'remount,size={size}', str(self.path)], check=True)

    def remove(self) -> None:
        if self.mounted:
            subprocess.run(['umount', '-l', str(self.path)], check=False)
        shutil.rmtree(self.path, ignore_errors=True)


def pg_sql(url: str, *statements: str) -> list:
    import psycopg
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        rows = []
        for statement in statements:
            cursor = connection.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        return rows


def move_events_partition(url: str, tablespace: str) -> None:
    """The 2025 events partition (the tests' event times) and its indexes to `tablespace`."""
    indexes = pg_sql(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'events_2025'")
    pg_sql(url, f'ALTER TABLE events_2025 SET TABLESPACE {tablespace}',
           *(f'ALTER INDEX {name} SET TABLESPACE {tablespace}' for (name,) in indexes))


def start_limited_server(database: str, file_limit: int):
    """A platform process whose files cannot grow past `file_limit` bytes (RLIMIT_FSIZE)."""
    from platform_support import Server
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    process = subprocess.Popen(
        [console_script('retailbot'), 'platform', 'serve', '--database', database, '--host',
         '127.0.0.1', '--port', str(port), '--token', ADMIN], preexec_fn=limit,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f'http://127.0.0.1:{port}', database, ADMIN, process)

    def up() -> bool:
        try:
            return httpx.get(server.url + '/v1/ready', timeout=5).status_code == 200
        except httpx.HTTPError:
            return process.poll() is None and False
    wait_for(up, timeout=60, what='the platform to answer')
    return server


def fill_until_refused(url: str, stop_at: float = 120) -> tuple[set[str], httpx.Response]:
    """Upload batches until one is refused; the ids acknowledged before it and the refusal."""
    acked: set[str] = set()
    deadline = time.monotonic() + stop_at
    with httpx.Client(base_url=url, timeout=30,
                      headers={'Authorization': f'Bearer {ADMIN}', 'Content-Encoding': 'gzip',
                               'Content-Type': 'application/json'}) as client:
        start = 0
        while time.monotonic() < deadline:
            batch = events(start, 500)
            answer = client.post('/v1/robots/r-1/events',
                                 content=gzip.compress(json.dumps({'events': batch}).encode()))
            if answer.status_code != 200:
                return acked, answer
            acked |= {r['event_id'] for r in answer.json()['results']}
            start += 500
    raise AssertionError('the small disk never filled')


def test_the_database_disk_full_refuses_then_resumes_with_nothing_lost(engine_target, request):
    disk = SmallDisk('2m')
    server = None
    postgresql = engine_target.startswith('postgresql')
    tablespace = f'small_disk_{os.getpid()}'
    try:
        if postgresql:
            if not disk.mounted:
                pytest.skip('mounting a small tmpfs is not permitted here (PostgreSQL disk-full '
                            'case needs it; the SQLite case runs under RLIMIT_FSIZE instead)')
            target = engine_target
            subprocess.run(['chown', 'postgres:postgres', str(disk.path)], check=False)
            request.getfixturevalue('pg_cluster').admin(
                f"CREATE TABLESPACE {tablespace} LOCATION '{disk.path}'")
            move_events_partition(target, tablespace)
            server = start_server(target)
        elif disk.mounted:
            target = str(disk.path / 'platform.sqlite3')
            server = start_server(target)
        else:
            target = engine_target
            server = start_limited_server(target, 2 << 20)
        before, refused = fill_until_refused(server.url)
        assert refused.status_code == 503, refused.text
        assert int(refused.headers['retry-after']) >= 1
        detail = refused.json()['detail']
        assert detail.startswith('database unavailable: ') and '\n' not in detail
        assert len(before) >= 500                          # it filled, then refused
        # what was acknowledged before the disk filled is stored, once
        stored = [e['event_id'] for e in export_events(target, 'r-1')]
        assert sorted(stored) == sorted(before)
        # space comes back (the operator grows the disk / lifts the limit) and the robot
        # re-sends everything it still holds: all stored once
        if disk.mounted:
            disk.grow('256m')
        else:
            lines = server_log(server)
            assert refusals(lines), lines[-20:]
            server = start_server(target)
        count = len(before) + 1000
        upload_all(server.url, [events(i, 500) for i in range(0, count, 500)])
        assert_exactly_once(target, count)
        lines = server_log(server)
        server = None
        if disk.mounted:
            assert refusals(lines), lines[-20:]
    finally:
        if server is not None:
            stop_process(server.process)
        if postgresql and disk.mounted:
            move_events_partition(engine_target, 'pg_default')
            request.getfixturevalue('pg_cluster').admin(f'DROP TABLESPACE IF EXISTS {tablespace}')
        disk.remove()


def test_the_same_batch_sent_to_two_api_processes_at_once_is_stored_once(engine_target):
    provision(engine_target)
    a, b = start_server(engine_target), start_server(engine_target)
    try:
        count, size = 2000, 200
        answers: list[list[dict]] = []

        def post(url: str, batch: list[dict], barrier: threading.Barrier) -> None:
            with httpx.Client(base_url=url, timeout=60,
                              headers={'Authorization': f'Bearer {ADMIN}'}) as client:
                barrier.wait()
                answer = client.post('/v1/robots/r-1/events', json={'events': batch})
                assert answer.status_code == 200, answer.text
                answers.append(answer.json()['results'])
        for start in range(0, count, size):
            batch = events(start, size)
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=post, args=(url, batch, barrier))
                       for url in (a.url, b.url)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert len(answers) == 2 * count // size
        statuses: dict[str, list[str]] = {}
        for results in answers:
            for r in results:
                statuses.setdefault(r['event_id'], []).append(r['status'])
        # every event: one process stored it, the other answered duplicate (both acknowledge)
        assert {tuple(sorted(s)) for s in statuses.values()} == {('accepted', 'duplicate')}
        assert_exactly_once(engine_target, count)
    finally:
        stop_process(a.process)
        stop_process(b.process)


def test_a_robot_moved_in_the_middle_of_its_backlog_keeps_each_events_store(engine_target,
                                                                          tmp_path):
    """Two days of backlog; the robot is moved to another store after half of it was uploaded:
    each event keeps the store the robot was in when it happened."""
    token = provision(engine_target)
    moved_at = time.time()
    first_time = moved_at - 2 * 86400
    count = 1200
    outbox = fill_outbox(tmp_path / 'outbox.sqlite3', count, robot_time=first_time)
    server = start_server(engine_target)
    config = UploaderConfig(server.url, token, 'r-1', batch_size=200)
    uploader = Uploader(outbox, config)
    try:
        for _ in range(3):
            assert uploader.upload_once() == 200
        storage = Storage(engine_target)
        storage.move_robot('r-1', 's-2')
        storage.close()
        # events that happen after the move (the robot's clock: after moved_at)
        for i in range(count, count + 100):
            outbox.append('dialogue_turn', events(i, 1)[0]['data'], customer='p-1',
                          event_id=f'e-{i}', time_s=moved_at + 10 + i)
        while uploader.upload_once():
            pass
        assert outbox.pending() == 0 and uploader.quarantined == 0
    finally:
        uploader.close()
        stop_process(server.process)
    assert_once(engine_target, {f'e-{i}' for i in range(count + 100)})
    stored = list(export_events(engine_target, 'r-1'))
    stores = {e['event_id']: e['store_id'] for e in stored}
    assert {stores[f'e-{i}'] for i in range(count)} == {'s-1'}
    assert {stores[f'e-{i}'] for i in range(count, count + 100)} == {'s-2'}
