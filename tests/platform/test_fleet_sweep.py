"""The silent-robot sweep's structure, on both engines: one set-based statement whatever the
number of silent robots (its duration does not grow by a query per robot), one open task per
silent robot, and a sweep interval of a quarter of the shortest announced period, so a silent
task is opened at most missed + 1/4 periods (plus one sweep) after the last heartbeat."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from retail_platform.database import create_engine, upgrade
from retail_platform.fleet import MISSED, SWEEP_MIN_S, SWEEP_S, Fleet
from retail_sync.fleet import Heartbeat


@pytest.fixture
def fleet(engine_target):
    engine = create_engine(engine_target)
    upgrade(engine)
    yield Fleet(engine)
    engine.dispose()


def test_one_statement_opens_every_silent_robot_once(fleet):
    now = time.time()
    for i in range(60):
        fleet.record_heartbeat(f'r-{i:02d}', Heartbeat(period_s=5), now=now - (100 if i < 40 else 0))
    statements: list[str] = []
    sa.event.listen(fleet.engine, 'before_cursor_execute',
                    lambda *args: statements.append(args[2].split()[0].upper()))
    assert fleet.sweep(now) == 40
    assert statements.count('INSERT') == 1 and len(statements) <= 3, statements
    assert fleet.sweep(now + 1) == 0                    # open already: not twice
    with fleet.engine.begin() as c:
        rows = c.execute(sa.text("SELECT robot_id, detail FROM fleet_tasks WHERE kind = 'silent'")).all()
    assert len(rows) == 40 and all(detail == 'last heartbeat 100 s ago' for _, detail in rows)
    # a robot that beats again and whose task staff resolved is opened again when silent again
    fleet.record_heartbeat('r-00', Heartbeat(period_s=5), now=now + 2)
    with fleet.engine.begin() as c:
        c.execute(sa.text("UPDATE fleet_tasks SET resolved_at = :t WHERE robot_id = 'r-00'"), {'t': now + 3})
    assert fleet.sweep(now + 3) == 0
    assert fleet.sweep(now + 2 + MISSED * 5 + 0.1) == 21     # r-00 again, and the 20 beating at `now`


@pytest.mark.parametrize('periods, every', [
    ((), SWEEP_S), ((10,), SWEEP_S), ((4,), 1.0), ((2, 60), 0.5), ((1,), SWEEP_MIN_S)])
def test_the_sweep_interval_is_a_quarter_of_the_shortest_period(fleet, periods, every):
    now = time.time()
    for i, period in enumerate(periods):
        fleet.record_heartbeat(f'r-{i}', Heartbeat(period_s=period), now=now)
    fleet.sweep(now)
    assert fleet.sweep_every_s == pytest.approx(every)
