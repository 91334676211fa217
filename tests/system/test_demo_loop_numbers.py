"""summary.json's data-loop numbers (retail_demo.loop_numbers): the day's funnel read from a real
`retailbot platform serve` as the store day starts it (SQLite, the demo's token), after the robot's
events of the day were uploaded; and `profile_used` from the day's interaction events."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / 'sync'))
from sync_support import free_port, start_platform  # noqa: E402

from retail_demo import demo_scenario as story  # noqa: E402
from retail_platform.funnel import DEFINITIONS  # noqa: E402
from retail_platform.storage import Storage  # noqa: E402
from retail_demo.loop_numbers import day_funnel, profile_used  # noqa: E402
from rostest_support import stop_process  # noqa: E402


def _event(n: int, type_: str, data: dict, customer: str = '') -> dict:
    return {'event_id': f'e-{n}', 'seq': n, 'type': type_, 'version': 1, 'customer': customer,
            'time': time.time() - 60 + n, 'data': data}


def test_the_days_funnel_is_the_platforms_and_is_told(tmp_path):
    platform = start_platform(tmp_path / 'platform.sqlite3', free_port(), story.PLATFORM_TOKEN)
    told: list[tuple[str, str]] = []
    try:
        # the store day's robot is registered in its store (the funnel is per store and day)
        storage = Storage(str(tmp_path / 'platform.sqlite3'))
        storage.add_store('demo-store', 'Demo store')
        storage.issue_robot_token(story.ROBOT_ID, 'demo-store')
        storage.close()
        events = [
            _event(1, 'customer_appeared', {'track_id': 1}),
            _event(2, 'greeting', {'member': True, 'vip': False, 'appointment': False}, 'm-1'),
            _event(3, 'dialogue_turn', {'intent': 'recommend', 'language': 'zh', 'confidence': 0.9,
                                        'slots': {'category': 'laptop', 'max_price': 6000}}, 'm-1'),
            _event(4, 'recommendation', {'skus': ['HW-MB14'], 'profile_used': True}, 'm-1'),
            _event(5, 'session_end', {'reason': 'left'}, 'm-1'),
            _event(6, 'customer_appeared', {'track_id': 2}),
        ]
        with platform.client() as client:
            got = client.post(f'/v1/robots/{story.ROBOT_ID}/events', json={'events': events})
            assert got.status_code == 200, got.text
        funnel = day_funnel(platform.url, story.PLATFORM_TOKEN, lambda who, text: told.append((who, text)))
    finally:
        stop_process(platform.process)
    assert funnel is not None, told
    assert (funnel['appeared'], funnel['engaged'], funnel['need_captured'], funnel['recommended']) == (2, 1, 1, 1)
    assert funnel['guided'] == 0 and funnel['purchased'] == 0 and funnel['conversion'] == 0.0
    assert funnel['definitions'] == DEFINITIONS and 'day' in funnel
    assert any('appeared 2' in text for _, text in told)
    # the platform away: None, and why
    told.clear()
    assert day_funnel(platform.url, story.PLATFORM_TOKEN, lambda who, text: told.append((who, text)),
                      timeout_s=2, fresh_within_s=2) is None
    assert told and told[0][1].startswith('no funnel for ')


def _msg(type_: str, payload) -> SimpleNamespace:
    return SimpleNamespace(type=type_, payload_json=payload if isinstance(payload, str) else json.dumps(payload))


def test_profile_used_is_true_only_for_a_recommendation_her_profile_shaped():
    told: list[str] = []
    say = lambda who, text: told.append(text)  # noqa: E731
    plain = [_msg('recommendation', {'skus': ['A']}), _msg('greeting', {'profile': True}), _msg('recommendation', '{')]
    assert profile_used(plain, say) is False and 'no returning member' in told[-1]
    shaped = plain + [_msg('recommendation', {'skus': ['A'], 'profile_used': True,
                                              'products': [{'sku': 'A', 'reason_zh': '上次您在看笔记本；好'}]})]
    assert profile_used(shaped, say) is True and '上次您在看笔记本' in told[-1]
