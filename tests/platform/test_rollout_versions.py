"""Rollouts across groups on SQLite and PostgreSQL (issue 26 item 3, newcomer's faults): version
numbers are chain-wide, so a robot's reported number names one document; a refusal counts only
for the version it names; a halted rollout's version is withdrawn from the robots that do not run
it; groups take registered robots only and new versions only for a group that exists; a closed
staff call takes no reply; a bad path or query parameter gets the one-line 422."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from platform_support import ADMIN
from retail_platform.app import create_app
from retail_platform.storage import Storage
from retail_sync.fleet import HEARTBEAT_VERSION, Heartbeat

A = {'Authorization': f'Bearer {ADMIN}'}


@pytest.fixture
def fleet(engine_target):
    storage = Storage(engine_target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_store('s-1', 'Store one')
    robots = {f'r-{i}': storage.issue_robot_token(f'r-{i}', 's-1') for i in range(1, 5)}
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
    return answer.json()['desired_version']


def group(client, name, robots):
    answer = client.put(f'/v1/admin/fleet/groups/{name}', headers=A, json={'robots': robots})
    assert answer.status_code == 200, answer.text


def version(client, name, volume):
    answer = client.post(f'/v1/admin/fleet/groups/{name}/desired', headers=A,
                         json={'settings': {'volume': volume}})
    assert answer.status_code == 200, answer.text
    return answer.json()['version']


def rollout(client, name, number):
    answer = client.post(f'/v1/admin/fleet/groups/{name}/rollouts', headers=A,
                         json={'version': number, 'soak_s': 0})
    assert answer.status_code == 200, answer.text
    return answer.json()


def status(client, rolled):
    return client.get(f'/v1/admin/fleet/rollouts/{rolled["id"]}', headers=A).json()


def run(client, robots, robot, number):
    """The robot fetches its document and reports it in use (as the robot's FleetLink does)."""
    document = client.get(f'/v1/robots/{robot}/desired', headers=robots[robot])
    assert document.headers['X-Desired-Version'] == str(number)
    beat(client, robots, robot, desired_version=number)
    return document.json()


def test_versions_are_chain_wide_and_a_moved_robot_counts_only_once_it_runs_the_new_one(fleet):
    client, robots, _ = fleet
    group(client, 'store-s1', ['r-1'])
    group(client, 'g2', ['r-2'])
    numbers = [version(client, 'store-s1', 0.1), version(client, 'store-s1', 0.2),
               version(client, 'g2', 0.3), version(client, 'store-s1', 0.4)]
    assert numbers == sorted(set(numbers)), numbers          # one sequence over the groups
    first = rollout(client, 'store-s1', numbers[1])
    assert beat(client, robots, 'r-1') == numbers[1]
    assert run(client, robots, 'r-1', numbers[1])['settings']['volume'] == 0.2
    assert status(client, first)['state'] == 'done'
    group(client, 'g2', ['r-1', 'r-2'])                     # robot-01 moves to g2
    second = rollout(client, 'g2', numbers[2])
    canary = second['waves'][0]
    assert canary == 1 and status(client, second)['running'] == 0
    # r-1 still reports the version it runs: not counted as running g2's version
    for robot in ('r-1', 'r-2'):
        beat(client, robots, robot, desired_version=numbers[1] if robot == 'r-1' else 0)
    assert status(client, second)['running'] == 0
    assert status(client, second)['state'] == 'running'


REFUSALS = [  # (heartbeat fields given the rollout's version n and an earlier one e, halts)
    (lambda n, e: {'version': 2, 'desired_error': f'v{n}: settings.volume: too loud',
                   'desired_refused': n}, True),
    (lambda n, e: {'version': 2, 'desired_error': f'v{e}: settings.volume: too loud',
                   'desired_refused': e}, False),
    (lambda n, e: {'version': 1, 'desired_error': f'v{n}: settings.volume: too loud'}, True),
    (lambda n, e: {'version': 1, 'desired_error': f'v{e}: NOPE-1'}, False),
    (lambda n, e: {'version': 1, 'desired_error': 'refused, version unnamed'}, False),
    (lambda n, e: {'version': 2, 'desired_error': f'v{n}: no number given'}, False),
]


@pytest.mark.parametrize('report, halts', REFUSALS)
def test_a_refusal_counts_only_for_the_version_it_names(fleet, report, halts):
    client, robots, _ = fleet
    group(client, 'g', list(robots))
    earlier = version(client, 'g', 0.1)
    rollout(client, 'g', earlier)
    good = {r: beat(client, robots, r) for r in robots}        # wave 0: the canary only
    canary = next(r for r, v in good.items() if v)
    run(client, robots, canary, earlier)
    number = version(client, 'g', 0.9)
    rolled = rollout(client, 'g', number)
    canary = next(r for r in robots if beat(client, robots, r, desired_version=earlier
                                            if r == canary else 0) == number)
    beat(client, robots, canary, **report(number, earlier))
    state = status(client, rolled)
    assert (state['state'] == 'halted') is halts, state
    if halts:
        assert canary in state['reason'] and f'v{number}' in state['reason']
        history = client.get(f'/v1/admin/fleet/robots/{canary}/history', headers=A).json()
        assert [h['status'] for h in history][-2:] == ['refused', 'withdrawn']


def test_a_halted_rollouts_version_is_not_handed_out_again(fleet):
    """The newcomer's restarted robot: after the halt it is told its last good version (or
    none), so it neither fetches nor refuses the halted one again."""
    client, robots, _ = fleet
    group(client, 'g', list(robots))
    good = version(client, 'g', 0.1)
    first = rollout(client, 'g', good)
    for _ in range(2):
        for robot in robots:
            wanted = beat(client, robots, robot)
            if wanted:
                run(client, robots, robot, wanted)
    assert status(client, first)['state'] == 'done'
    bad = version(client, 'g', 0.9)
    second = rollout(client, 'g', bad)
    canary = next(r for r in robots if beat(client, robots, r, desired_version=good) == bad)
    beat(client, robots, canary, version=2, desired_version=good,
         desired_error=f'v{bad}: NOPE-1', desired_refused=bad)
    assert status(client, second)['state'] == 'halted'
    for robot in robots:          # restarted (no memory of the refusal): told the good one
        assert beat(client, robots, robot, desired_version=good) == good
        document = client.get(f'/v1/robots/{robot}/desired', headers=robots[robot])
        assert document.json()['settings']['volume'] == 0.1
    # a robot that never ran anything is told nothing once the rollout that named it halted
    group(client, 'h', ['r-1'])
    lone = version(client, 'h', 0.5)
    third = rollout(client, 'h', lone)
    assert beat(client, robots, 'r-1', desired_version=good) == lone
    # a safety stop while it still runs the earlier version is not the new version's doing
    beat(client, robots, 'r-1', safety_stop=True, desired_version=good)
    assert status(client, third)['state'] == 'running'
    beat(client, robots, 'r-1', version=2, desired_version=good, desired_error=f'v{lone}: NOPE-2',
         desired_refused=lone)
    assert status(client, third)['state'] == 'halted'
    assert beat(client, robots, 'r-1', desired_version=good) == good


@pytest.mark.parametrize('members, unknown', [
    (['r-1', 'robt-02'], ['robt-02']),
    (['nope-1', 'nope-2'], ['nope-1', 'nope-2']),
    ([f'ghost-{i:02d}' for i in range(30)], ['ghost-00', 'ghost-09', 'and 20 more']),
])
def test_a_group_takes_registered_robots_only(fleet, members, unknown):
    client, robots, _ = fleet
    group(client, 'g2', ['r-3'])
    answer = client.put('/v1/admin/fleet/groups/g2', headers=A, json={'robots': members})
    assert answer.status_code == 422 and '\n' not in answer.json()['detail']
    assert all(name in answer.json()['detail'] for name in unknown), answer.text
    assert 'r-1' not in answer.json()['detail'].split(':')[-1].split(', ')
    # nothing changed: the group still has r-3 only (a rollout plans one robot)
    number = version(client, 'g2', 0.3)
    assert rollout(client, 'g2', number)['waves'] == [1]


@pytest.mark.parametrize('method, path, body', [
    ('POST', '/v1/admin/fleet/groups/nogroup/desired', {'settings': {'volume': 0.3}}),
    ('POST', '/v1/admin/fleet/groups/nogroup/desired?unchecked=true', {'settings': {}}),
    ('POST', '/v1/admin/fleet/groups/nogroup/rollouts', {'version': 1, 'soak_s': 0}),
])
def test_an_unknown_group_is_404_naming_it_and_not_created(fleet, method, path, body):
    client, _, _ = fleet
    answer = client.request(method, path, headers=A, json=body)
    assert answer.status_code == 404 and 'nogroup' in answer.json()['detail'], answer.text
    again = client.post('/v1/admin/fleet/groups/nogroup/desired', headers=A,
                        json={'settings': {'volume': 0.3}})
    assert again.status_code == 404


def test_a_closed_call_takes_no_reply(fleet):
    client, robots, manager = fleet
    call = client.post('/v1/robots/r-1/staff-calls', headers=robots['r-1'],
                       json={'call_id': 'c-1', 'reason': 'product_help'}).json()
    path = f'/v1/stores/s-1/staff-calls/{call["id"]}'
    assert client.post(f'{path}/close', headers=manager).status_code == 200
    for kind in ('answer', 'say'):
        answer = client.post(f'{path}/reply', headers=manager, json={'kind': kind, 'text': 'hi'})
        assert answer.status_code == 409 and 'closed' in answer.json()['detail'], answer.text
    assert client.get('/v1/robots/r-1/staff-messages', headers=robots['r-1']).json() == []


LONG = 'x' * 5000


@pytest.mark.parametrize('method, path, where', [
    ('POST', '/v1/stores/s-1/staff-calls/abc/reply', 'call_id'),
    ('POST', f'/v1/stores/s-1/staff-calls/{LONG}/reply', 'call_id'),
    ('POST', '/v1/stores/s-1/staff-calls/0/close', 'call_id'),
    ('POST', '/v1/stores/s-1/tasks/-1', 'task_id'),
    ('GET', '/v1/admin/fleet/rollouts/abc', 'rollout_id'),
    ('GET', '/v1/robots/r-1/staff-messages?after=-5', 'after'),
    ('GET', f'/v1/robots/r-1/staff-messages?after={LONG}', 'after'),
    ('GET', '/v1/stores/s-1/staff-calls?open=maybe', 'open'),
])
def test_a_bad_path_or_query_parameter_is_a_one_line_422(fleet, method, path, where):
    client, robots, manager = fleet
    headers = robots['r-1'] if '/robots/' in path else A
    answer = client.request(method, path, headers=headers, json={'kind': 'say', 'text': 'x'})
    assert answer.status_code == 422, answer.text
    detail = answer.json()['detail']
    assert isinstance(detail, str) and '\n' not in detail and where in detail, detail
    assert len(answer.text) < 400 and 'xxxxxxxxxx' not in answer.text


def test_a_v1_heartbeat_names_its_refusal_by_the_prefix():
    beat = Heartbeat(version=1, period_s=10, desired_error='v7: settings.volume: 3')
    assert beat.desired_refused == 7
    assert Heartbeat(version=1, period_s=10, desired_error='no prefix').desired_refused == 0
    assert Heartbeat(period_s=10).version == HEARTBEAT_VERSION
