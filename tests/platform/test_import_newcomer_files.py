"""`retailbot platform import-purchases` with the files a chain's technician really has: a
spreadsheet's CSV (byte-order mark, semicolons), a GBK export, a CSV under another name, an empty
file, thousands of bad rows; and `--database` values a newcomer types. Each a one-line answer
naming the file, line or flag; nothing half-imported."""
from __future__ import annotations

import json

import pytest

from loop_support import chain
from platform_support import platform_cli

HEADER = 'receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n'
ROWS = ('r-1,s-1,2026-11-02T15:00:00,m-0001,,TV-85,1,9999\n'
        'r-1,s-1,2026-11-02T15:00:00,m-0001,,CABLE,2,20\n'
        'r-2,s-1,2026-11-02T15:01:00,,K7Q2,HP-1,1,899\n')


@pytest.fixture
def database(engine_target):
    chain(engine_target)
    return engine_target


def _import(database: str, path):
    return platform_cli('import-purchases', '--database', database, str(path), '--json')


def _problems(result) -> list[str]:
    assert 'Traceback' not in result.stderr, result.stderr
    return result.stderr.splitlines()


# (file name, bytes, what the one problem line must say) — files whose header is not readable
HEADER_VARIANTS = [
    ('excel_de.csv', (HEADER + ROWS).replace(',', ';').encode('utf-8-sig'), 'semicolons'),
    ('export.csv', (HEADER + ROWS).replace(',', '\t').encode(), 'tabs'),
    ('empty.csv', b'', 'empty file'),
    ('other.csv', b'id,store,date,sku,qty,price\n1,s-1,2026-11-02,TV-85,1,10\n', "got 'id,store"),
    ('till.txt', (HEADER + ROWS).encode(), 'rename it to .csv'),
]


@pytest.mark.parametrize('name,data,words', HEADER_VARIANTS, ids=[v[0] for v in HEADER_VARIANTS])
def test_an_unreadable_header_is_one_line_saying_what_the_file_is(database, tmp_path, name, data,
                                                                   words):
    path = tmp_path / name
    path.write_bytes(data)
    result = _import(database, path)
    problems = _problems(result)
    assert result.returncode == 1 and len(problems) == 1, problems
    assert problems[0].startswith(f'{name}:1: ') and words in problems[0], problems


@pytest.mark.parametrize('encoding,newline', [('utf-8-sig', '\n'), ('utf-8-sig', '\r\n'),
                                              ('utf-8', '\r\n')])
def test_a_spreadsheets_utf8_csv_with_bom_or_windows_lines_imports(database, tmp_path, encoding,
                                                                   newline):
    path = tmp_path / 'till.csv'
    path.write_bytes((HEADER + ROWS).replace('\n', newline).encode(encoding))
    result = _import(database, path)
    assert result.returncode == 0, _problems(result)
    assert json.loads(result.stdout)['stored'] == 2


def test_a_gbk_file_is_refused_whole_naming_its_line_before_anything_is_stored(database, tmp_path):
    good = ''.join(f'r-{i},s-1,2026-11-02T15:00:00,m-{i},,TV-85,1,10\n' for i in range(1200))
    text = HEADER + good + 'r-x,s-1,2026-11-02T16:00:00,王芳,,TV-85,1,10\n'
    path = tmp_path / 'gbk.csv'
    path.write_bytes(text.encode('gbk'))
    result = _import(database, path)
    problems = _problems(result)
    assert result.returncode == 2 and len(problems) == 1, problems
    assert 'gbk.csv:1202: not UTF-8' in problems[0] and 'nothing was imported' in problems[0]
    fixed = tmp_path / 'utf8.csv'
    fixed.write_text(HEADER + good, encoding='utf-8')
    again = _import(database, fixed)             # nothing of the GBK file was stored before
    assert json.loads(again.stdout) == {'stored': 1200, 'duplicate': 0, 'bad': 0, 'problems': []}


def test_thousands_of_bad_rows_are_counted_and_only_the_first_listed(database, tmp_path):
    bad = ''.join(f'r-{i},s-1,2026-11-02T15:00:00,,,TV-85,one,10\n' for i in range(3000))
    path = tmp_path / 'bad.csv'
    path.write_text(HEADER + ROWS + bad, encoding='utf-8')
    result = _import(database, path)
    problems = _problems(result)
    summary = json.loads(result.stdout)
    assert result.returncode == 1 and summary['stored'] == 2 and summary['bad'] == 3000
    assert len(problems) == 1001 and problems[0].startswith('bad.csv:5: ')
    assert problems[-1] == 'bad.csv: ... and 2000 more rows skipped (the first 1000 are listed)'


@pytest.mark.parametrize('target,words', [
    ('mysql://u:secret@db/platform', 'a mysql:// URL is not a database the platform can use'),
    ('sqlite:///tmp/platform.db', 'as a plain file path'),
    ('http://127.0.0.1:8080', 'a http:// URL is not a database'),
])
def test_a_database_url_of_another_kind_is_one_line_naming_the_flag(target, words):
    result = platform_cli('store', 'list', '--database', target)
    assert result.returncode == 2 and result.stderr.count('\n') == 1, result.stderr
    assert '--database' in result.stderr and words in result.stderr, result.stderr
    assert 'secret' not in result.stderr and 'folder' not in result.stderr


def test_no_password_given_is_told_apart_from_a_wrong_one():
    from retail_platform.database import connect_problem
    url = 'postgresql://platform@localhost:5432/retailbot'
    missing = connect_problem(url, Exception('connection failed: connection to server at '
                                             '"127.0.0.1", port 5432 failed: fe_sendauth: no '
                                             'password supplied'))
    wrong = connect_problem(url, Exception('connection failed: FATAL:  password authentication '
                                           'failed for user "platform"'))
    assert 'none was given' in missing and '.pgpass' in missing
    assert 'refused the user or password' in wrong


@pytest.mark.parametrize('statement,words', [
    ("UPDATE alembic_version SET version_num = '0099_future'", 'newer than this platform'),
    ('DROP TABLE alembic_version', "another program's database"),
])
def test_serve_no_migrate_on_a_schema_migrate_cannot_fix_does_not_say_run_migrate(tmp_path,
                                                                                  statement, words):
    import sqlite3
    database = tmp_path / 'p.db'
    assert platform_cli('migrate', '--database', str(database)).returncode == 0
    with sqlite3.connect(database) as connection:
        connection.execute(statement)
    token = tmp_path / 'admin.token'
    token.write_text('a' * 32)
    token.chmod(0o600)
    result = platform_cli('serve', '--database', str(database), '--port', '1', '--no-migrate',
                          '--token-file', str(token))
    assert result.returncode == 2 and result.stderr.count('\n') == 1, result.stderr
    assert words in result.stderr and 'run `retailbot platform migrate' not in result.stderr


def test_ready_says_a_newer_schema_is_newer_not_behind(tmp_path):
    import sqlite3

    from fastapi.testclient import TestClient
    from platform_support import ADMIN
    from retail_platform.app import create_app
    database = tmp_path / 'p.db'
    assert platform_cli('migrate', '--database', str(database)).returncode == 0
    with TestClient(create_app(str(database), ADMIN), raise_server_exceptions=False) as client:
        assert client.get('/v1/ready').json()['ready'] is True
        with sqlite3.connect(database) as connection:     # a newer release migrated meanwhile
            connection.execute("UPDATE alembic_version SET version_num = '0099_future'")
        answer = client.get('/v1/ready')
    assert answer.status_code == 503
    assert 'newer than this platform' in answer.json()['detail'], answer.json()


def test_a_receipt_split_beyond_the_remembered_window_is_still_refused(engine_target, tmp_path,
                                                                        monkeypatch):
    from retail_platform import funnel, purchases
    from retail_platform.database import create_engine
    chain(engine_target)
    monkeypatch.setattr(purchases, 'DONE_WINDOW', 2)       # ids remembered: bounded memory
    path = tmp_path / 'split.csv'
    path.write_text(HEADER + ''.join(f'r-{i},s-1,2026-11-02T15:00:00,,,TV-85,1,10\n'
                                     for i in range(5))
                    + 'r-3,s-1,2026-11-02T15:00:00,,,TV-85,1,10\n'     # within the window
                    + 'r-0,s-1,2026-11-02T15:00:00,,,CABLE,1,20\n',    # beyond it
                    encoding='utf-8')
    engine = create_engine(engine_target)
    try:
        result = purchases.store_receipts(engine, purchases.read_file(path, funnel.CHAIN_ZONE))
    finally:
        engine.dispose()
    assert result.stored == 5 and result.bad_count == 2, result
    assert 'split.csv:7: receipt r-3 continues after other receipts' in str(result.bad[0])
    assert str(result.bad[1]).startswith('split.csv:8: receipt_id_reused'), result.bad
