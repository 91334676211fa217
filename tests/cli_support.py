"""Helpers for tests of `retailbot` commands (sync, platform, ...): the one-line error rule."""
from __future__ import annotations

import pytest


def one_line(result, code: int, *words: str) -> str:
    """The command exited with `code` and said why in one line of stderr holding every word."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert 'Traceback' not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def not_sqlite(tmp_path):
    """A text file where a database is expected."""
    path = tmp_path / 'notes.txt'
    path.write_text('shopping list: milk, eggs\n' * 200)
    return path
