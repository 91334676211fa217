"""Attack round s13: a robot token (one taken from a robot, or a robot gone wrong) could try
member ids on `GET /v1/robots/{robot}/members/{member}` as fast as it liked: every consenting
member of the chain answered 200 with her record (home store, purchase history, profile), every
other id 404, so the chain's members and their histories could be listed by guessing (member
ids are short and often sequential). A robot's lookups are now paced by a token bucket in the
database (every API process draws on one): MEMBER_LOOKUP_BURST at once, then
MEMBER_LOOKUPS_PER_HOUR an hour; past it 429 with Retry-After for any id, known or not (the
robot's agent keeps its cached copy and asks again later). Other robots and the admin are not
affected. A real `serve` process with 2 workers and a real HTTP client."""
from __future__ import annotations

from loop_support import chain
from platform_support import ADMIN, start_server
from retail_platform.storage import MEMBER_LOOKUP_BURST
from rostest_support import stop_process


def test_a_robot_cannot_list_the_chains_members_by_guessing_ids(engine_target):
    tokens = chain(engine_target)
    server = start_server(engine_target, '--workers', '2')
    try:
        admin, robot_1, robot_2 = (server.client(t) for t in (
            ADMIN, tokens['robot'], tokens['robot_other']))
        assert admin.put('/v1/admin/members/m-0042', json={
            'consent': True, 'home_store': 's-2'}).status_code == 200
        answers = [robot_1.get(f'/v1/robots/robot-1/members/m-{n:04d}').status_code
                   for n in range(1, MEMBER_LOOKUP_BURST + 1)]
        assert answers.count(200) == 1 and answers.count(404) == MEMBER_LOOKUP_BURST - 1
        for member in ('m-9999', 'm-0042'):          # known or not: the same answer
            paced = robot_1.get(f'/v1/robots/robot-1/members/{member}')
            assert paced.status_code == 429, paced.text
            assert int(paced.headers['retry-after']) >= 1
            assert 'm-0042' not in paced.text and 'home_store' not in paced.text
        assert robot_2.get('/v1/robots/robot-2/members/m-0042').status_code == 200
        assert admin.get('/v1/robots/robot-1/members/m-0042').status_code == 200
    finally:
        stop_process(server.process)


def test_events_naming_guessed_ids_bring_no_member_into_the_downlink(engine_target):
    """Attack round s13: the pacing above was bypassed by the events upload: one batch of events
    naming guessed ids at the robot's store (a `guide` event with `customer: m-0001`...) made
    every consenting member among them relevant to the store, and the next downlink carried
    their records (home store, purchase history). An event of a member at the store is now a
    reason to know her only when a robot of the store holds or held her (fetched on demand when
    its camera recognised her: paced; or sent for another reason): what a robot names in events
    is what it recognised, and a recognised member it did not hold it has fetched."""
    import time as clock
    tokens = chain(engine_target)
    server = start_server(engine_target)
    try:
        admin, robot_1 = server.client(ADMIN), server.client(tokens['robot'])
        for member in ('m-0007', 'm-0042'):
            assert admin.put(f'/v1/admin/members/{member}', json={
                'consent': True, 'home_store': 's-2', 'history': [
                    {'sku': 'P-1', 'ts': '2026-11-01T10:00', 'qty': 1, 'price_cny': 9.5}]}
            ).status_code == 200
        now = clock.time()
        events = [{'event_id': f'g-{n}', 'seq': n, 'type': 'guide', 'customer': f'm-{n:04d}',
                   'time': now - 60, 'data': {'zone': 'kitchen', 'status': 'started'}}
                  for n in range(1, 101)]
        assert robot_1.post('/v1/robots/robot-1/events',
                            json={'events': events}).json()['acked'] == 100
        assert robot_1.get('/v1/robots/robot-1/downlink').json()['members'] == []
        # recognised in store 1 and fetched on demand: from then on her visits there count
        assert robot_1.get('/v1/robots/robot-1/members/m-0042').status_code == 200
        held = robot_1.get('/v1/robots/robot-1/downlink').json()['members']
        assert [m['member_id'] for m in held] == ['m-0042']
    finally:
        stop_process(server.process)
