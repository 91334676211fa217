"""A robot whose heartbeats stop is shown silent on every view once 2 of its periods have passed,
even if the silent-robot sweep never ran (the sweep only opens tasks; a late or starved sweeper
must not leave a silent robot looking alive), on SQLite and PostgreSQL.

Not timed: the app is built without its lifespan, so no background task runs, and the passing
of time is the last heartbeat's arrival moved back (what the clock would have done); every view
is read through the app's own HTTP routes: the fleet API, the store's API, the store page, the
HQ fleet table and the Prometheus metric."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from platform_support import ADMIN
from retail_platform import schema as t

A = {'Authorization': f'Bearer {ADMIN}'}


@pytest.fixture
def unswept(one_store_fleet):
    return one_store_fleet


def _age(client, robot: str, seconds: float) -> None:
    """The robot's last heartbeat arrived `seconds` ago (time passed, nobody swept)."""
    with client.app.state.storage.engine.begin() as c:
        c.execute(t.fleet_heartbeats.update().where(t.fleet_heartbeats.c.robot_id == robot)
                  .values(received_at=t.fleet_heartbeats.c.received_at - seconds))


def _page_state(page: str, robot: str) -> str:
    row = re.search(rf'<tr id="fleet-{robot}">(.*?)</tr>', page, re.S)
    assert row, page[:2000]
    return re.findall(r'<td[^>]*>(.*?)</td>', row.group(1))[1]


@pytest.mark.parametrize('period, periods_passed, fields, shown', [
    (10, 2.0, {}, 'silent'),                                 # healthy when it stopped
    (10, 2.0, {'localisation_lost': True}, 'silent'),        # degraded when it stopped
    (60, 2.0, {}, 'silent'),                                 # its own period, not a fixed time
    (10, 1.6, {}, 'silent'),                                 # past the 1.5 periods already
    (10, 1.2, {}, 'ok'),                                     # one beat late: not silent yet
    (10, 1.2, {'localisation_lost': True}, 'degraded'),
])
def test_a_stopped_robot_is_silent_everywhere_without_a_sweep(unswept, period, periods_passed,
                                                              fields, shown):
    client, robots, manager = unswept
    for robot, token in robots.items():
        answer = client.post(f'/v1/robots/{robot}/heartbeat', json={'period_s': period, **fields},
                             headers={'Authorization': f'Bearer {token}'})
        assert answer.status_code == 200, answer.text
    _age(client, 'r-1', periods_passed * period)
    _age(client, 'r-2', periods_passed * period)
    assert client.app.state.background.runs['fleet sweep'] == 0      # no sweep ran

    fleet = {r['robot_id']: r for r in client.get('/v1/fleet/robots', headers=A).json()}
    assert fleet['r-1']['state'] == shown
    assert fleet['r-1']['last_heartbeat_s'] >= periods_passed * period
    store = client.get('/v1/stores/s-1/fleet', headers={'Authorization': f'Bearer {manager}'})
    assert {r['robot_id']: r['state'] for r in store.json()['robots']}['r-1'] == shown
    assert store.json()['store']['silent_store'] is (shown == 'silent')

    assert client.post('/hq/login', data={'token': manager},
                       headers={'Origin': 'http://testserver'}).status_code in (200, 303)
    page = client.get('/hq/stores/s-1')
    assert page.status_code == 200, page.text[:500]
    assert _page_state(page.text, 'r-1').startswith(shown if shown != 'ok' else 'healthy')
    assert ('id="store-silent"' in page.text) is (shown == 'silent')

    metrics = client.get('/metrics', headers=A).text
    silent = re.search(r'retailbot_fleet_robots\{store="s-1",state="silent"\} (\S+)', metrics)
    assert silent and float(silent.group(1)) == (2.0 if shown == 'silent' else 0.0)

    # and still nothing was swept: the views decided it themselves; the task comes with a sweep
    with client.app.state.storage.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.fleet_tasks)
                         .where(t.fleet_tasks.c.kind == 'silent')).scalar() == 0
    assert client.app.state.fleet.sweep() == (2 if shown == 'silent' else 0)


def test_a_reader_that_waited_for_the_database_judges_at_its_answers_time(engine_target,
                                                                          monkeypatch):
    """Under load a read (or a sweep) waits for a database connection; the robot's silence is
    judged when the rows were read, never at the time the reader asked (which would show a
    robot silent by then as alive, and date its task too early)."""
    from retail_platform import fleet as fleet_module
    from retail_platform.database import create_engine, upgrade
    from retail_sync.fleet import Heartbeat

    engine = create_engine(engine_target)
    upgrade(engine)
    clock = [1_000_000.0]
    monkeypatch.setattr(fleet_module.time, 'time', lambda: clock[0])
    fleet = fleet_module.Fleet(engine)
    fleet.record_heartbeat('r-1', Heartbeat(period_s=10))            # arrived at 1 000 000
    clock[0] += 14                                                    # 1.4 periods: alive
    sa.event.listen(engine, 'checkout', lambda *args: clock.__setitem__(0, 1_000_016.0))
    try:
        robot = fleet.robots(None)[0]        # asked at 14 s; the connection came at 16 s
        assert robot['state'] == 'silent' and robot['last_heartbeat_s'] == 16
        clock[0] = 1_000_014.0
        assert fleet.sweep() == 1
        with engine.connect() as c:
            assert c.execute(sa.select(t.fleet_tasks.c.opened_at)).scalar() == 1_000_016.0
    finally:
        engine.dispose()
