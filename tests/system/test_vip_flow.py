"""VIP reception end to end with real nodes: the platform's appointment reaches the robot through
the sync downlink, the camera recognises the VIP, the dialogue greets them by name and purpose and
checks them in, staff is told, navigation escorts them to the lounge, and the check-in event is on
the platform. Runs the demo's `vip` scene (the whole robot from launch/robot.launch.yaml sim:=true)."""
from __future__ import annotations

import json
import subprocess

import pytest

from rostest_support import console_script

pytestmark = pytest.mark.slow


@pytest.mark.timeout(400)
def test_vip_is_greeted_checked_in_and_escorted(tmp_path, ros_env, run_demo):
    out = tmp_path / 'vip'
    code, output, summary = run_demo(out, '--scenes', 'vip', timeout=360)
    results = {e['name']: e for e in summary['expectations']}
    failed = [e['expectation'] + ': ' + e['detail'] for e in results.values() if not e['ok']]
    assert failed == [], '\n'.join(failed) + f'\n---\n{output[-4000:]}'
    assert code == 0
    assert '林先生' in results['vip_greeted']['detail']
    assert summary['zones_visited'] == ['vip_lounge']
    # What the platform received: the check-in (on time) and the staff request, no face data.
    exported = subprocess.run([console_script('retailbot'), 'platform', 'export', '--db',
                               str(out / 'platform.sqlite3'), '--robot-id', 'demo-robot-01'],
                              capture_output=True, text=True, env=ros_env, timeout=60, check=True)
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    checkins = [e for e in events if e['type'] == 'vip_checkin']
    assert [e['data']['status'] for e in checkins] == ['on_time']
    assert checkins[0]['customer'] == 'm-900001'
    assert any(e['type'] == 'staff_request' and e['data'].get('reason') == 'vip_checkin_on_time' for e in events)
    assert summary['events_lost'] == 0
