"""Issue 21 item 14: a 24-digit order number typed on the screen froze the number parser for 78 s
(catastrophic backtracking) and the next customer waited. Every input of the dialogue path is
bounded and the number grammar has one way to match any text.

Each hostile input below must be handled (an answer or None, never a hang): the generous
per-test timeout (the old parser took over a minute on the first row) is the bound, not a
tight timing. The work is also counted: the price grammar reads at most MAX_TEXT_CHARS
characters and a number run longer than MAX_NUMBER_CHARS is no amount.
"""
from pathlib import Path

import pytest

from retail_common.store import load_store
from retail_dialogue.manager import DialogueManager, Record, Say
from retail_dialogue.nlu import MAX_UTTERANCE_CHARS, Nlu
from retail_dialogue.templates import render
from retail_dialogue.numbers import (MAX_NUMBER_CHARS, MAX_TEXT_CHARS, extract_price_range, parse_number,
                                     parse_zh_number)

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'

HOSTILE = {
    'order number 24 digits': '我的订单号是' + '1' * 24,
    'order number then a price word': '订单' + '9' * 24 + '元以内',
    'long digit run': '7' * 10_000,
    'digits separated by spaces': '1 ' * 5_000,
    'digits with decimal points': '1.' * 5_000,
    'digits with thousands separators': '1,' * 5_000,
    'repeated Chinese numeral with unit': '三千' * 5_000,
    'repeated zh decimal': '一点' * 5_000,
    'repeated k': '1 k' * 3_000,
    'repeated range separators': '1到' * 5_000,
    'repeated 多': '三千多' * 3_000,
    'repeated currency': '¥' * 10_000 + '5',
    'english words and numbers': 'under 2 ' * 2_000,
    'mixed units': '1万5千' * 2_000,
    '10 kB utterance of text': '你好我想买手机' * 1_500,
    '10 kB english': 'what about the cheaper one ' * 400,
    'an absurd budget': '推荐手机，预算99999万',
    'an absurd budget in digits': 'recommend a phone under 999999999 yuan',
    'a budget just above the bound': '推荐手机 12000000元以内',
    'an absurd size': '有没有九十九万寸的电视',
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize('name', list(HOSTILE))
def test_price_grammar_is_bounded(name):
    text = HOSTILE[name]
    found = extract_price_range(text)
    # an amount can only come from the first MAX_TEXT_CHARS characters, never from a long run
    if found is not None:
        assert found.span[1] <= MAX_TEXT_CHARS
        assert all(v is None or v < 10 ** MAX_NUMBER_CHARS for v in (found.min_price, found.max_price))


@pytest.mark.parametrize('raw', ['1' * 24, '123456789012345678901234', '一' * 30, '3千' * 20])
def test_long_number_runs_are_no_amount(raw):
    assert parse_number(raw) is None
    assert parse_zh_number(raw) is None
    assert extract_price_range(raw + '元以内') is None
    assert extract_price_range('预算' + raw) is None


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


@pytest.mark.timeout(60)
@pytest.mark.parametrize('name', list(HOSTILE))
def test_manager_answers_hostile_turns_and_the_next_customer(demo, name):
    store, nlu = demo
    manager = DialogueManager(store, nlu=nlu)
    manager.on_customer(1)
    effects = manager.on_utterance(1, HOSTILE[name])
    says = [e for e in effects if isinstance(e, Say)]
    assert says, 'every turn gets an answer'
    if len(HOSTILE[name]) > MAX_UTTERANCE_CHARS:
        assert says[0].text in (render('too_long', 'zh'), render('too_long', 'en'))
        turn = next(e for e in effects if isinstance(e, Record) and e.type == 'dialogue_turn')
        assert HOSTILE[name] not in str(turn.payload)
    # the robot is not stuck: the next question is answered as usual
    reply = next(e for e in manager.on_utterance(1, '空气炸锅在哪里') if isinstance(e, Say))
    assert '空气炸锅' in reply.text


def test_order_number_is_not_a_budget(demo):
    store, nlu = demo
    result = nlu.parse('帮我推荐手机，订单号' + '2' * 24)
    assert 'max_price' not in result.slots and 'min_price' not in result.slots
