"""Fleet on the platform, on SQLite and PostgreSQL: heartbeats and silent robots/stores, alerts
that become tasks with acknowledge/resolve and time to resolve, staff calls answered from the
platform and delivered to the robot, desired-state rollouts in waves that halt on a canary's
trouble, and the robot's own validation (keeps the last good version)."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import create_app
from retail_platform.fleet import alerts, robot_state
from retail_platform.rollouts import plan_waves
from retail_platform.storage import Storage
from retail_sync.fleet import HEARTBEAT_VERSION, DesiredState, Heartbeat, HeartbeatCore, check_desired

A = {'Authorization': f'Bearer {ADMIN}'}


@pytest.fixture
def fleet(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    storage.add_store('s-2', 'Store two')
    robots = {f'r-{i}': storage.issue_robot_token(f'r-{i}', 's-1' if i < 3 else 's-2')
              for i in range(1, 5)}
    manager = storage.issue_staff_token('store_manager', 'ann', ['s-1'])
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, {r: {'Authorization': f'Bearer {tok}'} for r, tok in robots.items()}, \
            {'Authorization': f'Bearer {manager}'}
        client.app.state.storage.close()


def beat(client, robots, robot, **fields):
    answer = client.post(f'/v1/robots/{robot}/heartbeat', headers=robots[robot],
                         json={'period_s': 10, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_silent_robot_and_silent_store(fleet):
    client, robots, manager = fleet
    for robot in robots:
        beat(client, robots, robot)
    app_fleet = client.app.state.fleet
    now = __import__('time').time()
    # 16 s later (1.6 periods): every robot is silent; s-2's only robots too, so s-2 is silent.
    stores = {s['store_id']: s for s in app_fleet.stores(None, now + 16)}
    assert stores['s-1']['silent'] == 2 and stores['s-1']['silent_store']
    # one robot of s-1 speaks again: s-1 is no longer silent
    app_fleet.record_heartbeat('r-1', Heartbeat(period_s=10), now=now + 16)
    stores = {s['store_id']: s for s in app_fleet.stores(None, now + 17)}
    assert stores['s-1']['silent'] == 1 and not stores['s-1']['silent_store']
    assert stores['s-2']['silent_store']
    # the sweep opens one silent task per silent robot (not twice)
    assert app_fleet.sweep(now + 17) == 3
    assert app_fleet.sweep(now + 18) == 0
    kinds = sorted((task['robot_id'], task['kind']) for task in
                   client.get('/v1/stores/s-1/tasks', headers=manager).json())
    assert ('r-2', 'silent') in kinds
    # the store manager sees only s-1's robots
    seen = {r['robot_id'] for r in client.get('/v1/fleet/robots', headers=manager).json()}
    assert seen == {'r-1', 'r-2'}
    metrics = client.get('/metrics', headers=A).text
    assert 'retailbot_fleet_robots{store="s-1",state="ok"}' in metrics


@pytest.mark.parametrize('fields, kind', [
    ({'safety_stop': True, 'safety_stop_age_s': 601}, 'safety_stop'),
    ({'localisation_lost': True}, 'lost'),
    ({'sync_oldest_s': 3601, 'sync_backlog': 40}, 'backlog_old'),
    ({'disk_free_fraction': 0.02}, 'disk_full'),
])
def test_each_alert_becomes_one_task_with_time_to_resolve(fleet, fields, kind):
    client, robots, manager = fleet
    beat(client, robots, 'r-1', **fields)
    beat(client, robots, 'r-1', **fields)          # still true: no second task
    tasks = client.get('/v1/stores/s-1/tasks', headers=manager).json()
    assert [t['kind'] for t in tasks] == [kind]
    task = tasks[0]
    acked = client.post(f'/v1/stores/s-1/tasks/{task["id"]}', headers=manager,
                        json={'action': 'acknowledge'}).json()
    assert acked['acknowledged_at'] and acked['resolved_at'] is None
    done = client.post(f'/v1/stores/s-1/tasks/{task["id"]}', headers=manager,
                       json={'action': 'resolve', 'note': 'reset by Ann'}).json()
    assert done['time_to_resolve_s'] >= 0 and done['note'] == 'reset by Ann'
    assert client.get('/v1/stores/s-1/tasks', headers=manager).json() == []
    # the condition again after the resolve: a new task
    beat(client, robots, 'r-1', **fields)
    assert len(client.get('/v1/stores/s-1/tasks', headers=manager).json()) == 1


@pytest.mark.parametrize('fields', [
    {'safety_stop': True, 'safety_stop_age_s': 599}, {'sync_oldest_s': 3599},
    {'disk_free_fraction': 0.06}, {}])
def test_below_thresholds_raise_no_alert(fields):
    assert alerts(Heartbeat(period_s=10, **fields)) == {}


@pytest.mark.parametrize('body', [
    {'period_s': 0}, {'period_s': float('nan')}, {'period_s': 10, 'battery_percent': 101},
    {'period_s': 10, 'base': {'level': 'fine'}}, {'period_s': 10, 'unknown': 1},
    {'period_s': 10, 'software_version': 'x' * 65}, {'period_s': 10, 'sync_backlog': -1},
    {'period_s': 10, 'desired_error': 'a\x00b'}])
def test_bad_heartbeats_are_refused_with_the_field(fleet, body):
    client, robots, _ = fleet
    answer = client.post('/v1/robots/r-1/heartbeat', headers=robots['r-1'],
                         content=__import__('json').dumps(body).replace('NaN', 'NaN'))
    assert answer.status_code == 422
    assert answer.json()['detail'].startswith('heartbeat refused: ')


def test_a_staff_call_is_answered_and_reaches_the_robot(fleet):
    client, robots, manager = fleet
    call = {'call_id': 'call-1', 'reason': 'product_help', 'wanted': 'a kettle under 200 yuan',
            'zone': 'kitchen', 'x': 3.5, 'y': -1.0, 'language': 'en'}
    first = client.post('/v1/robots/r-1/staff-calls', headers=robots['r-1'], json=call).json()
    again = client.post('/v1/robots/r-1/staff-calls', headers=robots['r-1'], json=call).json()
    assert again == {'id': first['id'], 'duplicate': True}
    # the same call_id with another content (a reset robot) is refused, not a silent duplicate
    for other in ({'wanted': 'a kettle under 300 yuan'}, {'reason': 'lost'}, {'x': 4.0}):
        reused = client.post('/v1/robots/r-1/staff-calls', headers=robots['r-1'],
                             json={**call, **other})
        assert reused.status_code == 409 and 'call_id_reused' in reused.text, reused.text
    calls = client.get('/v1/stores/s-1/staff-calls', headers=manager).json()
    assert [(c['wanted'], c['where']['zone'], c['state']) for c in calls] == \
        [('a kettle under 200 yuan', 'kitchen', 'open')]
    for kind, text in (('answer', 'Coming in 2 minutes'), ('say', 'The kettles are on aisle 4')):
        assert client.post(f'/v1/stores/s-1/staff-calls/{first["id"]}/reply', headers=manager,
                           json={'kind': kind, 'text': text}).status_code == 200
    messages = client.get('/v1/robots/r-1/staff-messages', headers=robots['r-1']).json()
    assert [(m['kind'], m['text'], m['language']) for m in messages] == [
        ('answer', 'Coming in 2 minutes', 'en'), ('say', 'The kettles are on aisle 4', 'en')]
    # the robot's cursor: nothing after the last one; another robot gets none of them
    assert client.get('/v1/robots/r-1/staff-messages', headers=robots['r-1'],
                      params={'after': messages[-1]['id']}).json() == []
    assert client.get('/v1/robots/r-2/staff-messages', headers=robots['r-2']).json() == []
    assert client.get('/v1/stores/s-1/staff-calls', headers=manager).json()[0]['state'] == 'answered'
    # staff of another store cannot answer it
    assert client.post(f'/v1/stores/s-2/staff-calls/{first["id"]}/reply', headers=A,
                       json={'kind': 'answer', 'text': 'x'}).status_code == 404
    for bad in ({'kind': 'shout', 'text': 'x'}, {'kind': 'say', 'text': ''},
                {'kind': 'say', 'text': 'x' * 501}):
        assert client.post(f'/v1/stores/s-1/staff-calls/{first["id"]}/reply', headers=manager,
                           json=bad).status_code == 422


def test_a_call_refused_as_a_reused_id_does_not_hold_the_robots_later_calls(fleet, tmp_path):
    """The robot's FleetLink (real, against the real app) logs a call the platform refuses (409
    call_id_reused, like 422) and moves it out of the queue instead of retrying it ahead of every
    later call; it is kept with the platform's reason (session 13: it was deleted, a customer's
    request for help gone with one log line)."""
    from retail_sync.fleet import StaffCall
    from retail_sync.fleet_link import FleetLink
    client, robots, manager = fleet
    client.headers.update(robots['r-1'])
    logged: list[str] = []
    link = FleetLink('http://testserver', '', 'r-1', tmp_path, client=client, log=logged.append)
    try:
        link.raise_call(StaffCall(call_id='c-1', reason='product_help', wanted='a kettle'))
        assert link.send_calls() == 1
        first = client.get('/v1/stores/s-1/staff-calls', headers=manager).json()[0]['id']
        assert client.post(f'/v1/stores/s-1/staff-calls/{first}/reply', headers=manager,   # not
                           json={'kind': 'answer', 'text': 'coming'}).status_code == 200  # open
        link.raise_call(StaffCall(call_id='c-1', reason='lost'))       # a reset robot's old id
        link.raise_call(StaffCall(call_id='c-2', reason='product_help', wanted='a fan'))
        assert link.send_calls() == 1 and link.calls.waiting() == []
        assert any('c-1' in line and '409' in line for line in logged), logged
        [kept] = link.calls.refused()
        assert kept['call_id'] == 'c-1' and '409' in kept['reason'] and 'call_id' in kept['reason']
    finally:
        link.calls.close()
    wanted = [c['wanted'] for c in client.get('/v1/stores/s-1/staff-calls', headers=manager).json()]
    assert sorted(wanted) == ['a fan', 'a kettle']


def test_one_call_sent_by_many_requests_at_once_is_one_call(fleet):
    """The same call arriving on several connections at once (a robot's retry racing its first
    send): one is stored, every answer names it (no 500 from the unique index on PostgreSQL)."""
    import threading
    client, robots, manager = fleet
    call_store = client.app.state.fleet
    from retail_sync.fleet import StaffCall
    for k in range(12):
        call = StaffCall(call_id=f'race-{k}', reason='product_help')
        gate = threading.Barrier(8)
        answers: list = []

        def send() -> None:
            gate.wait()
            try:
                answers.append(call_store.add_call('r-1', call)['id'])
            except Exception as exc:        # what a request would have answered as a 500
                answers.append(repr(exc)[:120])
        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(answers)) == 1 and isinstance(answers[0], int), answers
        call_store.close_call('s-1', answers[0])     # else the next call folds into this one
    assert len(client.get('/v1/stores/s-1/staff-calls', headers=manager).json()) == 12


def test_writes_racing_on_a_unique_key_answer_409_never_500(fleet):
    """Requests creating one group or one store at once (PostgreSQL: both read "absent", one
    loses the unique index): each is answered 200 or a one-line 409, none 500."""
    import threading
    client, _, _ = fleet
    admin = {'Authorization': f'Bearer {ADMIN}'}
    for k in range(6):
        gate = threading.Barrier(8)
        codes: list[int] = []

        def put(path: str, body: dict, method: str) -> None:
            gate.wait()
            codes.append(client.request(method, path, json=body, headers=admin).status_code)
        for path, body, method in ((f'/v1/admin/fleet/groups/g-{k}', {'robots': ['r-1']}, 'PUT'),
                                   ('/v1/admin/stores', {'id': f's-new-{k}', 'name': 'x'}, 'POST')):
            codes.clear()
            threads = [threading.Thread(target=put, args=(path, body, method)) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert 200 in codes and set(codes) <= {200, 409}, (path, codes)
            gate.reset()


def test_plan_waves_canary_ten_percent_all():
    robots = [f'r-{i}' for i in range(200)]
    waves = plan_waves(robots, '1')
    assert [len(w) for w in waves] == [4, 16, 180]
    assert sorted(r for w in waves for r in w) == sorted(robots)
    assert [len(w) for w in plan_waves(['a'], '1')] == [1]
    assert [len(w) for w in plan_waves([f'r-{i}' for i in range(5)], '1')] == [1, 4]


def _rollout(client, robots, soak_s=0.0, settings=None):
    assert client.put('/v1/admin/fleet/groups/g', headers=A,
                      json={'robots': list(robots)}).status_code == 200
    version = client.post('/v1/admin/fleet/groups/g/desired', headers=A,
                          json={'settings': settings or {'volume': 0.4}}).json()['version']
    return client.post('/v1/admin/fleet/groups/g/rollouts', headers=A,
                       json={'version': version, 'soak_s': soak_s}).json()


def test_a_rollout_advances_wave_by_wave_and_an_offline_robot_converges(fleet):
    client, robots, _ = fleet
    rollout = _rollout(client, robots)
    assert rollout['waves'] == [1, 3] and rollout['state'] == 'running'
    running: dict[str, int] = {r: 0 for r in robots}
    for _ in range(4):                      # every robot but r-4 (offline) beats and converges
        for robot in ('r-1', 'r-2', 'r-3'):
            wanted = beat(client, robots, robot, desired_version=running[robot])['desired_version']
            if wanted and wanted != running[robot]:
                document = client.get(f'/v1/robots/{robot}/desired', headers=robots[robot])
                assert DesiredState.model_validate_json(document.content).settings.volume == 0.4
                running[robot] = wanted
    state = client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()
    assert state['wave'] == 1 and state['state'] == 'running'      # waiting for r-4 only
    if running['r-4'] == 0:                 # r-4 returns: it is told, fetches, runs it
        assert beat(client, robots, 'r-4')['desired_version'] == 1
        beat(client, robots, 'r-4', desired_version=1)
    beat(client, robots, 'r-1', desired_version=1)
    assert client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()['state'] == 'done'
    history = client.get('/v1/admin/fleet/robots/r-4/history', headers=A).json()
    assert [h['status'] for h in history] == ['assigned', 'running']


@pytest.mark.parametrize('trouble', [
    {'safety_stop': True, 'desired_version': 1},
    {'base': {'level': 'error', 'message': 'motor fault'}, 'desired_version': 1},
    {'desired_error': 'v1: settings.volume: 3 outside 0.0..1.0', 'desired_refused': 1}])
def test_a_canary_in_trouble_halts_the_rollout_before_the_next_wave(fleet, trouble):
    client, robots, _ = fleet
    rollout = _rollout(client, robots)
    state = client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()
    canary = next(r for r in robots if beat(client, robots, r)['desired_version'])
    # an error the canary reports before it runs the version is not the version's doing
    beat(client, robots, canary, base={'level': 'error', 'message': 'scan 0.6 s old by its stamp'})
    assert client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()['state'] == 'running'
    beat(client, robots, canary, **trouble)
    state = client.get(f'/v1/admin/fleet/rollouts/{rollout["id"]}', headers=A).json()
    assert state['state'] == 'halted' and canary in state['reason'] and state['wave'] == 0
    others = [r for r in robots if r != canary]
    assert all(beat(client, robots, r)['desired_version'] == 0 for r in others)


@pytest.mark.parametrize('settings, problem', [
    ({'volume': 3}, 'settings.volume'), ({'max_speed_mps': -1}, 'settings.max_speed_mps'),
    ({'turbo': 1}, 'settings.turbo'), ({'opening_hours': '25:00-10:00'}, 'opening_hours'),
    ({'volume': 'loud'}, 'settings.volume')])
def test_desired_state_is_checked_with_the_robots_rules(fleet, settings, problem):
    client, _, _ = fleet
    answer = client.post('/v1/admin/fleet/groups/g/desired', headers=A, json={'settings': settings})
    assert answer.status_code == 422 and problem in answer.json()['detail']
    document, why = check_desired(json.dumps({'settings': settings}))
    assert document is None and problem in why


def test_state_rules():
    assert robot_state(Heartbeat(period_s=10), 100.0, 114.9) == 'ok'
    assert robot_state(Heartbeat(period_s=10), 100.0, 115.1) == 'silent'
    assert robot_state(Heartbeat(period_s=10, camera={'level': 'warn'}), 100.0, 101) == 'degraded'


def test_heartbeat_core_sends_every_period_and_on_change():
    core = HeartbeatCore(period_s=10, min_gap_s=1)
    first = core.due(0.0)
    assert first is not None
    core.sent(first, 0.0)
    assert core.due(5.0) is None                         # nothing changed, period not over
    core.on_status('navigation/localization', 1, 'lost', {'state': 'lost'}, 5.0)
    changed = core.due(5.0)
    assert changed is not None and changed.localisation_lost
    core.sent(changed, 5.0)
    core.on_safety(True, 5.2)
    assert core.due(5.5) is None                         # changed, but within min_gap_s
    late = core.due(6.1)
    assert late is not None and late.safety_stop
    core.sent(late, 6.1)
    assert core.due(16.2) is not None                    # a period later with no change
    assert core.heartbeat(6.1 + 600).safety_stop_age_s == pytest.approx(600.9)


@pytest.mark.parametrize('statuses, expected', [
    # (diagnostic name, level) in the order they arrive -> the part's level in the heartbeat
    ([('sync: agent', 1), ('sync: agent', 0)], 'ok'),                  # the platform came back
    ([('sync: agent', 2), ('sync: agent', 1), ('sync: agent', 0)], 'ok'),
    ([('sync: agent', 0), ('sync: agent', 1)], 'warn'),
    ([('navigation/base: link', 1), ('navigation/collision_monitor', 0)], 'warn'),   # worst of two names
    ([('navigation/base: link', 1), ('navigation/collision_monitor', 0), ('navigation/base: link', 0)], 'ok'),
], ids=['warn then ok', 'error, warn, ok', 'ok then warn', 'one of two names warns', 'both ok again'])
def test_a_part_shows_its_latest_state_not_its_worst_ever(statuses, expected):
    """A robot whose sync was away (WARN) and came back (OK) is healthy again on the platform:
    each part is the worst of its diagnostics' LATEST statuses."""
    core = HeartbeatCore(period_s=10)
    for i, (name, level) in enumerate(statuses):
        core.on_status(name, level, f'state {level}', {}, float(i))
    part = 'sync' if statuses[0][0].startswith('sync') else 'base'
    assert getattr(core.heartbeat(10.0), part).level == expected


def test_silent_robot_tasks_are_opened_by_the_servers_timer(engine_target):
    """A real `retailbot platform serve --workers 2`: a robot beats once (period 1 s) and falls
    silent; with nobody reading the tasks, the serve process's timer opens one silent task for
    it; resolved by staff while the robot stays silent, the timer opens it again, still one."""
    import sqlalchemy as sa

    from platform_support import start_server
    from retail_platform import schema as t
    from rostest_support import wait_for
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    robot = storage.issue_robot_token('r-1', 's-1')
    server = start_server(engine_target, '--workers', '2')
    try:
        with server.client(robot) as client:
            client.post('/v1/robots/r-1/heartbeat', json={'period_s': 1}).raise_for_status()

        def open_silent() -> list:
            with storage.engine.connect() as c:
                return c.execute(sa.select(t.fleet_tasks.c.id).where(
                    t.fleet_tasks.c.robot_id == 'r-1', t.fleet_tasks.c.kind == 'silent',
                    t.fleet_tasks.c.resolved_at.is_(None))).scalars().all()
        first = wait_for(open_silent, timeout=30, what='the silent task opened by the timer')
        assert len(first) == 1
        with server.client() as admin:
            admin.post(f'/v1/stores/s-1/tasks/{first[0]}',
                       json={'action': 'resolve', 'note': 'checked'}).raise_for_status()
        again = wait_for(lambda: [i for i in open_silent() if i != first[0]], timeout=30,
                         what='the silent task opened again by the timer')
        assert len(again) == 1 and len(open_silent()) == 1
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
        storage.close()


@pytest.mark.parametrize('name', ['/perception/camera', 'perception/camera', '/perception/faces'])
def test_the_camera_part_reads_the_perception_nodes_statuses(name):
    """The perception nodes name their diagnostics by fully qualified node name ('/perception/camera',
    as recorded from the running robot's /diagnostics): the heartbeat's camera part was 'unknown'
    on every robot (found by the newcomer's walk-through of issue 26)."""
    core = HeartbeatCore(period_s=10)
    core.on_status(name, 1, 'camera lost, reconnecting', {}, 0.0)
    assert core.heartbeat(1.0).camera.level == 'warn'
    core.on_status(name, 0, 'frames flowing', {}, 2.0)
    assert core.heartbeat(3.0).camera.level == 'ok'


def test_heartbeats_of_one_run_count_up_and_a_resend_keeps_its_number():
    core = HeartbeatCore(period_s=5)
    first = core.heartbeat(0.0)
    assert first.version == HEARTBEAT_VERSION and first.seq == 1 and len(first.boot_id) == 32
    assert core.heartbeat(1.0).seq == 1                     # not sent (platform away): same number
    core.sent(first, 1.0)
    assert core.heartbeat(7.0).seq == 2
    assert HeartbeatCore().boot_id != core.boot_id          # each run its own
