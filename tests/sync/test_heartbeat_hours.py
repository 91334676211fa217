"""The hours in effect on the robot reach the platform: the dialogue manager's `dialogue/opening_hours`
status -> HeartbeatCore -> Heartbeat v4 `opening_hours` (older heartbeats still accepted)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from retail_sync.fleet import HEARTBEAT_VERSION, HOURS_STATUS, Heartbeat, HeartbeatCore


def test_the_dialogue_status_sets_the_hours_and_a_change_sends_a_heartbeat():
    core = HeartbeatCore(period_s=10, min_gap_s=1)
    assert core.heartbeat(0.0).opening_hours == ''          # nothing reported yet: unknown
    core.sent(core.heartbeat(0.0), 0.0)
    core.on_status(HOURS_STATUS, 0, 'open 10:00-01:00 (live)', {'opening_hours': '10:00-01:00', 'source': 'live'}, 2.0)
    beat = core.due(2.0)
    assert beat is not None and beat.opening_hours == '10:00-01:00' and beat.version == HEARTBEAT_VERSION == 4
    assert beat.speech.level == 'unknown'                   # the hours are no health of the speech part
    assert Heartbeat.model_validate_json(beat.model_dump_json()).opening_hours == '10:00-01:00'


@pytest.mark.parametrize('reported', ['25:00-10:00', '10:00-10:00', 'x' * 500, None])
def test_unreadable_hours_are_sent_as_unknown(reported):
    core = HeartbeatCore(period_s=10)
    core.on_status('/' + HOURS_STATUS, 0, 'open', {} if reported is None else {'opening_hours': reported}, 0.0)
    assert core.heartbeat(1.0).opening_hours == ''


def test_older_heartbeats_are_still_accepted_and_unreadable_hours_taken_as_unknown():
    assert Heartbeat.model_validate({'version': 3, 'period_s': 10}).opening_hours == ''
    assert Heartbeat.model_validate({'version': 4, 'period_s': 10, 'opening_hours': '09:30-21:30'}).opening_hours == \
        '09:30-21:30'
    # a heartbeat is a sign of life: never refused for the hours (the OpenAPI fuzzer's valid
    # 11-character string was refused as 422 while the schema allowed it)
    for bad in ('24:00-10:00', '10:00-10:00', '10-22'):
        assert Heartbeat.model_validate({'period_s': 10, 'opening_hours': bad}).opening_hours == ''
    with pytest.raises(ValidationError, match='opening_hours'):       # the bound stays
        Heartbeat.model_validate({'period_s': 10, 'opening_hours': 'x' * 12})
