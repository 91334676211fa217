"""Members' profiles on the platform (SQLite and PostgreSQL): what a consenting member said to a
robot in one store is read by a robot of another store; anonymous words build none; a statement
uploaded late lands in its place; forgetting the member forgets the profile; roles."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from loop_support import chain, event
from platform_support import ADMIN
from retail_platform import profiles
from retail_platform.app import create_app
from retail_platform.storage import Storage


@pytest.fixture
def api(engine_target):
    tokens = chain(engine_target)
    tokens['admin'] = ADMIN
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        yield client, tokens, engine_target


def _say(client, token: str, robot: str, events: list[dict]) -> None:
    got = client.post(f'/v1/robots/{robot}/events', json={'events': events},
                      headers={'Authorization': f'Bearer {token}'})
    assert got.status_code == 200 and got.json()['rejected'] == 0, got.text


def test_what_a_member_said_in_store_1_is_her_profile_in_store_2_and_forget_ends_it(api):
    client, tokens, target = api
    monday = 1.7800e9
    _say(client, tokens['robot'], 'robot-1', [
        event('member_said', monday, {'category': '笔记本', 'max_price': 6000,
                                      'brands_wanted': ['华为'], 'brands_refused': ['联想']},
              'm-0001'),
        event('member_said', monday + 60, {'category': '电视', 'max_price': 3000}),   # anonymous
    ])
    robot_b = {'Authorization': f'Bearer {tokens["robot_other"]}'}
    # she is a consenting member; robot b recognises her in store 2 and fetches her on demand,
    # robot 1 has her in its downlink (home store): each holds her, so each reads her profile
    # (a robot that does not hold her: tests/platform/test_profile_tenancy.py)
    assert client.put('/v1/admin/members/m-0001', headers={'Authorization': f'Bearer {ADMIN}'},
                      json={'consent': True, 'home_store': 's-1'}).status_code == 200
    assert client.get('/v1/robots/robot-2/members/m-0001', headers=robot_b).status_code == 200
    assert client.get('/v1/robots/robot-1/downlink', headers={
        'Authorization': f'Bearer {tokens["robot"]}'}).status_code == 200
    got = client.get('/v1/members/m-0001/profile', headers=robot_b)
    assert got.status_code == 200, got.text
    p = got.json()
    assert (p['category'], p['max_price'], p['brands_wanted'], p['brands_refused']) == \
        ('笔记本', 6000, ['华为'], ['联想'])
    # a later visit changes her mind about 联想; an older statement uploaded late (a robot
    # offline for a week) does not override the newer one
    _say(client, tokens['robot'], 'robot-1', [
        event('member_said', monday + 86400, {'brands_wanted': ['联想'],
                                              'declined_skus': ['NB-1']}, 'm-0001')])
    _say(client, tokens['robot_other'], 'robot-2', [
        event('member_said', monday - 7 * 86400, {'category': '手机', 'max_price': 2000},
              'm-0001')])
    p = client.get('/v1/members/m-0001/profile', headers=robot_b).json()
    assert p['category'] == '笔记本' and p['max_price'] == 6000
    assert p['brands_wanted'] == ['华为', '联想'] and p['brands_refused'] == []
    assert p['declined_skus'] == ['NB-1']
    for role, status in (('store_manager', 403), ('region', 403), ('analyst', 403),
                         ('admin', 200), ('robot', 200)):
        assert client.get('/v1/members/m-0001/profile', headers={
            'Authorization': f'Bearer {tokens[role]}'}).status_code == status, role
    assert client.get('/v1/members/m-0002/profile', headers=robot_b).status_code == 404
    assert client.get('/v1/members/bad%20id/profile', headers=robot_b).status_code == 404
    storage = Storage(target)
    try:
        with storage.engine.begin() as c:
            assert profiles.forget_profile(c, 'm-0001') == 1
    finally:
        storage.close()
    assert client.get('/v1/members/m-0001/profile', headers=robot_b).status_code == 404


def test_the_profile_fold_is_the_same_in_any_order():
    said = [{'time': 3, 'key': 'c', 'brands_refused': ['A']},
            {'time': 1, 'key': 'a', 'category': 'tv', 'max_price': 5000, 'brands_wanted': ['A']},
            {'time': 2, 'key': 'b', 'compared_skus': ['X', 'Y'], 'max_price': 4000}]
    expected = profiles.build(said)
    assert profiles.build(list(reversed(said))) == expected
    assert expected['brands_wanted'] == [] and expected['brands_refused'] == ['A']
    assert expected['category'] == 'tv' and expected['max_price'] == 4000


def test_a_turn_becomes_what_the_member_said_only_when_it_says_something():
    from retail_common import events as ev
    said = ev.MemberSaid.from_turn('find_product', ev.Slots(category='笔记本', max_price=6000,
                                                            brand='华为', exclude_brands=['联想']),
                                   'zh')
    assert said is not None and said.to_data() == {
        'category': '笔记本', 'max_price': 6000.0, 'brands_wanted': ['华为'],
        'brands_refused': ['联想'], 'compared_skus': [], 'declined_skus': [], 'language': 'zh'}
    ev.validate_event('member_said', said.to_data())
    assert ev.MemberSaid.from_turn('greet', ev.Slots(), 'en') is None
    compared = ev.MemberSaid.from_turn('compare', ev.Slots(skus=['A', 'B']), 'en')
    assert compared is not None and compared.compared_skus == ['A', 'B']


def test_the_member_record_a_robot_receives_carries_her_profile_until_she_is_forgotten(api):
    """Robot 2 (store s-2, her home store) holds member m-0001; what she says to robot 1 in store
    s-1 reaches robot 2 in its next delta inside her member record (once, not at every poll), and
    the record fetched on demand carries it too. Forgetting her removes the profile, the record
    and every later statement a robot uploads about her."""
    client, tokens, _ = api
    admin = {'Authorization': f'Bearer {tokens["admin"]}'}
    robot_b = {'Authorization': f'Bearer {tokens["robot_other"]}'}
    assert client.put('/v1/admin/members/m-0001', headers=admin,
                      json={'consent': True, 'home_store': 's-2'}).status_code == 200
    first = client.get('/v1/robots/robot-2/downlink', headers=robot_b).json()
    assert [(m['member_id'], m.get('profile')) for m in first['members']] == [('m-0001', None)]
    monday = 1.7800e9
    _say(client, tokens['robot'], 'robot-1', [
        event('member_said', monday, {'category': 'laptop', 'max_price': 6000,
                                      'brands_wanted': ['Huawei']}, 'm-0001')])
    delta = client.get('/v1/robots/robot-2/downlink', params={'since': first['version']},
                       headers=robot_b).json()
    [record] = delta['members']
    assert (record['profile']['category'], record['profile']['max_price'],
            record['profile']['brands_wanted']) == ('laptop', 6000, ['Huawei'])
    quiet = client.get('/v1/robots/robot-2/downlink', params={'since': delta['version']},
                       headers=robot_b).json()
    assert quiet['members'] == [] and quiet['version'] == delta['version']
    fetched = client.get('/v1/robots/robot-1/members/m-0001',
                         headers={'Authorization': f'Bearer {tokens["robot"]}'})
    assert fetched.status_code == 200 and fetched.json()['profile']['category'] == 'laptop'

    assert client.post('/v1/admin/members/m-0001/forget', headers=admin).status_code == 200
    gone = client.get('/v1/robots/robot-2/downlink', params={'since': quiet['version']},
                      headers=robot_b).json()
    assert gone['members'] == [] and 'm-0001' in gone['forget']
    assert client.get('/v1/members/m-0001/profile', headers=robot_b).status_code == 404
    # a robot offline during the forget uploads what she said before it: no profile comes back
    _say(client, tokens['robot'], 'robot-1', [
        event('member_said', monday + 10, {'category': 'tv'}, 'm-0001')])
    assert client.get('/v1/members/m-0001/profile', headers=robot_b).status_code == 404
    late = client.get('/v1/robots/robot-2/downlink', params={'since': gone['version']},
                      headers=robot_b).json()
    assert late['members'] == []


def test_a_member_whose_record_says_no_consent_has_no_profile_served(api):
    """Attack round: after a member's consent was withdrawn on the platform (her record's consent
    false), the on-demand member record, the downlink and campaigns left her out, but
    /v1/members/{id}/profile still served what she had said to the robots of every store. Now it
    answers 404 as for a member with no profile; given again, her profile is served again."""
    client, tokens, _ = api
    admin = {'Authorization': f'Bearer {ADMIN}'}
    robot_b = {'Authorization': f'Bearer {tokens["robot_other"]}'}
    assert client.put('/v1/admin/members/m-0003', headers=admin,
                      json={'consent': True}).status_code == 200
    _say(client, tokens['robot'], 'robot-1', [
        event('member_said', 1.78e9, {'category': '笔记本', 'max_price': 6000}, 'm-0003')])
    assert client.get('/v1/robots/robot-2/members/m-0003', headers=robot_b).status_code == 200
    assert client.get('/v1/members/m-0003/profile', headers=robot_b).status_code == 200
    for consent, status in ((False, 404), (True, 200)):
        assert client.put('/v1/admin/members/m-0003', headers=admin,
                          json={'consent': consent}).status_code == 200
        for who in (robot_b, admin):
            got = client.get('/v1/members/m-0003/profile', headers=who)
            assert got.status_code == status, (consent, got.text)
        on_demand = client.get('/v1/robots/robot-2/members/m-0003', headers=robot_b)
        assert on_demand.status_code == status, (consent, on_demand.text)
