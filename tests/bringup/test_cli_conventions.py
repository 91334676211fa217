"""Conventions every `retailbot` subcommand keeps (issue 17 item 9): help text on every option,
required options shown as required, negative numbers as option values, documented exit codes."""
from __future__ import annotations

import argparse
import signal
import subprocess
import time

import pytest

from retail_bringup.cli import NEGATIVE_VALUE, build_parser
from rostest_support import REPO, console_script


def parsers(parser, prefix=('retailbot',)):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, prefix + (name,))


ALL = list(parsers(build_parser()))


def test_every_subcommand_and_option_has_help_text():
    missing = []
    for path, parser in ALL:
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            text = (action.help or '').replace('(required)', '').strip()
            if not text or action.help == argparse.SUPPRESS:
                missing.append(f'{" ".join(path)} {"/".join(action.option_strings) or action.dest}')
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if not (choice.help or '').strip():
                        missing.append(f'{" ".join(path)} {choice.dest} (subcommand)')
    assert not missing, 'no help text: ' + ', '.join(missing)


def test_required_options_say_so_in_help():
    required = [(path, action) for path, parser in ALL for action in parser._actions
                if action.required and action.option_strings]
    assert len(required) > 10
    for path, action in required:
        assert '(required)' in action.help, f'{" ".join(path)} {action.option_strings[0]}'
    enroll = dict(ALL)[('retailbot', 'faces', 'enroll')]
    consent = next(a for a in enroll._actions if '--consent' in a.option_strings)
    assert consent.required
    out = subprocess.run([console_script('retailbot'), 'faces', 'enroll', '--help'], capture_output=True,
                         text=True, timeout=60)
    assert '--consent REF' in out.stdout and '[--consent' not in out.stdout      # not shown as optional


@pytest.mark.parametrize('value', ['-8,-3', '-8', '-0.5', '-.5,2', '-1e3,-2.5e-1', '-8, -3', '-1,2,0.5'])
def test_negative_numbers_are_values(value):
    assert NEGATIVE_VALUE.match(value)


@pytest.mark.parametrize('value', ['-h', '--from', '-x1', '-8,a'])
def test_options_stay_options(value):
    assert not NEGATIVE_VALUE.match(value)


def test_bad_usage_is_exit_2_and_one_usage_message():
    out = subprocess.run([console_script('retailbot'), 'plan', '--map'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and 'Traceback' not in out.stderr and 'usage: retailbot plan' in out.stderr


def test_sigterm_is_143_and_ctrl_c_is_130(tmp_path):
    """`retailbot chat` waits for typed lines: a signal ends it with 128 + the signal's number."""
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.Popen([console_script('retailbot'), 'chat'], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        line = ''
        while time.monotonic() < deadline and not line:
            line = proc.stdout.readline()           # the chat prints its banner once it is ready
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert 'Traceback' not in err


def test_launch_arguments_may_follow_options():
    out = subprocess.run([console_script('retailbot'), 'launch', 'launch/robot.launch.yaml', '--show', 'sim:=true',
                          'speech_in:=false'], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert '/navigation/base_sim' in out.stdout and '/dialogue/asr' not in out.stdout     # both arguments applied
    bad = subprocess.run([console_script('retailbot'), 'launch', 'launch/robot.launch.yaml', '--show', '--bogus'],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and 'unrecognized arguments: --bogus' in bad.stderr


def test_launch_json_without_show_starts_nothing():
    out = subprocess.run([console_script('retailbot'), 'launch', '--json', 'launch/robot.launch.yaml'],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2 and '--json prints the resolved nodes and needs --show' in out.stderr and out.stdout == ''
