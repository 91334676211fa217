"""Attack round s13: `GET /v1/members/{member}/profile` answered any robot of any store with any
member's profile (what she said she wants: category, budget, brands) by id, also a member with
no consenting record, and without recording that robot as holding her, so forgetting her never
expected that robot to confirm. A robot now reads the profile only of a member it holds (sent
in its downlink or fetched on demand when it recognised her: recorded, so a forget reaches it);
to any other robot she is 404, the same answer as a member with no profile (no enumeration).
A real `serve` process and a real HTTP client, on SQLite and PostgreSQL."""
from __future__ import annotations

from loop_support import chain, event
from platform_support import ADMIN, start_server
from rostest_support import stop_process


def test_a_robot_reads_only_the_profiles_of_members_it_holds(engine_target):
    tokens = chain(engine_target)
    server = start_server(engine_target)
    try:
        admin, robot_1, robot_2 = (server.client(t) for t in (
            ADMIN, tokens['robot'], tokens['robot_other']))
        assert admin.put('/v1/admin/members/m-0001', json={
            'consent': True, 'home_store': 's-1'}).status_code == 200
        said = robot_1.post('/v1/robots/robot-1/events', json={'events': [
            event('member_said', 1.78e9, {'category': '笔记本', 'max_price': 6000,
                                          'brands_wanted': ['华为']}, 'm-0001'),
            event('member_said', 1.78e9, {'category': '电视', 'max_price': 3000}, 'm-0077')]})
        assert said.status_code == 200 and said.json()['rejected'] == 0, said.text
        # robot-1 holds her (its store is her home store: she comes in its downlink)
        assert 'm-0001' in [m['member_id'] for m in
                            robot_1.get('/v1/robots/robot-1/downlink').json()['members']]
        assert robot_1.get('/v1/members/m-0001/profile').json()['max_price'] == 6000
        # robot-2, another store's, has no reason to know her: the answer of an unknown member
        unknown = robot_2.get('/v1/members/m-nobody/profile')
        for member in ('m-0001', 'm-0077'):        # m-0077: a profile, no consenting record
            got = robot_2.get(f'/v1/members/{member}/profile')
            assert (got.status_code, got.json()) == (404, unknown.json()), (member, got.text)
            assert '6000' not in got.text and '3000' not in got.text
        assert admin.get('/v1/members/m-0001/profile').status_code == 200
        # she walks into store 2: its robot recognises her and fetches her on demand; from then
        # on it holds her, reads her profile, and forgetting her expects its confirmation
        assert robot_2.get('/v1/robots/robot-2/members/m-0001').status_code == 200
        assert robot_2.get('/v1/members/m-0001/profile').json()['category'] == '笔记本'
        forget = admin.post('/v1/admin/members/m-0001/forget').json()
        expected = {r['robot_id'] for r in forget['robots'] if r.get('expected', True)}
        assert {'robot-1', 'robot-2'} <= expected, forget
    finally:
        stop_process(server.process)

