"""The habits CI keeps: `ruff check` (ruff.toml) on every file, `ruff format` on the packages the
Makefile lists in FORMATTED, `mypy` (mypy.ini) on the pure packages."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import re

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


FORMATTED = re.search(r'^FORMATTED := (.+)$', (REPO / 'Makefile').read_text(), re.M).group(1).split()


@pytest.mark.parametrize('tool,args', [('ruff', ['check', '--no-cache', '.']),
                                       ('ruff', ['format', '--check', '--no-cache', *FORMATTED]),
                                       ('mypy', ['--no-incremental'])])
def test_the_code_passes(tool, args):
    exe = BIN / tool
    if not exe.exists():
        pytest.skip(f'{tool} is not installed in this environment (robot_ws/requirements.txt pins it)')
    result = subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
