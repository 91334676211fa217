"""Availability against the hours each robot reported for the day (funnel.robot_minutes), not a
fixed chain-wide 10:00-22:00: a pure function of the day's events and the reported hours."""
from __future__ import annotations

from retail_platform import funnel

DAY = '2026-12-07'
START, _ = funnel.day_bounds(DAY)


def _at(robot: str, hh: int, mm: int, seq: int) -> funnel.Event:
    return funnel.Event(robot, seq, START + hh * 3600 + mm * 60, 'greeting', '', {})


EVENTS = [_at('robot-1', 0, 30, 1), _at('robot-1', 9, 0, 2), _at('robot-1', 10, 0, 3), _at('robot-1', 21, 59, 4),
          _at('robot-1', 23, 0, 5), _at('robot-2', 10, 0, 1), _at('robot-2', 23, 0, 2)]


def test_each_robot_counts_the_hours_it_reported_and_the_others_the_chain_default():
    day = funnel.compute_store_day(DAY, EVENTS, [], [], ['robot-1', 'robot-2', 'robot-3'],
                                   hours={'robot-1': '10:00-01:00', 'robot-3': '09:00-21:00'})
    robots = day['robots']
    # robot-1 open 10:00-01:00: 00:30, 10:00, 21:59, 23:00 count (not 09:00); 900 minutes open that day
    assert (robots['robot-1']['active_minutes'], robots['robot-1']['opening_minutes']) == (4, 900)
    # robot-2 reported nothing: the chain's 10:00-22:00 (23:00 does not count)
    assert (robots['robot-2']['active_minutes'], robots['robot-2']['opening_minutes']) == (1, 720)
    assert (robots['robot-3']['active_minutes'], robots['robot-3']['opening_minutes']) == (0, 720)
    assert (day['active_minutes'], day['opening_minutes']) == (5, 900 + 720 + 720)
    assert day['availability'] == round(5 / 2340, 4)


def test_without_reported_hours_the_numbers_are_the_chain_default_ones():
    day = funnel.compute_store_day(DAY, EVENTS, [], [], ['robot-1', 'robot-2'])
    assert (day['active_minutes'], day['opening_minutes']) == (3, 1440)


def test_unreadable_reported_hours_fall_back_to_the_chain_default():
    minutes = funnel.robot_minutes(['robot-1'], EVENTS, START, {'robot-1': '24:00-10:00'})
    assert minutes == {'robot-1': (2, 720)}
