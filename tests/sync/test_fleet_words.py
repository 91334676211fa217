"""What the robot says for staff's messages (in the customer's language; staff's words in another
language framed in the customer's and marked as staff's) and how a staff call names where the
robot is (the store's zone names, never coordinates)."""
from __future__ import annotations

import math

import pytest

from retail_common.store import load_zones_file
from retail_dialogue.manager_node import DEFAULT_STORE
from retail_sync.fleet import StaffMessage
from retail_sync.fleet_link import call_from_request, place_of, staff_replies

ZONES = load_zones_file(f'{DEFAULT_STORE}/zones.yaml')[0]


def _message(kind: str, text: str, language: str) -> StaffMessage:
    return StaffMessage(id=1, call_id='c', kind=kind, text=text, language=language)


@pytest.mark.parametrize('kind, text, customer, expected', [
    ('answer', '两分钟内到', 'zh', [('两分钟内到', 'zh', 'staff_answer')]),
    ('answer', 'Coming in 2 minutes', 'en', [('Coming in 2 minutes', 'en', 'staff_answer')]),
    ('say', '空气炸锅在4号通道', 'zh', [('空气炸锅在4号通道', 'zh', 'staff_words')]),
    ('answer', 'Coming in 2 minutes', 'zh', [('店员用英文回复您：', 'zh', 'staff_answer'),
                                             ('Coming in 2 minutes', 'en', 'staff_words')]),
    ('say', 'Kettles are on aisle 4', 'zh', [('店员用英文对您说：', 'zh', 'staff_answer'),
                                             ('Kettles are on aisle 4', 'en', 'staff_words')]),
    ('answer', '马上到', 'en', [('A member of staff answered you in Chinese:', 'en', 'staff_answer'),
                               ('马上到', 'zh', 'staff_words')]),
    ('answer', 'Coming in 2 minutes', '', [('店员用英文回复您：', 'zh', 'staff_answer'),
                                           ('Coming in 2 minutes', 'en', 'staff_words')]),
])
def test_staff_words_are_spoken_in_the_customers_language(kind, text, customer, expected):
    assert staff_replies(_message(kind, text, customer)) == expected


def test_the_place_is_the_nearest_zone_in_the_stores_words():
    dock = ZONES['dock']
    assert place_of(ZONES, (dock.pose[0] + 0.5, dock.pose[1])) == dock.label
    far = place_of(ZONES, (dock.pose[0] + 500.0, dock.pose[1]))
    assert far.endswith(' m from ' + next(iter(far.split(' m from ')[1:]), '')) and ' m from ' in far
    for unknown in (None, (math.nan, 0.0), (0.0, math.inf)):
        assert place_of(ZONES, unknown) == ''
    assert place_of({}, (0.0, 0.0)) == ''


def test_a_call_carries_the_place():
    call = call_from_request(1, 3, 'product_help', 'kettle', '', '', 'zh', (1.0, 2.0),
                             place='手机数码区 (Phones & Wearables)\x00')
    assert call.place == '手机数码区 (Phones & Wearables)' and call.x == 1.0
