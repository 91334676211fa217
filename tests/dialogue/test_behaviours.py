"""The registry of behaviours (issue 20 point 2): one priority table, each rule a small module, a
handler for every intent the NLU produces, and the typed constraints shared with the recommender.

Each rule is tested on its own (does it apply, what does it answer) with a turn built from a
real NLU parse; conversations through the whole table are in test_manager / test_conversations.
"""
from pathlib import Path

import pytest

from retail_common.search import SearchConstraints
from retail_common.store import load_store
from retail_dialogue import behaviours
from retail_dialogue.behaviours import INTENT_HANDLERS, RULES, Turn, call_staff, enrol, guide_to, refer, tour
from retail_dialogue.followups import read_cues
from retail_dialogue.manager import DialogueManager, Intent, State
from retail_dialogue.nlu import INTENTS, Nlu
from retail_recommendation.recommender import Constraints

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'


@pytest.fixture(scope='module')
def demo():
    store = load_store(DEMO)
    return store, Nlu(store.catalog, store.zones)


def _turn(demo, text, state=State.OPEN, **session):
    store, nlu = demo
    dm = DialogueManager(store, nlu=nlu)
    dm.on_customer(1)
    s = dm.sessions[1]
    s.state = state
    for key, value in session.items():
        setattr(s, key, value)
    result = nlu.parse(text)
    return Turn(dm, s, result, read_cues(result.masked), text, Intent(result.intent), dict(result.slots))


def test_every_intent_the_nlu_produces_has_a_behaviour():
    handled = set(INTENT_HANDLERS) | {Intent.CALL_STAFF, Intent.UNKNOWN}      # call_staff: a rule
    assert {Intent(i) for i in INTENTS} <= handled


def test_the_table_has_each_rule_once_with_a_name():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) and all(names)


def test_tour_commands_come_before_everything_else():
    assert RULES[0] is tour.CONTROL
    assert RULES.index(call_staff.ASKED) < RULES.index(tour.START)


@pytest.mark.parametrize('text,applies', [('下一站', True), ('跳过', True), ('结束参观', True), ('空气炸锅在哪', False)])
def test_tour_control_applies_only_to_commands_while_touring(demo, text, applies):
    assert tour.CONTROL.applies(_turn(demo, text, State.TOURING)) is applies
    assert tour.CONTROL.applies(_turn(demo, text, State.OPEN)) is False


@pytest.mark.parametrize('text', ['叫一下店员', '叫一下店員', 'can I talk to a person?', '我要投诉'])
def test_call_staff_at_any_time(demo, text):
    for state in (State.OPEN, State.TOURING, State.AWAIT_BUDGET, State.AWAIT_GUIDE):
        turn = _turn(demo, text, state)
        assert call_staff.ASKED.applies(turn)


def test_consent_answer_only_when_the_notice_was_given(demo):
    assert enrol.CONSENT_ANSWER.applies(_turn(demo, '好的', State.AWAIT_CONSENT))
    assert not enrol.CONSENT_ANSWER.applies(_turn(demo, '好的', State.OPEN))
    turn = _turn(demo, '空气炸锅在哪', State.AWAIT_CONSENT)
    assert enrol.CONSENT_ANSWER.handle(turn) is None and turn.session.state is State.OPEN, 'another wish: no consent'


def test_take_me_there_rewrites_the_intent_and_passes_on(demo):
    turn = _turn(demo, '好的，带我过去', State.OPEN, focus='MI-TVA55')
    assert guide_to.TAKE_ME_THERE.applies(turn)
    assert guide_to.TAKE_ME_THERE.handle(turn) is None and turn.intent is Intent.GUIDE_TO


def test_a_filler_this_one_is_no_reference(demo):
    """'那个' as a filler with nothing shown: the reference rule passes the turn on."""
    turn = _turn(demo, '那个空气炸锅在哪里')
    assert not refer.RULE.applies(turn) or refer.RULE.handle(turn) is None


def test_decide_falls_back_to_the_intent_handler(demo):
    turn = _turn(demo, '空气炸锅在哪里')
    assert behaviours.decide(turn)[0] is Intent.FIND_PRODUCT


# -- the typed constraints shared with the recommender ---------------------------------------
def test_the_recommender_and_the_dialogue_share_one_constraints_type(demo):
    assert Constraints is SearchConstraints
    store, nlu = demo
    dm = DialogueManager(store, nlu=nlu)
    dm.on_customer(1)
    effects = dm.on_utterance(1, '帮我推荐一款三千以下的华为手机')
    [ask] = [e for e in effects if type(e).__name__ == 'AskRecommendations']
    assert isinstance(ask.query.constraints, SearchConstraints)
    assert (ask.query.constraints.category, ask.query.constraints.brand, ask.query.constraints.max_price) == \
        ('phone', 'Huawei', 3000.0)
    assert ask.query.constraints.in_stock_only


@pytest.mark.parametrize('slots', [
    {}, {'category': 'tv'}, {'category': 'tv', 'size': {'value': 65.0, 'unit': 'inch'}},
    {'brand': 'Huawei', 'min_price': 1000.0, 'max_price': 3000.0}, {'exclude_brands': ['Sony'], 'category': 'tv'},
])
def test_constraints_round_trip_as_slots(slots):
    assert SearchConstraints.from_slots(slots).as_slots() == slots


def test_constraints_admit_as_the_old_rules_did(demo):
    store, _ = demo
    c = SearchConstraints(category='phone', max_price=3000, in_stock_only=False, exclude_brands=('Apple',))
    got = {p.sku for p in store.catalog.products if c.admits(p)}
    want = {p.sku for p in store.catalog.products if p.category == 'phone' and p.price_cny <= 3000 and p.brand != 'Apple'}
    assert got == want and got
