"""Issue 21 "Understanding": traditional characters, full-width digits, sizes matched against the
catalog (never read as a price), and approximate prices above an amount (三千多, 三千出头).

Tables of variants, on the demo store and on the harbour store (written for neither rule).
"""
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_dialogue.manager import DialogueManager, Say, StartGuide
from retail_dialogue.nlu import Nlu
from retail_dialogue.numbers import extract_price_range

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
HARBOUR = Path(__file__).resolve().parents[1] / 'data' / 'dialogue' / 'harbour_store'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def _turn(store_nlu, text, track=1):
    store, nlu = store_nlu
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(track)
    effects = manager.on_utterance(track, text)
    return [e.text for e in effects if isinstance(e, Say)], effects


@pytest.mark.parametrize('traditional,simplified', [
    ('叫一下店員', '叫一下店员'),
    ('帶我去廚房電器區', '带我去厨房电器区'),
    ('有沒有華為手機', '有没有华为手机'),
    ('這台電視多少錢', '这台电视多少钱'),
    ('洗手間在哪裡', '洗手间在哪里'),
    ('推薦一款三千以下的手機', '推荐一款三千以下的手机'),
    ('最近有什麼優惠活動嗎', '最近有什么优惠活动吗'),
    ('空氣炸鍋在哪裡', '空气炸锅在哪里'),
])
def test_traditional_characters_are_understood_as_simplified(demo, traditional, simplified):
    _, nlu = demo
    a, b = nlu.parse(traditional), nlu.parse(simplified)
    assert (a.intent, a.slots) == (b.intent, b.slots)
    assert a.intent != 'unknown'


def test_traditional_guide_request_guides(demo):
    _, effects = _turn(demo, '帶我去廚房電器區')
    assert [e.zone for e in effects if isinstance(e, StartGuide)] == ['kitchen']


@pytest.mark.parametrize('full,half', [
    ('有没有８５寸的电视', '有没有85寸的电视'),
    ('推荐一款３０００以下的手机', '推荐一款3000以下的手机'),
    ('ｉＰｈｏｎｅ　１６多少钱', 'iphone 16多少钱'),
])
def test_full_width_digits_and_letters(demo, full, half):
    _, nlu = demo
    a, b = nlu.parse(full), nlu.parse(half)
    assert (a.intent, a.slots) == (b.intent, b.slots)


@pytest.mark.parametrize('text,value,unit', [
    ('有没有85寸的电视', 85, 'inch'), ('八十五寸的电视有吗', 85, 'inch'), ('do you have 85-inch TVs?', 85, 'inch'),
    ('any 65 inch tv', 65, 'inch'), ('想要个500升的冰箱', 500, 'l'), ('around 500 liters fridge', 500, 'l'),
    ('10公斤的洗衣机', 10, 'kg'), ('1.5匹的空调', 1.5, 'hp'), ('75英寸电视多少钱', 75, 'inch'),
])
def test_sizes_are_a_size_never_a_price(demo, text, value, unit):
    _, nlu = demo
    slots = nlu.parse(text).slots
    assert slots.get('size') == {'value': value, 'unit': unit}
    assert 'max_price' not in slots and 'min_price' not in slots


@pytest.mark.parametrize('text', ['有没有85寸的电视', '有没有８５寸的電視', 'do you have 85-inch TVs?', 'any 85 inch television?'])
def test_a_size_the_store_does_not_have_is_answered_none(demo, text):
    replies, _ = _turn(demo, text)
    assert replies
    first = replies[0]
    assert '没有' in first or "don't" in first, replies
    assert '85' in first
    assert not any(r.startswith('有的') for r in replies)
    # and the sizes it does have are named
    assert any('65' in r for r in replies)


@pytest.mark.parametrize('text,size', [('有没有65寸的电视', '65'), ('do you have 75-inch TVs?', '75')])
def test_a_size_the_store_has_lists_only_that_size(demo, text, size):
    store, _ = demo
    replies, effects = _turn(demo, text)
    shown = [p.sku for e in effects if isinstance(e, Say) for p in e.products]
    assert shown
    for sku in shown:
        product = store.catalog.by_sku[sku]
        assert f'{size}_inch' in product.tags or size in product.name_en


@pytest.mark.parametrize('text,low,high', [
    ('三千多', 3000, 3999), ('三千多的手机', 3000, 3999), ('两千多', 2000, 2999), ('两千多块的耳机', 2000, 2999),
    ('3000多', 3000, 3999), ('一万多', 10000, 19999), ('五百多', 500, 599), ('三千五多', 3500, 3599),
    ('三千出头', 3000, 3300), ('两千出头的手机', 2000, 2200), ('3000-ish', 3000, 3999),
])
def test_a_little_above_an_amount(text, low, high):
    found = extract_price_range(text)
    assert found is not None
    assert (found.min_price, found.max_price) == (low, high)


@pytest.mark.parametrize('text', ['三千多少钱', '这个多少钱'])
def test_how_much_is_no_range(text):
    assert extract_price_range(text) is None or extract_price_range(text).min_price is None
