"""A long option is only taken whole, by every `retailbot` command: `--datab URL` is an unknown
option, never `--database` (argparse accepts a unique prefix unless told not to, in each parser:
a subcommand's parser does not inherit its parent's allow_abbrev). An abbreviation accepted
today would change meaning, or become ambiguous, the day another option starting with it is
added, and a newcomer's typo would silently pick an option."""
from __future__ import annotations

import subprocess

import pytest

from rostest_support import console_script


def every_parser():
    from retail_bringup.cli import build_parser, parsers
    return list(parsers(build_parser()))


def test_no_parser_of_the_cli_takes_an_abbreviated_long_option():
    """Every parser (retailbot, each plugin's subcommands and their actions), every long option
    with its last letter cut off: argparse sees an unknown option, not that option."""
    found = every_parser()
    names = {each.prog for each in found}
    assert {'retailbot platform store add', 'retailbot platform region list', 'retailbot sync run',
            'retailbot launch'} <= names, sorted(names)
    taken = []
    for each in found:
        options = [o for o in each._option_string_actions if o.startswith('--') and len(o) > 3]
        for option in options:
            cut = option[:-1]
            if cut in each._option_string_actions:
                continue
            try:
                action, _, _ = each._parse_optional(cut)
            except SystemExit:          # "ambiguous option": still an abbreviation looked up
                action = 'ambiguous'
            if action is not None:
                taken.append(f'{each.prog} {cut} -> {option}')
    assert not taken, '\n'.join(taken)


# (arguments in tmp_path, the abbreviation the one error line must name); before, each of these
# ran as if the option had been written whole (migrate created the database "X").
ABBREVIATED = [
    (['platform', 'migrate', '--datab', 'X'], '--datab'),
    (['platform', 'store', 'add', '--id', 's-1', '--nam', 'One', '--database', 'p.sqlite3'], '--nam'),
    (['platform', 'region', 'add', '--databa', 'p.sqlite3', '--id', 'east', '--name', 'East'],
     '--databa'),
    (['platform', 'migrate', '--database', 'p.sqlite3', '--js'], '--js'),
]


@pytest.mark.parametrize('args, abbreviation', ABBREVIATED, ids=lambda a: ' '.join(a[:3]) if isinstance(a, list) else a)
def test_an_abbreviated_option_is_refused_in_one_line_and_nothing_is_done(tmp_path, args, abbreviation):
    done = subprocess.run([console_script('retailbot'), *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    error = [line for line in done.stderr.splitlines() if 'error:' in line]
    assert len(error) == 1 and f'unrecognized arguments: {abbreviation}' in error[0], done.stderr
    assert not done.stdout
    assert not list(tmp_path.iterdir()), 'nothing was created'


def test_a_whole_option_and_its_alias_still_work(tmp_path):
    """`--db` is a declared alias of `--database`, `--opt=value` a whole option: both still work."""
    done = subprocess.run([console_script('retailbot'), 'platform', 'migrate', '--db', 'a.sqlite3'],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([console_script('retailbot'), 'platform', 'migrate', '--database=b.sqlite3'],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.sqlite3', 'b.sqlite3']


def test_sync_refuses_an_abbreviated_option_too(tmp_path):
    """Not only the platform: `sync status --outb F` does not read the outbox F."""
    from retail_sync.outbox import Outbox
    Outbox(str(tmp_path / 'outbox.sqlite3'), create=True).close()
    done = subprocess.run([console_script('retailbot'), 'sync', 'status', '--outb',
                           str(tmp_path / 'outbox.sqlite3'), '--json'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    error = [line for line in done.stderr.splitlines() if 'error:' in line]
    assert len(error) == 1 and '--outbox' in error[0], done.stderr
    assert not done.stdout
