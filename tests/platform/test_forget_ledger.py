"""A forgotten member stays forgotten when the database is restored from a backup made before the
forget (PIPL: deletion reaches backups): every forget is also in the forget ledger, outside the
database, and `platform serve` carries out again, before it answers anyone, each forget the
restored database lacks. Real backups: a copy of the SQLite file, `pg_dump -Fc` / `pg_restore`
on the throwaway PostgreSQL cluster. A hostile or corrupt ledger line is reported and skipped."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pg_support import BIN
from platform_support import ADMIN, platform_cli, start_server
from rostest_support import stop_process

MEMBER = 'm-ledger-1'


def _member_with_history(database: str) -> None:
    from retail_platform.chain import Chain
    from retail_platform.database import upgrade
    from retail_platform.storage import Storage
    storage = Storage(database)
    try:
        upgrade(storage.engine)
        storage.add_store('s-1', 'Store one')
        Chain(storage.engine).put_member(MEMBER, True, 's-1', [])
    finally:
        storage.close()


def _member_record(database: str) -> bool:
    import sqlalchemy as sa

    from retail_platform.chain import members
    from retail_platform.storage import Storage
    storage = Storage(database)
    try:
        with storage.engine.connect() as c:
            return c.execute(sa.select(members.c.member_id).where(members.c.member_id == MEMBER)).first() is not None
    finally:
        storage.close()


def _pg(tool: str, *args: str) -> None:
    done = subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def backed_up(engine_target, tmp_path, request):
    """The member on the platform and a backup of that database: (database, restore())."""
    _member_with_history(engine_target)
    if '://' not in engine_target:
        copy = tmp_path / 'backup.sqlite3'
        shutil.copyfile(engine_target, copy)
        return engine_target, lambda: shutil.copyfile(copy, engine_target)
    dump = tmp_path / 'backup.dump'
    _pg('pg_dump', '-Fc', '-f', str(dump), engine_target)
    cluster, name = request.getfixturevalue('pg_cluster'), engine_target.rsplit('/', 1)[1]

    def restore() -> None:                      # as PostgreSQL's docs restore a dump: into a new database
        cluster.drop_database(name)
        cluster.admin(f'CREATE DATABASE {name}')
        _pg('pg_restore', '--no-owner', '--single-transaction', '-d', engine_target, str(dump))
    return engine_target, restore


def test_a_member_forgotten_after_the_backup_is_forgotten_again_when_the_restore_is_served(backed_up, tmp_path):
    database, restore = backed_up
    ledger = tmp_path / 'forgotten.jsonl'
    done = platform_cli('forget-member', '--database', database, '--member-id', MEMBER,
                        '--forget-ledger', str(ledger), '--json')
    assert done.returncode == 0, done.stderr
    assert not _member_record(database)
    assert [json.loads(line)['member_id'] for line in ledger.read_text().splitlines()] == [MEMBER]

    restore()                                   # the backup from before the forget
    assert _member_record(database)             # the restore brought her back ...
    server = start_server(database, '--forget-ledger', str(ledger))
    try:
        with server.client(ADMIN) as client:    # ... serve forgot her again before answering
            status = client.get(f'/v1/admin/members/{MEMBER}/forget')
            assert status.status_code == 200, status.text
            assert status.json()['requested_by'].startswith('forget ledger, after a restore')
    finally:
        stop_process(server.process, timeout=30)
    said = server.process.stdout.read().decode()
    assert f'forget ledger {ledger}: 1 member(s) forgotten again' in said, said
    assert not _member_record(database)


def test_the_api_writes_the_ledger_and_a_restart_forgets_nothing_twice(engine_target, tmp_path):
    _member_with_history(engine_target)
    ledger = tmp_path / 'forgotten.jsonl'
    server = start_server(engine_target, '--forget-ledger', str(ledger))
    try:
        with server.client(ADMIN) as client:
            assert client.post(f'/v1/admin/members/{MEMBER}/forget').status_code == 200
    finally:
        stop_process(server.process, timeout=30)
    assert json.loads(ledger.read_text())['member_id'] == MEMBER
    again = start_server(engine_target, '--forget-ledger', str(ledger))
    stop_process(again.process, timeout=30)
    assert 'forgotten again' not in again.process.stdout.read().decode()


def test_an_sqlite_platform_keeps_its_ledger_beside_the_file_and_postgresql_warns_without_one(engine_target):
    _member_with_history(engine_target)
    done = platform_cli('forget-member', '--database', engine_target, '--member-id', MEMBER)
    assert done.returncode == 0, done.stderr
    if '://' in engine_target:
        assert 'warning: no --forget-ledger' in done.stderr
    else:
        beside = engine_target + '.forgotten.jsonl'
        assert json.loads(open(beside).read())['member_id'] == MEMBER


def test_a_ledger_that_cannot_be_written_refuses_the_forget_in_one_line(engine_target, tmp_path):
    _member_with_history(engine_target)
    done = platform_cli('forget-member', '--database', engine_target, '--member-id', MEMBER,
                        '--forget-ledger', str(tmp_path / 'no-such-folder' / 'ledger.jsonl'))
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert done.stderr.strip().count('\n') == 0 and 'cannot write' in done.stderr
    assert _member_record(engine_target)        # not forgotten: the request is nowhere


def test_corrupt_and_hostile_ledger_lines_are_reported_and_skipped(tmp_path):
    from retail_platform.forget_ledger import MAX_LINE, ForgetLedger
    path = tmp_path / 'ledger.jsonl'
    ledger = ForgetLedger(path)
    ledger.append('m-1', 1.0, 'cli')
    with open(path, 'ab') as out:
        out.write(b'not json\n')
        out.write(b'{"member_id": "' + b'x' * (MAX_LINE * 50) + b'"}\n')   # one very long line
        out.write(b'\xff\xfe{}\n')
        out.write(b'{"member_id": "a/b", "requested_at": 1, "requested_by": ""}\n')
        out.write(b'{"member_id": "m-2", "requested_at": NaN, "requested_by": ""}\n')
        out.write(b'[1, 2]\n')
    ledger.append('m-3', 2.0, 'admin')
    ledger.append('m-1', 3.0, 'admin')              # asked twice: the first request counts
    read = ledger.read()
    assert sorted(read.entries) == ['m-1', 'm-3'] and read.entries['m-1'].requested_at == 1.0
    assert read.problems == [
        f'{path}: line 2: not JSON: skipped',
        f'{path}: line 3: longer than {MAX_LINE} bytes: skipped',
        f'{path}: line 4: not UTF-8: skipped',
        f'{path}: line 5: member_id is not a valid member id: skipped',
        f'{path}: line 6: requested_at must be a number and requested_by text: skipped',
        f'{path}: line 7: not an object with a member_id: skipped',
    ]
    assert ForgetLedger(tmp_path / 'missing.jsonl').read().entries == {}


def test_a_forget_after_a_write_cut_short_is_not_glued_to_it(tmp_path):
    """A crash or a full disk can leave the ledger's last line without its newline; the next
    forget must still be read back (it starts on a line of its own), the cut line reported."""
    from retail_platform.forget_ledger import ForgetLedger
    path = tmp_path / 'ledger.jsonl'
    ledger = ForgetLedger(path)
    ledger.append('m-1', 1.0, 'cli')
    with open(path, 'ab') as out:
        out.write(b'{"member_id": "m-2", "requested_')      # the write that was cut short
    ledger.append('m-3', 2.0, 'admin')
    read = ledger.read()
    assert sorted(read.entries) == ['m-1', 'm-3']
    assert read.problems == [f'{path}: line 2: not JSON: skipped']


def test_a_restore_made_while_the_platform_serves_is_forgotten_again_without_a_restart(backed_up, tmp_path):
    """A backup restored under a running platform (SQLite's online backup API into the live file;
    PostgreSQL's database dropped WITH (FORCE) and restored from the dump) took a forget back:
    the serve process's periodic check sees the database list fewer forgets and carries the
    ledger out again, no restart needed."""
    import sqlite3

    from fastapi.testclient import TestClient

    from retail_platform.app import create_app
    from rostest_support import wait_for
    database, restore = backed_up
    if '://' not in database:
        backup = tmp_path / 'backup.sqlite3'
        shutil.copyfile(database, backup)   # (the fixture's copy is from the same moment)

        def restore() -> None:              # noqa: F811 - the online way for SQLite
            with sqlite3.connect(backup) as source, sqlite3.connect(database) as live:
                source.backup(live)
    ledger = tmp_path / 'forgotten.jsonl'
    app = create_app(database, ADMIN, forget_ledger=str(ledger), ledger_check_s=0.3)
    with TestClient(app) as client:
        admin = {'Authorization': f'Bearer {ADMIN}'}
        assert client.post(f'/v1/admin/members/{MEMBER}/forget', headers=admin).status_code == 200
        assert not _member_record(database)
        restore()                           # (also before any check ran since the forget)
        bg = app.state.background
        wait_for(lambda: not _member_record(database), 30,
                 f'the member forgotten again ({bg.runs}, {bg.failures})', interval=0.2)
        status = client.get(f'/v1/admin/members/{MEMBER}/forget', headers=admin)
        assert status.status_code == 200 and status.json()['requested_by'].startswith(
            'forget ledger, after a restore'), status.text
