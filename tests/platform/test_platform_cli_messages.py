"""`retailbot platform` refusals a user meets, each one line (exit 2) naming what is wrong and
what to do: an id the database does not know (robot, store), a PostgreSQL URL that cannot be
used (refused, unknown database or role, malformed) shown without its password, and
import-purchases problems once each, in file order."""
from __future__ import annotations

import json

import pytest

from loop_support import chain
from pg_support import free_port
from platform_support import platform_cli


def one_line(result, words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    assert words in lines[0], lines[0]
    return lines[0]


# (subcommand and its arguments, the words the one line must hold)
UNKNOWN_IDS = [
    (['export', '--robot-id', 'nobody'], "no robot 'nobody'"),
    (['token', 'revoke', '--robot-id', 'nobody'], "no robot 'nobody'"),
    (['funnel', '--store', 'nowhere'], "no store 'nowhere'"),
    (['robot', 'move', '--robot-id', 'nobody', '--store', 's-1'], 'no robot nobody'),
    (['robot', 'move', '--robot-id', 'robot-1', '--store', 'nowhere'], 'no store nowhere'),
    (['token', 'issue', '--robot-id', 'r-9', '--store', 'nowhere'], 'no store nowhere'),
    (['token', 'issue', '--role', 'store_manager', '--store', 'nowhere'], 'no store nowhere'),
    (['token', 'issue', '--role', 'region', '--region', 'nowhere'], 'nowhere'),
    (['store', 'add', '--id', 's-9', '--name', 'Nine', '--region', 'nowhere'], 'no region nowhere'),
]


def test_an_id_the_database_does_not_know_is_one_line(engine_target):
    chain(engine_target)
    for args, words in UNKNOWN_IDS:
        one_line(platform_cli(*args[:2] if args[0] in ('token', 'robot', 'store') else args[:1],
                              '--database', engine_target,
                              *(args[2:] if args[0] in ('token', 'robot', 'store') else args[1:])),
                 words)
    # a known robot with nothing stored yet prints nothing and succeeds
    known = platform_cli('export', '--database', engine_target, '--robot-id', 'robot-1')
    assert known.returncode == 0 and known.stdout == '', known.stderr


def test_a_database_url_that_cannot_be_used_is_one_line_without_its_password(pg_cluster):
    port = pg_cluster.port
    cases = [  # (URL, the words of the one line)
        (f'postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x', 'no PostgreSQL answers there'),
        (f'postgresql://postgres:s3cret@127.0.0.1:{port}/no_such_db', 'no such database'),
        (f'postgresql://nobody:s3cret@127.0.0.1:{port}/postgres', 'user or password'),
        ('postgresql://postgres:s3cret@127.0.0.1:54x/x', 'not a valid PostgreSQL URL'),
        ('postgresql://postgres:s3cret@127.0.0.1:99999/x', 'not a valid PostgreSQL URL'),
        ('postgresql://postgres:s3cret@no-such-host.invalid/x', 'no PostgreSQL answers there'),
    ]
    for url, words in cases:
        for command in (['store', 'list'], ['export', '--robot-id', 'r-1'], ['migrate']):
            line = one_line(platform_cli(*command, '--database', url, timeout=60), words)
            assert 's3cret' not in line and ':***@' in line, line


def test_import_purchases_reports_each_problem_once_in_file_order(engine_target, tmp_path):
    chain(engine_target)
    header = 'receipt_id,store_id,time,member_id,code,sku,qty,price_cny\n'
    rows = ['r-1,s-9,2026-11-02T15:00:00,,,TV-85,1,10',        # no store (found when stored)
            'r-2,s-1,yesterday,,,TV-85,1,10',                  # bad time (found when read)
            'r-3,s-1,2026-11-02T15:00:00,,,TV-85,1,10',
            'r-4,s-9,2026-11-02T15:00:00,,,TV-85,1,10']        # no store again
    path = tmp_path / 'till.csv'
    path.write_text(header + '\n'.join(rows) + '\n', encoding='utf-8')
    for extra in ([], ['--json']):
        result = platform_cli('import-purchases', '--database', engine_target, str(path), *extra)
        assert result.returncode == 1, result.stderr
        problems = result.stderr.strip().splitlines()
        assert [p.split(':')[1] for p in problems] == ['2', '3', '5'], problems
        assert len(set(problems)) == len(problems)
        if extra:
            assert json.loads(result.stdout)['problems'] == problems


@pytest.mark.parametrize('role', ['analyst'])
def test_cli_words_use_english_articles(role):
    from retail_platform.app import a_credential
    assert a_credential(role).startswith('an ')


def test_a_token_file_that_cannot_be_written_leaves_no_active_token(tmp_path):
    """`token issue --out` to a path that cannot be written issues nothing (it was issued and the
    retry then needed --replace); a write that fails after issuing (a full disk) revokes it."""
    database = str(tmp_path / 'p.sqlite3')
    chain(database)

    def active(robot: str) -> list:
        listed = platform_cli('token', 'list', '--database', database, '--json')
        tokens = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
        return [t for t in tokens if t['robot_id'] == robot and not t['revoked_at']]

    one_line(platform_cli('token', 'issue', '--database', database, '--robot-id', 'robot-4',
                          '--store', 's-1', '--out', str(tmp_path)), 'nothing issued')
    assert active('robot-4') == []
    one_line(platform_cli('token', 'issue', '--database', database, '--robot-id', 'robot-4',
                          '--store', 's-1', '--out', '/dev/full'), 'the new token was revoked')
    assert active('robot-4') == []
    good = platform_cli('token', 'issue', '--database', database, '--robot-id', 'robot-4',
                        '--store', 's-1', '--out', str(tmp_path / 'token'))
    assert good.returncode == 0 and len(active('robot-4')) == 1, good.stderr
    kept = (tmp_path / 'token').read_text()
    refused = platform_cli('token', 'issue', '--database', database, '--robot-id', 'robot-4',
                           '--store', 's-1', '--out', str(tmp_path / 'token'))
    assert refused.returncode != 0 and (tmp_path / 'token').read_text() == kept   # not emptied
    one_line(platform_cli('token', 'issue', '--database', database, '--role', 'region'),
             'needs --region R')
