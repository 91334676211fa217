"""Helpers for tests that run real ROS nodes and real processes: wait on conditions, not sleeps."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / 'bin'


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = 'condition',
             interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; fail the test naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f'timed out after {timeout:.1f} s waiting for {what}')
        time.sleep(interval)


def console_script(name: str) -> str:
    """Absolute path of a console script installed in this environment (e.g. 'retailbot')."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f'console script {name} is not installed in {BIN} (run make install)')
    return str(path)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
    """Send `sig`, wait, and kill the whole process group if it does not stop in time."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
    return proc.returncode
