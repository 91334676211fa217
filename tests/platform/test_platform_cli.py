"""`retailbot platform ...` from the command line, on SQLite and PostgreSQL: every error is one
line and exit 2, tokens come from a file or the environment, a robot id gets one active token,
stores and robots are provisioned, migrations run and a database behind the schema is refused."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import time

import httpx
import sqlalchemy as sa

from pg_support import free_port
from platform_support import platform_cli, start_server
from cli_support import not_sqlite, one_line  # noqa: F401 - not_sqlite is a fixture
from rostest_support import console_script, stop_process, wait_for


def test_platform_serve_error_paths_are_one_line(tmp_path, not_sqlite, pg_cluster):
    cert = tmp_path / 'cert.pem'
    cert.write_text('not a certificate')
    db = str(tmp_path / 'p.sqlite3')
    cases = [
        (['--db', str(tmp_path / 'missing' / 'p.sqlite3'), '--token', 't'], 'does not exist'),
        (['--db', str(not_sqlite), '--token', 't'], 'not a platform database'),
        (['--db', db, '--token', 't', '--tls-cert', str(tmp_path / 'nope.pem'), '--tls-key',
          str(tmp_path / 'nope.key')], 'does not exist'),
        (['--db', db, '--token', 't', '--tls-cert', str(cert), '--tls-key', str(cert)], 'cannot use'),
        (['--db', db, '--token', 't', '--port', '99999'], '99999'),
        (['--db', db, '--token', ''], 'admin token'),
        (['--db', db, '--token-file', str(tmp_path / 'no-token')], 'cannot read'),
        (['--db', db, '--token', 't', '--workers', '0'], '--workers'),
        (['--db', db, '--token', 't', '--keep-alive-s', '0'], '--keep-alive-s'),
        (['--db', db, '--token', 't', '--keep-alive-s', 'nan'], '--keep-alive-s'),
        (['--database', f'postgresql://postgres@127.0.0.1:{free_port()}/x', '--token', 't'],
         'cannot connect'),
        (['--database', pg_cluster.url('no_such_database'), '--token', 't'], 'no_such_database'),
    ]
    env = {k: v for k, v in os.environ.items() if k != 'RETAILBOT_PLATFORM_TOKEN'}
    for args, words in cases:
        result = subprocess.run([console_script('retailbot'), 'platform', 'serve', '--port',
                                 str(free_port()), *args], capture_output=True, text=True,
                                timeout=60, env=env)
        one_line(result, 2, words)
    one_line(platform_cli('export', '--db', str(not_sqlite), '--robot-id', 'r-1'), 2,
             'not a platform database')


def test_admin_token_from_a_file_and_robot_tokens_from_the_cli(tmp_path, engine_target):
    token_file = tmp_path / 'admin-token'
    token_file.write_text('file-secret\n')
    port = free_port()
    server = subprocess.Popen([console_script('retailbot'), 'platform', 'serve', '--database',
                               engine_target, '--port', str(port), '--token-file', str(token_file)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    db = ['--database', engine_target]
    try:
        def up():
            try:
                return httpx.get(f'{url}/v1/stores', headers={'Authorization': 'Bearer file-secret'},
                                 timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=60, what='the platform with a token file')
        one_line(platform_cli('token', 'issue', *db, '--robot-id', 'robot-7', '--store', 's-1'),
                 2, 'no store s-1')
        assert platform_cli('store', 'add', *db, '--id', 's-1', '--name', '一号店').returncode == 0
        one_line(platform_cli('store', 'add', *db, '--id', 's-1', '--name', 'again'), 2,
                 'already exists')
        robot_token_file = tmp_path / 'robot' / 'token'
        issued = platform_cli('token', 'issue', *db, '--robot-id', 'robot-7', '--store', 's-1',
                              '--out', str(robot_token_file))
        assert issued.returncode == 0, issued.stderr
        assert oct(robot_token_file.stat().st_mode)[-3:] == '600'
        # A second robot with the same id: refused, one line; --replace revokes the first.
        one_line(platform_cli('token', 'issue', *db, '--robot-id', 'robot-7', '--store', 's-1'),
                 2, 'already has an active token', '--replace')
        robot = {'Authorization': f'Bearer {robot_token_file.read_text().strip()}'}
        ok = httpx.post(f'{url}/v1/robots/robot-7/events', headers=robot, timeout=10,
                        json={'events': []})
        assert ok.status_code == 200
        assert httpx.post(f'{url}/v1/robots/robot-8/events', headers=robot, timeout=10,
                          json={'events': []}).status_code == 403
        listed = platform_cli('token', 'list', *db, '--json')
        assert json.loads(listed.stdout)['robot_id'] == 'robot-7'
        replaced = platform_cli('token', 'issue', *db, '--robot-id', 'robot-7', '--store', 's-1',
                                '--replace')
        assert replaced.returncode == 0, replaced.stderr
        assert httpx.get(f'{url}/v1/robots/robot-7/downlink', headers=robot,
                         timeout=10).status_code == 401
        new = {'Authorization': f'Bearer {replaced.stdout.strip()}'}
        assert httpx.post(f'{url}/v1/robots/robot-7/events', headers=new, timeout=10,
                          json={'events': []}).status_code == 200
        assert platform_cli('token', 'revoke', *db, '--robot-id', 'robot-7').returncode == 0
        assert httpx.get(f'{url}/v1/robots/robot-7/downlink', headers=new,
                         timeout=10).status_code == 401
        one_line(platform_cli('token', 'issue', *db, '--robot-id', 'bad id', '--store', 's-1'),
                 2, 'bad id')
        manager = platform_cli('token', 'issue', *db, '--role', 'store_manager', '--store', 's-1',
                               '--name', 'ann')
        assert manager.returncode == 0, manager.stderr
        assert httpx.get(f'{url}/v1/stores', timeout=10, headers={
            'Authorization': f'Bearer {manager.stdout.strip()}'}).json()[0]['id'] == 's-1'
        # A staff credential (a manager who left) is revoked by the fingerprint `token list`
        # shows; a fingerprint that names no active credential is refused in one line.
        listed = platform_cli('token', 'list', *db, '--json').stdout.splitlines()
        fingerprint = next(t['fingerprint'] for t in map(json.loads, listed)
                           if t['role'] == 'store_manager')
        revoked = platform_cli('token', 'revoke', *db, '--fingerprint', fingerprint)
        assert revoked.returncode == 0 and 'revoked' in revoked.stdout, revoked.stderr
        assert httpx.get(f'{url}/v1/stores', timeout=10, headers={
            'Authorization': f'Bearer {manager.stdout.strip()}'}).status_code == 401
        one_line(platform_cli('token', 'revoke', *db, '--fingerprint', fingerprint), 2,
                 'no active credential')
    finally:
        stop_process(server)


def test_migrate_and_a_database_behind_the_schema(engine_target, tmp_path):
    from retail_platform.database import create_engine, head_revision
    migrated = platform_cli('migrate', '--database', engine_target)
    assert migrated.returncode == 0, migrated.stderr
    again = platform_cli('migrate', '--database', engine_target)
    assert 'already at' in again.stdout
    # Pretend the database is at an older revision: serve --no-migrate refuses in one line,
    # a revision newer than this software is refused by both.
    engine = create_engine(engine_target)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    engine.dispose()
    one_line(platform_cli('migrate', '--database', engine_target), 2, 'newer than this platform')
    one_line(platform_cli('serve', '--database', engine_target, '--token', 't', '--port',
                          str(free_port())), 2, 'newer than this platform')
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from retail_platform.database import MIGRATIONS
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    # behind: at the revision before the head (no version row at all is another program's
    # database, which `migrate` refuses too: serve says that instead of "run migrate")
    before = ScriptDirectory.from_config(config).get_revision(head_revision()).down_revision
    engine = create_engine(engine_target)
    with engine.begin() as connection:
        connection.execute(sa.text('UPDATE alembic_version SET version_num = :v'), {'v': before})
    engine.dispose()
    one_line(platform_cli('serve', '--database', engine_target, '--token', 't', '--no-migrate',
                          '--port', str(free_port())), 2, 'retailbot platform migrate')
    # one linear chain of revisions (each engineer's revision re-chained at merge): one head
    assert ScriptDirectory.from_config(config).get_heads() == [head_revision()]


def test_several_api_processes_on_one_database(pg_database):
    server = start_server(pg_database, '--workers', '2')
    try:
        with server.client() as client:
            events = [{'event_id': f'e-{i}', 'seq': i, 'type': 'guide', 'time': 1.75e9 + i,
                       'data': {'zone': 'kitchen', 'status': 'ended', 'stops_visited': i}}
                      for i in range(200)]
            for start in range(0, 200, 20):
                answer = client.post('/v1/robots/r-1/events',
                                     json={'events': events[start:start + 40]})
                assert answer.status_code == 200
                assert answer.json()['acked'] == len(events[start:start + 40])
        assert [e['seq'] for e in server.export('r-1')] == list(range(200))
    finally:
        stop_process(server.process)


def test_an_idle_client_connection_is_kept_for_longer_than_a_pool_waits(tmp_path):
    """A client (the robot's uploader, a page's browser, a load balancer) reuses its connection
    after a pause: the server must not have closed it meanwhile (uvicorn's own default, 5 s, made a
    page request after a stalled moment fail with 'Server disconnected without sending a
    response'). The pause here is real idle time, which is what the keep-alive is about."""
    server = start_server(str(tmp_path / 'p.sqlite3'), '--keep-alive-s', '30')
    try:
        # http.client sends on the socket it has (httpx would notice a closed one and reconnect,
        # which hides the fault until the close lands while a request is under way)
        connection = http.client.HTTPConnection('127.0.0.1', int(server.url.rsplit(':', 1)[1]),
                                                timeout=30)
        connection.request('GET', '/v1/ready')
        assert connection.getresponse().read() and connection.sock is not None
        time.sleep(6.5)
        connection.request('GET', '/v1/ready')               # the same connection, reused
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        stop_process(server.process)
