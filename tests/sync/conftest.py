"""Sync fixtures: a fresh reference platform process per test."""
from __future__ import annotations

import pytest

from rostest_support import stop_process
from sync_support import free_port, start_platform


@pytest.fixture
def platform(tmp_path):
    platform = start_platform(tmp_path / 'platform.sqlite3', free_port())
    yield platform
    stop_process(platform.process)
