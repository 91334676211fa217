"""The store day's checks as data (retail_demo.checks): every expectation has a measure, a scene
exists for every scene name, and a measure words what was seen the way summary.json shows it."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from retail_common.profiles import MemberProfile
from retail_demo import demo_scenario as story
from retail_demo.checks import CHECKS, MEASURES, Observations, evaluate
from retail_demo.demo_report import Expectations


def test_every_expectation_has_a_measure_and_every_scene_a_script():
    from retail_demo.scenes import PLAYS
    assert [c.name for c in CHECKS] == list(story.EXPECTATIONS)
    assert set(MEASURES) == set(story.EXPECTATIONS)
    assert list(PLAYS) == list(story.SCENES)


def test_an_expectation_never_noted_is_not_reached():
    expect = evaluate(Observations(), Expectations(story.expectations_for(['vip'])))
    rows = {row['name']: row for row in expect.to_json()}
    assert rows['vip_greeted'] == {'name': 'vip_greeted', 'expectation': story.EXPECTATIONS['vip_greeted'],
                                   'ok': False, 'detail': 'not reached'}
    assert 'member_greeted' not in rows                       # not a check of the scenes played
    assert any(line.startswith('NOT MET: ' + story.EXPECTATIONS['vip_escorted']) for line in expect.failed())


CHECKIN = {'status': 'on_time', 'customer': 'm-900001'}

INCIDENT = {'written': True, 'listed': True, 'local_deleted': True, 'sha256_ok': True, 'id': 1, 'messages': 11250,
            'topics': ['/navigation/safety', '/scan'], 'bumper_in_recording': True, 'camera_images': []}


def _incident_words(o: dict) -> str:
    return (f'uploaded as incident {o["id"]}, robot copy deleted={o["local_deleted"]}, {o["messages"]} messages '
            f'on {len(o["topics"])} topics read back, bumper press in it={o["bumper_in_recording"]}, '
            f'camera images={o["camera_images"]}')


class _Phone:
    def __init__(self, sku: str, brand: str, price: float, category: str = 'phone') -> None:
        self.sku, self.brand, self.price_cny, self.category = sku, brand, price, category


HUAWEI, OTHER, DEAR = _Phone('P1', 'Huawei', 4999.0), _Phone('P2', 'Xiaomi', 3999.0), _Phone('P3', 'Huawei', 6999.0)
SAID = '上次您在看5499元以下的手机，想要华为'
PROFILE = MemberProfile(category='phone', max_price=5499.0, brands_wanted=('Huawei',))


def _returned(products, profile_used=True, said=SAID, profile=PROFILE):
    recommended = {'profile_used': profile_used,
                   'products': [{'sku': p.sku, 'reason_zh': f'{said}；好评'} for p in products]}
    return {'profile': profile, 'recommended': recommended, 'products': products, 'reply': '为您推荐'}


def _returned_words(products, profile_used=True, said=SAID, profile=PROFILE) -> str:
    return (f'profile phone 0-5499 yuan, wants {list(profile.brands_wanted)}; profile_used={profile_used}, '
            f'{[(p.sku, p.brand, p.price_cny) for p in products]}, '
            f'reasons {[f"{said}；好评" for _ in products]}: 为您推荐')


# (name, facts noted by the scene, (ok, detail) in summary.json)
VARIANTS = [
    ('vip_greeted', {'greeting': '林先生您好，新款折叠屏手机的私人体验', 'name': '林先生',
                     'purpose': '新款折叠屏手机的私人体验'}, (True, '林先生您好，新款折叠屏手机的私人体验')),
    ('vip_greeted', {'greeting': '您好', 'name': '林先生', 'purpose': 'x'}, (False, '您好')),
    ('vip_greeted', {'greeting': None, 'name': '林先生', 'purpose': 'x'}, (False, 'no greeting')),
    ('member_greeted', {'greeting': '王女士您好', 'name': '王女士'}, (True, '王女士您好')),
    ('vip_identified', {'customer_id': 'm-1', 'seen': ('m-1', True, '林先生')}, (True, 'camera saw 林先生')),
    ('vip_identified', {'customer_id': 'm-1', 'seen': ('m-1', False, '')}, (False, 'camera saw nobody known')),
    ('vip_identified', {'customer_id': 'm-1', 'seen': None}, (False, 'nobody seen')),
    ('vip2_checked_in', {'checkin': CHECKIN}, (True, json.dumps(CHECKIN, ensure_ascii=False))),
    ('vip2_checked_in', {'checkin': {'status': 'late'}}, (False, '{"status": "late"}')),
    ('vip2_checked_in', {'checkin': None}, (False, 'no check-in event')),
    ('vip_escorted', {'arrived': True, 'zone': 'vip_lounge'}, (True, 'arrived at vip_lounge')),
    ('vip_escorted', {'arrived': False, 'zone': 'vip_lounge'}, (False, 'did not arrive')),
    ('screen_reasons', {'shot': Path('recommendations.png')}, (True, 'recommendations.png')),
    ('screen_reasons', {'shot': 'screenshots off: no browser'}, (False, 'screenshots off: no browser')),
    ('bumper_stop', {'moving': False}, (False, 'the robot never started towards the phones')),
    ('bumper_stop', {'moving': True, 'stopped': True, 'apology': '抱歉', 'reset': 'drive enabled'},
     (True, 'stopped=True, apology=抱歉, reset=drive enabled')),
    ('bumper_stop', {'moving': True, 'stopped': True, 'apology': None, 'reset': 'ok'},
     (False, 'stopped=True, apology=None, reset=ok')),
    ('member_returned', _returned([HUAWEI, OTHER]), (True, _returned_words([HUAWEI, OTHER]))),
    ('member_returned', _returned([OTHER, HUAWEI]), (False, _returned_words([OTHER, HUAWEI]))),   # brand not first
    ('member_returned', _returned([HUAWEI, DEAR]), (False, _returned_words([HUAWEI, DEAR]))),     # over budget
    ('member_returned', _returned([HUAWEI], profile=replace(PROFILE, brands_wanted=())),        # not what she said
     (False, _returned_words([HUAWEI], profile=replace(PROFILE, brands_wanted=())))),
    ('member_returned', _returned([HUAWEI], profile_used=None), (False, _returned_words([HUAWEI], None))),
    ('member_returned', _returned([HUAWEI], said='为您推荐'), (False, _returned_words([HUAWEI], said='为您推荐'))),
    ('member_returned', _returned([]), (False, _returned_words([]))),
    ('member_returned', {'profile': None, 'recommended': None, 'products': [], 'reply': None},
     (False, 'her profile never reached the robot')),
    ('shopper_answered', {'reply': '空气炸锅在厨房电器区'}, (True, '空气炸锅在厨房电器区')),
    ('shopper_answered', {'reply': None}, (False, 'no answer')),
    ('tour_next', {'answer': '好的，下一站', 'stopped': None}, (True, '好的，下一站')),
    ('tour_next', {'answer': '好的', 'stopped': {'status': 'failed'}},
     (False, "好的; tour ended: {'status': 'failed'}")),
    ('no_events_lost', {'produced': {'a', 'b'}, 'uploaded': {'a', 'b'}, 'pending': set()},
     (True, '2 produced, 2 on the platform, 0 still in the outbox, 0 lost')),
    ('no_events_lost', {'produced': {'a', 'b'}, 'uploaded': {'a'}, 'pending': set()},
     (False, '2 produced, 1 on the platform, 0 still in the outbox, 1 lost')),
    ('no_events_lost', {'produced': {'a', 'b'}, 'uploaded': {'a', 'b'}, 'pending': {'b', 'c'}},
     (True, '2 produced, 2 on the platform, 2 still in the outbox, 0 lost (in the outbox: 1 already on '
            'the platform, its confirmation cut by the shutdown; 1 written while stopping; both go up '
            'at the next start)')),
    ('no_events_lost', {'produced': {'a', 'b'}, 'uploaded': {'a'}, 'pending': {'b'}},
     (False, '2 produced, 1 on the platform, 1 still in the outbox, 0 lost; 1 never uploaded before closing')),
    ('no_events_lost', {'produced': set(), 'uploaded': set(), 'pending': set()},
     (False, '0 produced, 0 on the platform, 0 still in the outbox, 0 lost')),
    ('purchase_attributed', {'receipt': {'sku': 'P1', 'price_cny': 3999.0},
                             'funnel': {'purchased': 1, 'attributed_revenue_cny': 3999.0}},
     (True, 'her receipt P1 3999 yuan; the funnel: purchased 1, attributed revenue 3999.0 yuan')),
    # the walk-in's cash sale credited to the robot as well: a store manager would see it
    ('purchase_attributed', {'receipt': {'sku': 'P1', 'price_cny': 3999.0},
                             'funnel': {'purchased': 2, 'attributed_revenue_cny': 4298.0}},
     (False, 'her receipt P1 3999 yuan; the funnel: purchased 2, attributed revenue 4298.0 yuan')),
    ('purchase_attributed', {'receipt': {'sku': 'P1', 'price_cny': 3999.0},
                             'funnel': {'purchased': 0, 'attributed_revenue_cny': 0}},
     (False, 'her receipt P1 3999 yuan; the funnel: purchased 0, attributed revenue 0 yuan')),
    ('purchase_attributed', {'receipt': {'sku': 'P1', 'price_cny': 3999.0}, 'funnel': None},
     (False, 'no funnel of the day from the platform')),
    ('purchase_attributed', {'receipt': None}, (False, 'no receipt of hers was sent')),
    ('localised', {'error': 0.05, 'poses': 10, 'truths': 40}, (True, 'largest error 0.050 m over 10 poses (published poses)')),
    ('localised', {'error': 0.5, 'poses': 10, 'truths': 40}, (False, 'largest error 0.500 m over 10 poses (published poses)')),
    ('localised', {'error': None, 'poses': 0, 'truths': 40}, (False, 'no pose to compare (0 poses, 40 ground truth)')),
    ('no_contacts', {'contacts': 0, 'shoppers': 3}, (True, '0 contact(s) with 3 shoppers walking')),
    ('no_contacts', {'contacts': None, 'shoppers': 3}, (False, 'the simulator reported no contact count')),
    ('sync_restarted', {'back': True, 'restarts': 1}, (True, 'restarted 1 time(s)')),
    ('incident_uploaded', {'written': False}, (False, 'no incident recording of the bumper stop was written')),
    *[('incident_uploaded', {**INCIDENT, **change}, (ok, _incident_words({**INCIDENT, **change})))
      for change, ok in [({}, True), ({'local_deleted': False}, False), ({'bumper_in_recording': False}, False),
                         ({'sha256_ok': False}, False), ({'camera_images': ['/perception/image_raw']}, False),
                         ({'listed': False}, False)]],
]


@pytest.mark.parametrize('name,facts,result', VARIANTS, ids=[f'{v[0]}-{i}' for i, v in enumerate(VARIANTS)])
def test_a_measure_words_what_was_seen(name, facts, result):
    seen = Observations()
    seen.note(name, **facts)
    expect = evaluate(seen, Expectations({name: story.EXPECTATIONS[name]}))
    assert expect.results[name] == result
