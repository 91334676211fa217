"""Small `retailbot platform` messages a newcomer meets: a bad funnel range names --from/--to; a
mistyped option is reported as unknown before any "required" complaint; of two `serve` started
at the same moment on one port the loser says `cannot listen on ...` in one line, exit 2 (the same
as a port already taken), never uvicorn's "[Errno 98]" and exit 3."""
from __future__ import annotations

import subprocess

import httpx
import pytest

from cli_support import one_line
from pg_support import free_port
from platform_support import platform_cli
from rostest_support import console_script, stop_process, wait_for

FUNNEL_RANGES = [
    (['--from', '2026-11-05', '--to', '2026-11-01'], '--from 2026-11-05 is after --to 2026-11-01'),
    (['--from', 'yesterday'], "--from 'yesterday' must be a date YYYY-MM-DD"),
    (['--to', '2026-13-01'], "--to '2026-13-01' must be a date YYYY-MM-DD"),
    (['--from', '2020-01-01', '--to', '2026-01-01'], '--from to --to: at most'),
]


@pytest.mark.parametrize('flags, words', FUNNEL_RANGES)
def test_a_bad_funnel_range_names_the_option(tmp_path, flags, words):
    one_line(platform_cli('funnel', '--database', str(tmp_path / 'p.sqlite3'), *flags), 2, words)


# (arguments, the mistyped option the one error line must name)
TYPOS = [
    (['serve', '--databse', 'X'], '--databse'),
    (['serve', '--databse', 'X', '--token', 't'], '--databse'),
    (['store', 'add', '--id', 's-1', '--nme', 'One', '--database', 'X'], '--nme'),
    (['store', 'list', '--dtabase', 'X'], '--dtabase'),
    (['funnel', '--databse', 'X'], '--databse'),
    (['import-purchases', 'receipts.csv', '--databse', 'X'], '--databse'),
    (['token', 'issue', '--robotid', 'r-1', '--store', 's-1'], '--robotid'),
]


@pytest.mark.parametrize('args, typo', TYPOS, ids=lambda a: ' '.join(a[:2]) if isinstance(a, list) else a)
def test_an_unknown_option_is_named_before_a_missing_required_one(tmp_path, args, typo):
    done = subprocess.run([console_script('retailbot'), 'platform', *args], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    error = [line for line in done.stderr.splitlines() if 'error:' in line]
    assert len(error) == 1 and 'unrecognized arguments:' in error[0], done.stderr
    assert 'required' not in error[0] and typo in error[0], error[0]
    assert not list(tmp_path.iterdir()), 'nothing was created'


def test_two_serves_started_together_on_one_port_the_loser_says_it_in_one_line(tmp_path):
    database = str(tmp_path / 'p.sqlite3')
    assert platform_cli('migrate', '--database', database).returncode == 0
    port = free_port()
    command = [console_script('retailbot'), 'platform', 'serve', '--database', database,
               '--host', '127.0.0.1', '--port', str(port), '--token', 't']
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True) for _ in range(2)]
    try:
        wait_for(lambda: any(p.poll() is not None for p in both), timeout=60,
                 what='one of the two to give up', interval=0.1)
        loser = next(p for p in both if p.poll() is not None)
        winner = next(p for p in both if p is not loser)
        stdout, stderr = loser.communicate(timeout=10)
        assert loser.returncode == 2, (loser.returncode, stdout, stderr)
        assert stdout == '' and len(stderr.strip().splitlines()) == 1, stderr
        assert stderr.startswith(f'retailbot platform serve: cannot listen on 127.0.0.1:{port}')
        assert 'Errno' not in stderr
        wait_for(lambda: httpx.get(f'http://127.0.0.1:{port}/v1/ready', timeout=5).status_code
                 == 200, timeout=60, what='the winner answering', interval=0.2)
        assert winner.poll() is None
    finally:
        for process in both:
            if process.poll() is None:
                stop_process(process)


@pytest.mark.parametrize('flags', [['--catch-up-rate', '-1'], ['--catch-up-rate', 'nan'],
                                   ['--catch-up-burst', '0']])
def test_a_bad_catch_up_budget_is_refused_in_one_line_naming_it(tmp_path, flags):
    line = one_line(platform_cli('serve', '--database', str(tmp_path / 'p.sqlite3'), '--token', 't',
                                 *flags), 2, f'{flags[0]} {flags[1]}:')
    other = ({'--catch-up-rate', '--catch-up-burst'} - {flags[0]}).pop()
    assert other not in line, 'only the flag that is wrong is named'
    assert not list(tmp_path.iterdir()), 'nothing was created'
