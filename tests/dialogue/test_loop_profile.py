"""The data loop in the conversation (issue 23): a returning member is greeted and advised with
what she said on an earlier visit (her profile from the platform, in the store model), and the
recommendation event says when it was; a member's wishes are uploaded as `member_said`, an
anonymous customer's never; an anonymous customer is shown a purchase code with the products
(a `screen_code` event), a member is not."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from retail_common.profiles import MemberProfile
from retail_common.store import load_store
from retail_dialogue.manager import (CODE_LETTERS, AskRecommendations, DialogueManager, Record,
                                     RecommendedProduct, Say, new_screen_code)
from retail_dialogue.nlu import Nlu

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
SHE = 'm-0001'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def _profiled(demo, profile: dict | None):
    store, nlu = demo
    if profile is not None:
        store = replace(store, profiles={SHE: MemberProfile.from_dict(profile)})
    codes = iter(['K7Q2MX', 'ZZZZZZ'])
    return store, DialogueManager(store, nlu=nlu, new_code=lambda: next(codes))


def _items(store, skus, reason_zh=lambda sku: f'理由{sku}'):
    by = store.catalog.by_sku
    return [RecommendedProduct(s, by[s].name_zh, by[s].name_en, by[s].price_cny, by[s].zone,
                               reason_zh(s), f'reason {s}') for s in skus]


def _records(effects, kind):
    return [e for e in effects if isinstance(e, Record) and e.type == kind]


LAPTOPS = {'category': 'laptop', 'max_price': 6000, 'brands_wanted': ['Huawei']}


@pytest.mark.parametrize('language', ['zh', 'en'])
def test_a_returning_member_is_greeted_with_what_she_said_last_time(demo, language):
    store, manager = _profiled(demo, LAPTOPS)
    manager.default_language = language
    effects = manager.on_customer(7, SHE, '王丽' if language == 'zh' else 'Li Wang')
    [say] = [e for e in effects if isinstance(e, Say)]
    if language == 'zh':
        assert '上次您在看6000元以下的笔记本电脑，想要华为' in say.text and '王丽' in say.text
    else:
        assert 'last time you were looking at laptops under 6,000 yuan, Huawei preferred' in say.text
    [greeting] = _records(effects, 'greeting')
    assert greeting.payload['profile'] is True and greeting.customer_pseudonym == SHE


@pytest.mark.parametrize('who, profile', [('', LAPTOPS), (SHE, None), (SHE, {'brands_refused': ['Apple']})])
def test_no_profile_sentence_for_anonymous_customers_and_members_without_one(demo, who, profile):
    store, manager = _profiled(demo, profile)
    effects = manager.on_customer(7, who, '王丽' if who else '')
    [say] = [e for e in effects if isinstance(e, Say)]
    assert '上次' not in say.text
    [greeting] = _records(effects, 'greeting')
    assert 'profile' not in greeting.payload


def test_the_recommendation_event_says_when_her_profile_shaped_it(demo):
    store, manager = _profiled(demo, LAPTOPS)
    manager.on_customer(7, SHE, '王丽')
    [ask] = [e for e in manager.on_utterance(7, '给我推荐一台笔记本') if isinstance(e, AskRecommendations)]
    assert ask.query.customer_id == SHE
    shaped = _items(store, ['HW-MB14'], lambda s: f'上次您在看6000元以下的笔记本电脑，想要华为；理由{s}')
    effects = manager.on_recommendations(7, shaped)
    [event] = _records(effects, 'recommendation')
    assert event.payload['profile_used'] is True
    assert event.payload['products'][0]['reason_zh'].startswith('上次您在看')
    assert not _records(effects, 'screen_code')             # a member's purchases carry her id
    manager.on_utterance(7, '再推荐一台笔记本')
    [event] = _records(manager.on_recommendations(7, _items(store, ['HW-MB14'])), 'recommendation')
    assert 'profile_used' not in event.payload              # the recommender did not use it


def test_a_members_wishes_are_uploaded_and_an_anonymous_customers_are_not(demo):
    store, manager = _profiled(demo, None)
    manager.on_customer(7, SHE, '王丽')
    [said] = _records(manager.on_utterance(7, '我想要华为的笔记本，6000以下'), 'member_said')
    assert said.customer_pseudonym == SHE
    assert (said.payload['category'], said.payload['max_price'], said.payload['brands_wanted']) == \
        ('laptop', 6000.0, ['Huawei'])
    manager.on_customer(8)
    assert not _records(manager.on_utterance(8, '我想要华为的笔记本，6000以下'), 'member_said')


def test_an_anonymous_customer_is_shown_one_purchase_code_with_her_products(demo):
    store, manager = _profiled(demo, None)
    manager.on_customer(8)
    manager.on_utterance(8, '推荐一台6000以下的笔记本')
    effects = manager.on_recommendations(8, _items(store, ['HW-MB14', 'LN-XXPRO16']))
    [code] = _records(effects, 'screen_code')
    assert code.payload == {'code': 'K7Q2MX', 'skus': ['HW-MB14', 'LN-XXPRO16']}
    assert code.customer_pseudonym == ''
    assert [e for e in manager.on_utterance(8, '推荐一台7000以下的笔记本') if isinstance(e, AskRecommendations)]
    [again] = _records(manager.on_recommendations(8, _items(store, ['LN-XXPRO16'])), 'screen_code')
    assert again.payload['code'] == 'K7Q2MX'                 # one code per conversation
    assert not _records(manager.on_recommendations(8, []), 'screen_code')


def test_screen_codes_are_short_unambiguous_and_vary():
    codes = {new_screen_code() for _ in range(200)}
    assert len(codes) > 190
    assert all(re.fullmatch(f'[{CODE_LETTERS}]{{6}}', c) for c in codes)
    assert not set('01IOL') & set(CODE_LETTERS)
