"""Dialogue scripts against the manager core, with a fake recommender and a recording guide."""
from datetime import datetime
from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_dialogue.manager import DialogueManager, RecommendedProduct
from retail_dialogue.nlu import Nlu
from retail_common.store import load_store
from retail_dialogue.store import Appointment, ZoneNames

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def catalog():
    return load_catalog(DEMO / 'catalog.csv')


@pytest.fixture(scope='module')
def nlu(catalog):
    return Nlu(catalog)


class Script:
    """A manager plus everything it said and asked for."""

    def __init__(self, catalog, nlu, **kwargs):
        self.replies, self.events, self.guides, self.queries, self.staff = [], [], [], [], []
        self.now = 0.0
        self.catalog = catalog

        def recommend(query):
            self.queries.append(query)
            items = [p for p in catalog.products if p.category == query.category and p.in_stock
                     and (not query.max_price or p.price_cny <= query.max_price)][:query.k]
            return [RecommendedProduct(p.sku, p.name_zh, p.name_en, p.price_cny, p.zone, f'理由{p.sku}',
                                       f'reason {p.sku}') for p in items]
        self.manager = DialogueManager(catalog, nlu=nlu, say=self.replies.append, emit=self.events.append,
                                       recommend=kwargs.pop('recommend', recommend),
                                       guide=lambda track, zone: self.guides.append((track, zone)),
                                       notify_staff=self.staff.append, clock=lambda: self.now,
                                       zones=kwargs.pop('zones', ZoneNames.of(load_store(DEMO))), **kwargs)

    def say(self, text, track=7):
        before = len(self.replies)
        self.manager.on_utterance(track, text)
        return self.replies[before:]


def test_member_phone_under_3000_recommend_and_guide(catalog, nlu):
    s = Script(catalog, nlu)
    s.manager.on_customer(7, 'c042', '王丽', False)
    assert '王丽' in s.replies[-1].text
    [reply] = s.say('帮我推荐一款三千以下的手机')
    [query] = s.queries
    assert (query.customer_id, query.category, query.max_price, query.k) == ('c042', 'phone', 3000.0, 3)
    recommended = [e for e in s.events if e.type == 'recommendation'][-1].payload['skus']
    assert len(recommended) == 3
    for sku in recommended:
        product = catalog.by_sku[sku]
        assert product.in_stock and product.price_cny <= 3000 and product.category == 'phone'
        assert product.name_zh in reply.text and f'理由{sku}' in reply.text
    assert '带您' in reply.text and reply.language == 'zh'
    [reply] = s.say('好的')
    assert s.guides == [(7, 'phones')]
    assert reply.intent == 'guide_to' and '手机数码区' in reply.text
    s.manager.on_guide_feedback(7, 0.2)               # no path yet (planning, waiting): nothing to say
    assert s.replies[-1] is reply
    s.manager.on_guide_feedback(7, 12.4)
    assert '还有大约12米' in s.replies[-1].text
    s.manager.on_arrival('phones')
    assert '到了' in s.replies[-1].text
    turns = [e for e in s.events if e.type == 'dialogue_turn']
    assert turns[0].customer_pseudonym == 'c042'
    assert turns[0].payload['intent'] == 'recommend' and 'text' not in turns[0].payload


def test_missing_budget_is_asked_once_in_english(catalog, nlu):
    s = Script(catalog, nlu)
    s.manager.on_customer(7)
    [reply] = s.say('I want to buy a TV')
    assert 'budget' in reply.text and reply.language == 'en'
    s.say('under 5000')
    assert s.queries[-1].max_price == 5000 and s.queries[-1].category == 'tv'
    s.say('and an air fryer please recommend one')
    assert s.queries[-1].category == 'air_fryer'      # budget not asked a second time


def test_price_location_promotion_answers(catalog, nlu):
    s = Script(catalog, nlu)
    s.manager.on_customer(7)
    [reply] = s.say('How much is the iPhone 16?')
    assert '5999' in reply.text and reply.language == 'en'
    [reply] = s.say('电视在哪里？')
    assert '影音娱乐区' in reply.text     # the store's own zone name (zones.yaml)
    [reply] = s.say('小米14有优惠吗')
    assert '满2000减200' in reply.text


def test_vip_recognised_face_checks_in(catalog, nlu):
    appointment = Appointment('a1', 'c007', '陈先生', datetime(2026, 11, 24, 15, 0), datetime(2026, 11, 24, 16, 0),
                              '空调选购咨询', 'vip_lounge', '李经理')
    s = Script(catalog, nlu, appointments=[appointment], wall_clock=lambda: datetime(2026, 11, 24, 14, 55))
    s.manager.on_customer(3, 'c007', '陈先生', True)
    assert '15:00' in s.replies[-1].text and '预约' in s.replies[-1].text
    [reply] = s.say('好的', track=3)
    assert '签到成功' in reply.text and '李经理' in reply.text
    assert s.staff[-1]['appointment_id'] == 'a1' and s.staff[-1]['reason'] == 'vip_checkin_on_time'
    s.say('好', track=3)
    assert s.guides == [(3, 'vip_lounge')]
    assert [e.payload['status'] for e in s.events if e.type == 'vip_checkin'] == ['on_time']


def test_vip_by_name_and_time_early_late_unknown(catalog, nlu):
    appointment = Appointment('a2', 'c9', 'David Lee', datetime(2026, 11, 24, 15, 0), datetime(2026, 11, 24, 16, 0),
                              'TV demo', 'vip_lounge', 'Ms Wang')
    clock = {'now': datetime(2026, 11, 24, 13, 0)}
    s = Script(catalog, nlu, appointments=[appointment], wall_clock=lambda: clock['now'])
    s.manager.on_customer(5)
    [reply] = s.say("I have an appointment at 3, my name is David Lee", track=5)
    assert 'early' in reply.text
    clock['now'] = datetime(2026, 11, 24, 15, 40)
    s.manager.sessions[5].appointment = None
    [reply] = s.say('checking in for my 3 pm appointment', track=5)
    assert 'Ms Wang' in reply.text and 'no problem' in reply.text
    s.manager.on_customer(6)
    [reply] = s.say('我是张三，预约了上午十点', track=6)
    assert '没有找到' in reply.text and s.staff[-1]['reason'] == 'appointment_not_found'


def test_customer_leaves_mid_sentence(catalog, nlu):
    s = Script(catalog, nlu)
    s.manager.on_customer(9)
    greeting_count = len(s.replies)
    s.manager.on_customer_left(9)
    assert s.say('帮我推荐一款三千以下的', track=9) == []      # the final result arrives after they left
    assert len(s.replies) == greeting_count and not s.queries
    assert s.events[-1].type == 'session_end' and s.events[-1].payload['reason'] == 'left'


def test_silence_ends_session_politely(catalog, nlu):
    s = Script(catalog, nlu, silence_timeout_s=30)
    s.manager.on_customer(4)
    s.now = 10
    s.say('你好', track=4)
    s.now = 35
    s.manager.tick()
    assert 4 in s.manager.sessions
    s.now = 41
    s.manager.tick()
    assert 4 not in s.manager.sessions and '再见' in s.replies[-1].text


def test_call_staff_and_privacy_setting(catalog, nlu):
    s = Script(catalog, nlu, store_raw_text=True)
    s.manager.on_customer(2)
    [reply] = s.say('我要找店员', track=2)
    assert reply.intent == 'call_staff' and s.staff[-1]['reason'] == 'customer_request'
    assert [e for e in s.events if e.type == 'dialogue_turn'][-1].payload['text'] == '我要找店员'


def test_recommender_failure_hands_over(catalog, nlu):
    s = Script(catalog, nlu, recommend=lambda query: None)
    s.manager.on_customer(1)
    s.say('推荐一款两千以内的耳机', track=1)
    assert s.replies[-1].intent == 'greet' and not s.staff       # asynchronous: no answer yet
    s.manager.on_recommendations(1, None)
    assert s.staff[-1]['reason'] == 'recommendation_unavailable'
