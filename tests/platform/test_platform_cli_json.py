"""What a script reads: `platform migrate`, `store add`, `region add` and `sync emit|run` print
one JSON object on stdout with --json (human text stays the default), and `platform region
list [--json]` lists the regions as `store list` does the stores, with each one's store count."""
from __future__ import annotations

import json
import subprocess

from cli_support import one_line
from pg_support import free_port
from platform_support import platform_cli, start_server
from rostest_support import console_script, stop_process


def one_json(done: subprocess.CompletedProcess, code: int = 0) -> dict:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


def test_migrate_says_before_and_after_in_json(empty_target):
    from retail_platform.database import describe, head_revision
    first = one_json(platform_cli('migrate', '--database', empty_target, '--json'))
    assert first == {'database': describe(empty_target), 'before': None,
                     'after': head_revision(), 'changed': True}
    again = one_json(platform_cli('migrate', '--database', empty_target, '--json'))
    assert again == dict(first, before=head_revision(), changed=False)
    text = platform_cli('migrate', '--database', empty_target)
    assert text.stdout.strip().endswith(f'schema already at {head_revision()}'), text.stdout


def test_regions_and_stores_added_and_listed(engine_target):
    db = ('--database', engine_target)
    assert one_json(platform_cli('region', 'add', *db, '--id', 'east', '--name', '华东', '--json')) \
        == {'id': 'east', 'name': '华东'}
    assert platform_cli('region', 'add', *db, '--id', 'west', '--name', 'West').stdout \
        == 'region west added\n'
    assert one_json(platform_cli('store', 'add', *db, '--id', 'sh-1', '--name', '上海一店',
                                 '--region', 'east', '--json')) \
        == {'id': 'sh-1', 'name': '上海一店', 'region_id': 'east'}
    assert one_json(platform_cli('store', 'add', *db, '--id', 'x-1', '--name', 'No region',
                                 '--json')) == {'id': 'x-1', 'name': 'No region', 'region_id': None}
    assert platform_cli('store', 'add', *db, '--id', 'sh-2', '--name', 'Two', '--region',
                        'east').stdout == 'store sh-2 added\n'
    listed = platform_cli('region', 'list', *db, '--json')
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {'id': 'east', 'name': '华东', 'stores': 2}, {'id': 'west', 'name': 'West', 'stores': 0}]
    assert platform_cli('region', 'list', *db).stdout.splitlines() == [
        'east  华东  2 stores', 'west  West  0 stores']
    # a refusal is still one line on stderr, nothing on stdout, with --json too
    again = platform_cli('region', 'add', *db, '--id', 'east', '--name', 'Again', '--json')
    one_line(again, 2, 'region east already exists')
    assert not again.stdout
    one_line(platform_cli('store', 'add', *db, '--id', 's-9', '--name', 'N', '--region', 'north',
                          '--json'), 2, 'no region north')


def test_robot_move_token_revoke_and_member_import_in_json(tmp_path):
    db = ('--database', str(tmp_path / 'p.sqlite3'))
    for store in ('s-1', 's-2'):
        assert platform_cli('store', 'add', *db, '--id', store, '--name', store).returncode == 0
    assert platform_cli('token', 'issue', *db, '--robot-id', 'r-1', '--store', 's-1').returncode == 0
    assert one_json(platform_cli('robot', 'move', *db, '--robot-id', 'r-1', '--store', 's-2',
                                 '--json')) == {'robot_id': 'r-1', 'store_id': 's-2'}
    assert one_json(platform_cli('token', 'revoke', *db, '--robot-id', 'r-1', '--json')) \
        == {'robot_id': 'r-1', 'revoked': 1}
    staff = platform_cli('token', 'issue', *db, '--role', 'analyst', '--name', 'hq')
    assert staff.returncode == 0, staff.stderr
    listed = [json.loads(line) for line in platform_cli('token', 'list', *db, '--json').stdout.splitlines()]
    fingerprint = next(t['fingerprint'] for t in listed if t['role'] == 'analyst')
    assert one_json(platform_cli('token', 'revoke', *db, '--fingerprint', fingerprint, '--json')) \
        == {'fingerprint': fingerprint, 'revoked': 1}
    history = tmp_path / 'history.csv'
    history.write_text('customer_id,sku,ts,qty,price_cny\nm-1,P-1,2026-11-01T10:00,1,5\n'
                       'm-2,P-1,2026-11-01T11:00,2,5\n')
    imported = one_json(platform_cli('member-import', *db, '--history', str(history), '--consent',
                                     '--json'))
    assert imported['members'] == 2 and imported['consent'] is True
    assert isinstance(imported['version'], int)
    one_line(platform_cli('region', 'add', *db, '--id', 'east', '--name', ' ', '--json'), 2,
             '--name must be 1-200 characters')


def test_region_list_of_a_missing_database_is_one_line(tmp_path):
    one_line(platform_cli('region', 'list', '--database', str(tmp_path / 'none.sqlite3')), 2,
             'no database at')
    assert not list(tmp_path.iterdir())


EVENTS = [{'event_id': f'e-{i}', 'type': 'note', 'data': {'i': i}} for i in range(3)]


def sync_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), 'sync', *args], capture_output=True,
                          text=True, timeout=120)


def test_sync_emit_and_run_say_what_they_did_in_json(tmp_path):
    source = tmp_path / 'events.jsonl'
    source.write_text(''.join(json.dumps(e) + '\n' for e in EVENTS) + 'not json\n')
    outbox = tmp_path / 'outbox.sqlite3'
    emit = ('emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create',
            '--robot-id', 'robot-1', '--from-file', str(source), '--json')
    first = sync_cli(*emit)
    assert one_json(first, 1) == {'outbox': str(outbox), 'stored': 3, 'duplicates': 0, 'skipped': 1}
    assert 'line 4' in first.stderr            # the skipped line is still named on stderr
    assert one_json(sync_cli(*emit), 1) == {'outbox': str(outbox), 'stored': 0, 'duplicates': 3,
                                            'skipped': 1}
    # the platform down: exit 6, and the JSON says so
    run = ('run', '--outbox', str(outbox), '--robot-id', 'robot-1', '--once', '--json')
    down = sync_cli(*run, '--platform', f'http://127.0.0.1:{free_port()}', '--token', 't',
                    '--give-up-after', '1', '--backoff-max', '0.5')
    assert one_json(down, 6) == {'uploaded': 0, 'pending': 3, 'quarantined': 0,
                                 'outcome': 'unreachable', 'alarm': None}
    database = str(tmp_path / 'platform.sqlite3')
    server = start_server(database, '--event-contracts', 'generic')
    try:
        assert platform_cli('store', 'add', '--database', database, '--id', 's-1', '--name',
                            'One').returncode == 0
        token = platform_cli('token', 'issue', '--database', database, '--robot-id', 'robot-1',
                             '--store', 's-1', '--out', str(tmp_path / 'token'))
        assert token.returncode == 0, token.stderr
        wrong = sync_cli(*run, '--platform', server.url, '--token', 'not-the-token')
        assert one_json(wrong, 3)['outcome'] == 'refused'
        done = sync_cli(*run, '--platform', server.url, '--token-file', str(tmp_path / 'token'))
        assert one_json(done) == {'uploaded': 3, 'pending': 0, 'quarantined': 0,
                                  'outcome': 'done', 'alarm': None}
    finally:
        stop_process(server.process)
