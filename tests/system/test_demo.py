"""The store day (`retailbot demo`) as the product's end-to-end test: a real process, every part real."""
from __future__ import annotations

import json
import subprocess

import pytest

from retail_demo import demo_scenario as story
from rostest_support import console_script

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_store_day_meets_every_expectation(tmp_path, ros_env, run_demo):
    out = tmp_path / 'demo'
    code, output, summary = run_demo(out, timeout=1100)
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
    assert summary['contacts'] == 0 and summary['shoppers'] == story.SHOPPERS       # shoppers walked all day
    assert summary['localisation_error_max_m'] <= story.LOCALISATION_TOLERANCE_M  # localised, with drift on
    assert {'vip_lounge', 'phones', 'service_desk'} <= set(summary['zones_visited'])
    checked = {e['name']: e for e in summary['expectations']}
    for key in ('member_refined_brand', 'member_refined_cheaper', 'member_guide_zone', 'screen_reasons',
                'promotions_answered', 'tour_started', 'tour_narrated', 'tour_next', 'tour_ended'):
        assert checked[key]['ok'] and checked[key]['detail'], key          # each with what was seen
    transcript = (out / 'transcript.txt').read_text(encoding='utf-8')
    for said in (story.MEMBER_ASK, story.MEMBER_REFINE_BRAND, story.MEMBER_REFINE_CHEAPER, story.SHOPPER_ASK,
                 story.PROMOTIONS_ASK, story.TOUR_ASK, story.TOUR_NEXT, story.TOUR_STOP):
        assert said in transcript, said
    assert '林先生' in transcript and '齐先生' in transcript
    assert '没有优惠活动' not in transcript         # a promotions question is answered with the offers
    # The member comes back: her first visit (synced up, back down as her profile) shapes what she
    # is recommended, and the transcript shows the sentence the reasons begin with.
    assert summary['profile_used'] is True
    assert story.RETURNING_ASK in transcript and 'profile used:' in transcript
    assert checked['member_returned']['ok'] and story.PROFILE_SENTENCE in checked['member_returned']['detail']
    assert any(story.PROFILE_SENTENCE in line for line in transcript.splitlines() if 'profile used' in line)
    screens = sorted(p.name for p in (out / 'screens').glob('*.png'))
    assert screens == ['attract.png', 'console_bumper_stop.png', 'recommendations.png', 'route.png',
                       'vip_welcome.png'], screens
    png = (out / 'path.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    # What the platform received: the VIP's check-in (on time, under her pseudonym) and the staff
    # request it raised, read back with the platform's own export.
    exported = subprocess.run([console_script('retailbot'), 'platform', 'export', '--db',
                               str(out / 'platform.sqlite3'), '--robot-id', story.ROBOT_ID],
                              capture_output=True, text=True, env=ros_env, timeout=60, check=True)
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    checkins = {e['customer']: e['data']['status'] for e in events if e['type'] == 'vip_checkin'}
    assert checkins.get(story.VIP.customer_id) == 'on_time', checkins
    assert any(e['type'] == 'staff_request' and e['data'].get('reason') == 'vip_checkin_on_time' for e in events)


def test_unknown_scene_is_refused_with_one_line(tmp_path, ros_env):
    done = subprocess.run([console_script('retailbot'), 'demo', '--out', str(tmp_path / 'x'), '--scenes', 'disco'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert 'unknown scene(s) disco' in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_scene_played_without_the_one_it_needs_is_refused_with_one_line(tmp_path, ros_env):
    done = subprocess.run([console_script('retailbot'), 'demo', '--out', str(tmp_path / 'x'), '--scenes', 'returning'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert 'returning needs scene member' in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / 'x').exists()                      # nothing started
