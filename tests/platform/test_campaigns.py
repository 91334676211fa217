"""Campaigns (issue 23 point 6) on SQLite and PostgreSQL: the audience table (asked about, bought
recently, bought long ago, all / any), the time window, store and region scoping, the tenancy of
the routes, the downlink's `campaigns` section carrying only matching members the robot's store
knows, and a forgotten member never matched again."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from loop_support import event, store_events
from platform_support import ADMIN
from retail_platform import campaigns as cp
from retail_platform.app import create_app
from retail_platform.database import upgrade
from retail_platform.storage import Storage

A = {'Authorization': f'Bearer {ADMIN}'}
DAY = 86400.0
NOW = 1_790_000_000.0
YEAR = 365 * DAY


def rule(kind: str, category: str, **window) -> cp.AudienceRule:
    return cp.AudienceRule(kind=kind, category=category, **window)


TV_ASKERS = cp.Audience(rules=[rule('asked_about', 'tv', within_days=30)])
OLD_PHONES = cp.Audience(rules=[rule('bought', 'phone', more_than_days=3 * 365)])


@pytest.mark.parametrize('audience, facts, expected', [
    # asked about TVs in the last 30 days
    (TV_ASKERS, cp.MemberFacts(asked=((NOW - 3 * DAY, 'tv'),)), True),
    (TV_ASKERS, cp.MemberFacts(asked=((NOW - 31 * DAY, 'tv'),)), False),            # too long ago
    (TV_ASKERS, cp.MemberFacts(asked=((NOW - 3 * DAY, 'phone'),)), False),          # other kind
    (TV_ASKERS, cp.MemberFacts(asked=((NOW + DAY, 'tv'),)), False),                 # not yet said
    (TV_ASKERS, cp.MemberFacts(bought=((NOW - DAY, 'tv'),)), False),                # bought, not asked
    # bought a phone more than 3 years ago (and none since)
    (OLD_PHONES, cp.MemberFacts(bought=((NOW - 4 * YEAR, 'phone'),)), True),
    (OLD_PHONES, cp.MemberFacts(bought=((NOW - 2 * YEAR, 'phone'),)), False),
    (OLD_PHONES, cp.MemberFacts(bought=((NOW - 4 * YEAR, 'phone'), (NOW - 30 * DAY, 'phone'))), False),
    (OLD_PHONES, cp.MemberFacts(bought=((NOW - 4 * YEAR, 'tv'),)), False),
    (OLD_PHONES, cp.MemberFacts(), False),                                           # never bought
    # bought recently, ever
    (cp.Audience(rules=[rule('bought', 'tv', within_days=90)]),
     cp.MemberFacts(bought=((NOW - 10 * DAY, 'tv'),)), True),
    (cp.Audience(rules=[rule('bought', 'tv', within_days=90)]),
     cp.MemberFacts(bought=((NOW - 100 * DAY, 'tv'),)), False),
    (cp.Audience(rules=[rule('bought', 'tv')]), cp.MemberFacts(bought=((NOW - 9 * YEAR, 'tv'),)), True),
    # all / any
    (cp.Audience(match='all', rules=[rule('asked_about', 'tv'), rule('bought', 'phone', more_than_days=365)]),
     cp.MemberFacts(asked=((NOW - DAY, 'tv'),)), False),
    (cp.Audience(match='any', rules=[rule('asked_about', 'tv'), rule('bought', 'phone', more_than_days=365)]),
     cp.MemberFacts(asked=((NOW - DAY, 'tv'),)), True),
    (cp.Audience(match='all', rules=[rule('asked_about', 'tv'), rule('bought', 'phone', more_than_days=365)]),
     cp.MemberFacts(asked=((NOW - DAY, 'tv'),), bought=((NOW - 2 * YEAR, 'phone'),)), True),
])
def test_the_audience_table(audience, facts, expected):
    assert cp.matches(audience, facts, NOW) is expected


@pytest.mark.parametrize('bad, words', [
    ({'rules': []}, 'at least 1'),
    ({'rules': [{'kind': 'asked_about', 'category': 'tv', 'more_than_days': 3}]}, 'within_days only'),
    ({'rules': [{'kind': 'bought', 'category': 'tv', 'within_days': 3, 'more_than_days': 9}]}, 'not both'),
    ({'rules': [{'kind': 'visited', 'category': 'tv'}]}, 'asked_about'),
    ({'rules': [{'kind': 'bought', 'category': 'TV; DROP'}]}, 'pattern'),
])
def test_a_bad_audience_is_refused_with_the_reason(bad, words):
    with pytest.raises(ValueError, match=words):
        cp.Audience.model_validate(bad)


def _when(offset_days: float) -> str:
    return datetime.fromtimestamp(time.time() + offset_days * DAY, timezone(timedelta(hours=8))).isoformat()


def campaign(**changes) -> dict:
    body = {'name': 'TV week', 'audience': {'rules': [{'kind': 'asked_about', 'category': 'tv',
                                                       'within_days': 30}]},
            'skus': ['TV-1'], 'message_zh': '电视周：会员85寸电视立减1000元。',
            'message_en': 'TV week: members save 1,000 yuan on 85-inch TVs.',
            'stores': [], 'regions': [], 'starts_at': _when(-1), 'ends_at': _when(6)}
    body.update(changes)
    return body


def product(sku: str, category: str) -> dict:
    return dict(sku=sku, name_zh=f'商品{sku}', name_en=f'Product {sku}', aliases='', category=category,
                category_zh='', brand='Acme', brand_zh='', price_cny='100', zone='aisle-1', stock='5',
                tags='', promotion='', promotion_en='')


def bearer(token: str) -> dict:
    return {'Authorization': f'Bearer {token}'}


@pytest.fixture
def platform(engine_target):
    storage = Storage(engine_target)
    upgrade(storage.engine)
    storage.add_region('north', 'North')
    storage.add_region('south', 'South')
    storage.add_store('s-own', 'Own store', 'north')
    storage.add_store('s-near', 'Near store', 'north')
    storage.add_store('s-other', 'Other store', 'south')
    tokens = {'own': storage.issue_robot_token('robot-own', 's-own'),
              'other': storage.issue_robot_token('robot-other', 's-other'),
              'manager': storage.issue_staff_token('store_manager', 'ann', ['s-own']),
              'manager_other': storage.issue_staff_token('store_manager', 'bo', ['s-other']),
              'analyst': storage.issue_staff_token('analyst', 'hq'),
              'region': storage.issue_staff_token('region', 'rob', region='south')}
    storage.close()
    with TestClient(create_app(engine_target, ADMIN), raise_server_exceptions=False) as client:
        assert client.put('/v1/products', headers=A, json={'products': [
            product('TV-1', 'tv'), product('PH-1', 'phone')]}).status_code == 200
        for member in ('m-tv', 'm-phone', 'm-quiet'):
            assert client.put(f'/v1/admin/members/{member}', headers=A, json={
                'consent': True, 'home_store': 's-own', 'history': []}).status_code == 200
        assert client.put('/v1/admin/members/m-other', headers=A, json={
            'consent': True, 'home_store': 's-other', 'history': []}).status_code == 200
        now = time.time()
        store_events(client.app.state.storage, 'robot-own', [
            event('member_said', now - 3 * DAY, {'category': 'tv', 'language': 'zh'}, 'm-tv'),
            event('member_said', now - 40 * DAY, {'category': 'tv', 'language': 'zh'}, 'm-quiet')])
        store_events(client.app.state.storage, 'robot-other', [
            event('member_said', now - 1 * DAY, {'category': 'tv', 'language': 'zh'}, 'm-other')])
        old = datetime.fromtimestamp(now - 4 * YEAR, timezone(timedelta(hours=8))).isoformat()
        receipt = {'receipt_id': 'r-old', 'store_id': 's-own', 'time': old, 'member_id': 'm-phone',
                   'lines': [{'sku': 'PH-1', 'qty': 1, 'price_cny': 3999.0}]}
        answer = client.post('/v1/stores/s-own/receipts', headers=A, content=json.dumps(receipt))
        assert answer.status_code == 200 and answer.json()['stored'] == 1, answer.text
        yield client, tokens
        client.app.state.storage.close()


def _active(client, token: str, robot: str) -> dict[str, list[str]]:
    answer = client.get(f'/v1/robots/{robot}/campaigns', headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return {c['id']: c['members'] for c in answer.json()['active']}


def test_robots_get_only_matching_members_of_their_store_in_the_downlink(platform):
    client, tokens = platform
    assert client.put('/v1/campaigns/tv-week', headers=A, json=campaign()).status_code == 200
    assert client.put('/v1/campaigns/upgrade', headers=A, json=campaign(
        name='Phone upgrade', skus=['PH-1'],
        audience={'rules': [{'kind': 'bought', 'category': 'phone', 'more_than_days': 1095}]})).status_code == 200
    assert _active(client, tokens['own'], 'robot-own') == {'tv-week': ['m-tv'], 'upgrade': ['m-phone']}
    # the other store's robot knows only its own member (m-tv is not sent there)
    assert _active(client, tokens['other'], 'robot-other') == {'tv-week': ['m-other'], 'upgrade': []}
    section = client.get('/v1/robots/robot-own/downlink', headers=bearer(tokens['own'])).json()['campaigns']
    assert section['version'] == cp.SECTION_VERSION and section['store_id'] == 's-own'
    assert {c['id']: c['members'] for c in section['active']} == {'tv-week': ['m-tv'], 'upgrade': ['m-phone']}
    tv = next(c for c in section['active'] if c['id'] == 'tv-week')
    assert tv['message_en'].startswith('TV week') and tv['skus'] == ['TV-1']
    # a robot may not read another robot's campaigns, nor HQ's list
    assert client.get('/v1/robots/robot-own/campaigns', headers=bearer(tokens['other'])).status_code == 403
    assert client.get('/v1/campaigns', headers=bearer(tokens['own'])).status_code == 403


@pytest.mark.parametrize('where, own, other', [
    ({'stores': ['s-own']}, True, False),
    ({'stores': ['s-near']}, False, False),
    ({'regions': ['north']}, True, False),
    ({'regions': ['south']}, False, True),
    ({'stores': ['s-own'], 'regions': ['south']}, True, True),
    ({}, True, True),                                   # no place: the whole chain
])
def test_store_and_region_scoping(platform, where, own, other):
    client, tokens = platform
    assert client.put('/v1/campaigns/c-1', headers=A, json=campaign(**where)).status_code == 200
    assert ('c-1' in _active(client, tokens['own'], 'robot-own')) is own
    assert ('c-1' in _active(client, tokens['other'], 'robot-other')) is other


@pytest.mark.parametrize('starts, ends, running', [
    (-1, 6, True), (1, 6, False), (-9, -1, False), (-1, 0.0001, True)])
def test_the_time_window(platform, starts, ends, running):
    client, tokens = platform
    body = campaign(starts_at=_when(starts), ends_at=_when(ends))
    assert client.put('/v1/campaigns/c-1', headers=A, json=body).status_code == 200
    assert ('c-1' in _active(client, tokens['own'], 'robot-own')) is running


def test_a_forgotten_member_is_never_matched_again(platform):
    client, tokens = platform
    assert client.put('/v1/campaigns/upgrade', headers=A, json=campaign(
        skus=['PH-1'], audience={'rules': [{'kind': 'bought', 'category': 'phone'}]})).status_code == 200
    assert _active(client, tokens['own'], 'robot-own')['upgrade'] == ['m-phone']
    assert client.post('/v1/admin/members/m-phone/forget', headers=A).status_code == 200
    assert _active(client, tokens['own'], 'robot-own')['upgrade'] == []
    # the till still knows the old id: a receipt of it imported after the forget matches nobody
    receipt = {'receipt_id': 'r-late', 'store_id': 's-own', 'time': _when(-1), 'member_id': 'm-phone',
               'lines': [{'sku': 'PH-1', 'qty': 1, 'price_cny': 3999.0}]}
    client.post('/v1/stores/s-own/receipts', headers=A, content=json.dumps(receipt))
    assert _active(client, tokens['own'], 'robot-own')['upgrade'] == []
    assert client.get('/v1/campaigns/upgrade/audience', headers=A).json()['members'] == 0


@pytest.mark.parametrize('change, status, words', [
    ({'stores': ['s-none']}, 404, 'no store'), ({'regions': ['east']}, 404, 'no region'),
    ({'skus': ['NOPE']}, 404, 'no product'), ({'ends_at': _when(-2)}, 422, 'after starts_at'),
    ({'message_zh': ' '}, 422, 'message_zh'), ({'skus': ['a/b']}, 422, 'skus'),
    ({'stores': ['s own']}, 422, 'stores'), ({'extra': 1}, 422, 'extra')])
def test_a_bad_campaign_is_refused_in_one_line(platform, change, status, words):
    client, _ = platform
    answer = client.put('/v1/campaigns/c-bad', headers=A, json=campaign(**change))
    assert answer.status_code == status and words in answer.json()['detail'], answer.text
    assert client.get('/v1/campaigns/c-bad', headers=A).status_code == 404


def test_a_time_without_an_offset_is_the_chains_time():
    given = cp.CampaignIn.model_validate(campaign(starts_at='2026-11-01T10:00:00',
                                                  ends_at='2026-11-01T12:00:00+08:00'))
    assert given.ends_at.timestamp() - given.starts_at.timestamp() == 7200


def test_tenancy_admin_writes_staff_read_their_stores(platform):
    client, tokens = platform
    assert client.put('/v1/campaigns/own', headers=A, json=campaign(stores=['s-own'])).status_code == 200
    assert client.put('/v1/campaigns/south', headers=A, json=campaign(regions=['south'])).status_code == 200
    for role in ('manager', 'analyst', 'region'):
        assert client.put('/v1/campaigns/x', headers=bearer(tokens[role]), json=campaign()).status_code == 403
        assert client.delete('/v1/campaigns/own', headers=bearer(tokens[role])).status_code == 403

    def seen(role: str) -> list[str]:
        answer = client.get('/v1/campaigns', headers=bearer(tokens[role]))
        assert answer.status_code == 200
        return [c['id'] for c in answer.json()['campaigns']]
    assert seen('analyst') == ['own', 'south']
    assert seen('manager') == ['own'] and seen('manager_other') == ['south'] and seen('region') == ['south']
    assert client.get('/v1/campaigns/south', headers=bearer(tokens['manager'])).status_code == 404
    assert client.get('/v1/campaigns/own/audience', headers=bearer(tokens['manager'])).status_code == 403
    assert client.delete('/v1/campaigns/own', headers=A).status_code == 200
    assert client.delete('/v1/campaigns/own', headers=A).status_code == 404
