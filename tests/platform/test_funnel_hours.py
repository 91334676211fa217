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


def test_the_hours_a_robot_reported_reach_its_store_days_availability(engine_target):
    """Heartbeat v4 -> robot_hours (the day's last report wins) -> the refresher's store-day:
    robot-1 reported 10:00-01:00 on DAY and nothing the next day, on both engines; the one-day
    path (`recompute`) gives the same numbers as the batched refresh."""
    import json

    from loop_support import DAY as FLOOR_DAY, chain, store_events, store_floor_day
    from retail_platform.fleet import Fleet
    from retail_platform.storage import Storage
    from retail_sync.fleet import Heartbeat

    chain(engine_target)
    storage = Storage(engine_target)
    try:
        noon = funnel.day_bounds(FLOOR_DAY)[0] + 12 * 3600
        fleet = Fleet(storage.engine)
        fleet.record_heartbeat('robot-1', Heartbeat(period_s=10, opening_hours='09:00-21:00'), now=noon)
        fleet.record_heartbeat('robot-1', Heartbeat(period_s=10, opening_hours='10:00-01:00'), now=noon + 60)
        fleet.record_heartbeat('robot-1', Heartbeat(period_s=10), now=noon + 120)   # a v4 robot not saying: kept
        next_day = funnel.days(FLOOR_DAY, '2026-11-03')[-1]
        store_events(storage, 'robot-1', store_floor_day(FLOOR_DAY) + store_floor_day(next_day))
        funnel.refresh(storage.engine)
        rows = {r['day']: r for r in funnel.read(storage.engine, ['s-1'], FLOOR_DAY, next_day)}
        assert rows[FLOOR_DAY]['robots']['robot-1']['opening_minutes'] == 900
        assert rows[FLOOR_DAY]['opening_minutes'] == 900
        assert rows[next_day]['opening_minutes'] == 720                  # nothing reported: the chain's
        one = funnel.recompute(storage.engine, 's-1', FLOOR_DAY)
        assert json.dumps(one, sort_keys=True) == json.dumps(
            {k: v for k, v in rows[FLOOR_DAY].items() if k != 'store_id'}, sort_keys=True)
    finally:
        storage.close()


def test_migration_0015_adds_and_drops_robot_hours(empty_target):
    import sqlalchemy as sa
    from alembic import command

    from platform_support import migrate
    from retail_platform.database import create_engine, head_revision, upgrade

    engine = create_engine(empty_target)
    try:
        migrate(engine, command.upgrade, '0014_hq_figures')
        assert 'robot_hours' not in sa.inspect(engine).get_table_names()
        assert upgrade(engine) == ('0014_hq_figures', head_revision())
        assert {c['name'] for c in sa.inspect(engine).get_columns('robot_hours')} == {
            'robot_id', 'day', 'opening_hours', 'reported_at'}
        migrate(engine, command.downgrade, '0014_hq_figures')
        assert 'robot_hours' not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
