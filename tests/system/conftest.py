"""Fixture of the system tests: run `retailbot demo` as a real process on the test's own ROS domain."""
from __future__ import annotations

import json
import subprocess

import pytest

from rostest_support import REPO, console_script, stop_process


@pytest.fixture
def run_demo(ros_env):
    """run_demo(out, *args, timeout=) -> (exit code, output, summary.json as a dict)."""
    def _run(out, *extra: str, timeout: float = 540.0) -> tuple[int, str, dict]:
        proc = subprocess.Popen([console_script('retailbot'), 'demo', '--out', str(out), *extra], cwd=REPO,
                                env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            try:
                output, _ = proc.communicate(timeout=15)
            except (subprocess.TimeoutExpired, ValueError):
                output = ''
            tail = '\n'.join((output or '').splitlines()[-40:])   # where the day was when time ran out
            pytest.fail(f'retailbot demo did not finish within {timeout:.0f} s; its last lines:\n{tail}')
        summary_path = out / 'summary.json'
        assert summary_path.exists(), f'no summary.json written; output:\n{output[-3000:]}'
        return proc.returncode, output, json.loads(summary_path.read_text(encoding='utf-8'))
    return _run
