"""The store day against a PostgreSQL platform (`retailbot demo --platform-db postgresql://...`):
one scene (the VIP reception) with the whole simulated robot; the platform, its provisioning (store,
the robot's token, products, members, the appointment) and the robot's downlink and uploads all
run on a throwaway PostgreSQL 15 cluster (tests/platform/pg_support)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'platform'))
from pg_support import Cluster  # noqa: E402

from rostest_support import console_script  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.timeout(480)
def test_the_vip_scene_runs_against_a_postgresql_platform(tmp_path, ros_env, run_demo):
    try:
        cluster = Cluster()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))
    try:
        url = cluster.url(cluster.new_database())
        out = tmp_path / 'vip-pg'
        code, output, summary = run_demo(out, '--scenes', 'vip', '--platform-db', url, timeout=420)
        failed = [e['expectation'] + ': ' + e['detail'] for e in summary['expectations'] if not e['ok']]
        assert failed == [], '\n'.join(failed) + f'\n---\n{output[-4000:]}'
        assert code == 0 and summary['events_lost'] == 0
        assert not (out / 'platform.sqlite3').exists(), 'the day used an SQLite platform'
        exported = subprocess.run([console_script('retailbot'), 'platform', 'export', '--database', url,
                                   '--robot-id', 'demo-robot-01'],
                                  capture_output=True, text=True, env=ros_env, timeout=60, check=True)
        events = [json.loads(line) for line in exported.stdout.splitlines()]
        checkins = [e for e in events if e['type'] == 'vip_checkin']
        assert [e['data']['status'] for e in checkins] == ['on_time']
    finally:
        cluster.remove()
