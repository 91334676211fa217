"""`retailbot` and every subcommand it has, from every package, answer --help."""
import argparse
import subprocess

import pytest

from retail_bringup.cli import build_parser
from rostest_support import console_script

EXPECTED = {'launch', 'base', 'plan', 'faces', 'nlu', 'chat', 'recommend', 'sync', 'platform'}


def subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from subcommand_paths(sub, prefix + (name,))


def test_every_package_contributes_its_subcommands():
    names = {path[0] for path in subcommand_paths(build_parser())}
    missing = EXPECTED - names
    assert not missing, f'subcommands missing from retailbot: {sorted(missing)}'


@pytest.mark.parametrize('path', sorted(set(subcommand_paths(build_parser()))), ids=' '.join)
def test_help_of_every_subcommand(path):
    out = subprocess.run([console_script('retailbot'), *path, '--help'], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith('usage: retailbot ' + ' '.join(path))
    assert 'is unavailable' not in out.stderr
