"""Issue 24 kinds, each a behaviour with a table of variants (written from the kinds, in both
languages): what the store does not sell, thanks and goodbyes never start a mission, fillers
("那个", "um") are no reference, a service place asked mid-conversation wins over the product
context, "take me there please" / "can I talk to someone?", and a topic change (先不看相机了)."""
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_dialogue.manager import (AskRecommendations, CallStaff, DialogueManager, Say, StartGuide,
                                     StartTour)
from retail_dialogue.nlu import Nlu

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def _talk(demo, *lines):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(1)
    effects = []
    for line in lines:
        effects = manager.on_utterance(1, line)
    return effects, manager


def _said(effects):
    return ' '.join(e.text for e in effects if isinstance(e, Say))


@pytest.mark.parametrize('text,word', [
    ('有电动牙刷吗', '电动牙刷'), ('你们卖无人机吗', '无人机'), ('电动车多少钱', '电动车'), ('推荐一款按摩椅', '按摩椅'),
    ('do you sell drones?', 'drones'), ('how much is an e-bike?', 'e-bikes'), ('any massage chairs?', 'massage chairs'),
])
def test_we_do_not_sell_it(demo, text, word):
    effects, _ = _talk(demo, text)
    said = _said(effects)
    assert word in said and ('不卖' in said or "don't sell" in said), said
    assert not any(isinstance(e, (StartGuide, StartTour, AskRecommendations)) for e in effects)


@pytest.mark.parametrize('lines', [
    ['谢谢，我自己再逛逛'], ['谢谢，我随便逛逛'], ['我自己逛逛就好'], ['thanks, I will look around myself'],
    ['好的谢谢，再见'], ['有空气炸锅吗', '谢谢，我自己再逛逛'], ["thanks, I'm just looking around on my own"],
])
def test_thanks_and_goodbyes_never_start_a_mission(demo, lines):
    effects, _ = _talk(demo, *lines)
    assert not any(isinstance(e, (StartGuide, StartTour)) for e in effects), _said(effects)


@pytest.mark.parametrize('lines,zone', [
    (['有空气炸锅吗', '那个洗手间在哪里啊'], 'restroom'),
    (['有空气炸锅吗', '嗯那个，收银台在哪'], 'checkout'),
    (['有空气炸锅吗', '我要这个，带我去收银台'], 'checkout'),
    (['推荐一款三千以下的手机', '这个先不要了，带我去服务台'], 'service_desk'),
    (['do you have air fryers?', 'um, that... where is the restroom?'], 'restroom'),
    (['do you have air fryers?', "I'll take this one, take me to the checkout"], 'checkout'),
])
def test_a_service_place_wins_over_the_product_context(demo, lines, zone):
    effects, _ = _talk(demo, *lines)
    assert [e.zone for e in effects if isinstance(e, StartGuide)] == [zone], _said(effects)


@pytest.mark.parametrize('lines,zone', [
    (['有空气炸锅吗', 'take me there please'], 'kitchen'),
    (['有空气炸锅吗', '好的，带我过去'], 'kitchen'),
    (['do you have air fryers?', 'ok, take me there'], 'kitchen'),
    (['do you have air fryers?', 'please take me there'], 'kitchen'),
])
def test_take_me_there(demo, lines, zone):
    effects, _ = _talk(demo, *lines)
    assert [e.zone for e in effects if isinstance(e, StartGuide)] == [zone], _said(effects)


@pytest.mark.parametrize('text', ['can I talk to someone?', 'can I talk to a person?', 'could I speak to somebody',
                                  '我想找个人问问', '叫一下店員'])
def test_asking_for_a_person(demo, text):
    effects, _ = _talk(demo, text)
    assert any(isinstance(e, CallStaff) for e in effects), _said(effects)


@pytest.mark.parametrize('lines,want', [
    (['推荐一款相机', '先不看相机了，有没有空气炸锅'], '空气炸锅'),
    (['推荐一款华为手机', '不要华为的，有没有苹果的'], '苹果'),
    (['do you have cameras?', 'forget the cameras, do you have air fryers?'], 'air fryer'),
])
def test_a_topic_change_drops_what_was_dropped(demo, lines, want):
    effects, manager = _talk(demo, *lines)
    said = _said(effects)
    assert want in said and '相机' not in said and 'camera' not in said.lower(), said
    assert manager.sessions[1].constraints.category != 'camera'


@pytest.mark.parametrize('text,skus,cheaper', [
    ('华为Pura 70和iPhone 16哪个便宜', ['HW-PURA70', 'AP-IP16'], '华为 Pura 70便宜'),
    ('iPhone 16和华为Pura 70哪个划算', ['AP-IP16', 'HW-PURA70'], '华为 Pura 70便宜'),
    ('which is cheaper, the Pura 70 or the iPhone 16?', ['HW-PURA70', 'AP-IP16'], 'Huawei Pura 70 is 500 yuan cheaper'),
    ('索尼65X90L和小米电视S65哪个好', ['SN-X90L', 'MI-TVS65'], '小米电视 S65 Mini LED便宜'),
])
def test_a_comparison_of_products_named_is_about_both(demo, text, skus, cheaper):
    effects, _ = _talk(demo, text)
    said = _said(effects)
    shown = [p.sku for e in effects if isinstance(e, Say) for p in e.products]
    assert shown == skus and cheaper in said, said


@pytest.mark.parametrize('text', ['这里有什么优惠吗', '有什么优惠', 'any deals here?', 'what offers do you have?'])
def test_promotions_asked_on_a_tour_are_this_stops(demo, text):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(1)
    manager.on_utterance(1, '带我参观一下')
    tour = manager.sessions[1].tour
    stop = next(i for i, z in enumerate(tour.zones)
                if any(store.zone_of(p) == z for p in store.promotions()))
    manager.on_tour_stop(1, stop, tour.zones[stop])
    effects = manager.on_utterance(1, text)
    shown = [p.sku for e in effects if isinstance(e, Say) for p in e.products]
    assert shown and all(store.zone_of(store.catalog.by_sku[s]) == tour.zones[stop] for s in shown), _said(effects)
