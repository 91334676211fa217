"""The store day (`retailbot demo`) as the product's end-to-end test: a real process, every part real."""
from __future__ import annotations

import subprocess

import pytest

from rostest_support import console_script

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_store_day_meets_every_expectation(tmp_path, run_demo):
    out = tmp_path / 'demo'
    code, output, summary = run_demo(out)
    failed = [e['expectation'] + ': ' + e['detail'] for e in summary['expectations'] if not e['ok']]
    assert failed == [], 'unmet expectations:\n' + '\n'.join(failed) + f'\n---\n{output[-4000:]}'
    assert code == 0
    assert summary['ok'] is True
    assert summary['vip_greeted'] is True
    assert summary['second_vip_greeted'] is True     # booked on the platform while the robot ran
    assert summary['customers_guided'] >= 3          # the VIPs to the lounge and the desk, the member to the phones
    assert summary['recommendations'] >= 1
    assert summary['events_uploaded'] > 0
    assert summary['events_lost'] == 0
    assert {'vip_lounge', 'phones', 'service_desk'} <= set(summary['zones_visited'])
    transcript = (out / 'transcript.txt').read_text(encoding='utf-8')
    assert '林先生' in transcript and '齐先生' in transcript and '帮我推荐一款三千以下的手机' in transcript and '空气炸锅在哪里' in transcript
    png = (out / 'path.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000


def test_unknown_scene_is_refused_with_one_line(tmp_path, ros_env):
    done = subprocess.run([console_script('retailbot'), 'demo', '--out', str(tmp_path / 'x'), '--scenes', 'disco'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert 'unknown scene(s) disco' in done.stderr and len(done.stderr.strip().splitlines()) == 1
