"""'推荐一款三千以下的手机': a recommendation over the active constraints; the budget is asked once."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Rule, Turn


def handle(turn: Turn) -> None:
    """Ask the recommender, or first what the customer needs and their budget."""
    dm, session, slots = turn.dm, turn.session, turn.slots
    product = dm._product(slots)
    if product is not None and not ('max_price' in slots or 'min_price' in slots):
        return dm._answer_product(session, product, Intent.RECOMMEND)
    dm._merge_constraints(session, slots)
    session.search = 'recommend'
    c = session.constraints
    # a returning member's profile answers what and how much when she said it on an earlier
    # visit (the recommender fills them in and says so: retail_recommendation.profile)
    last = dm._profile(session)
    if not c.category and not c.brand and not (last and last.category):
        dm._expect(session, State.OPEN)
        return dm._say(session, Intent.RECOMMEND, 'ask_need', examples=dm._examples(session.lang))
    knows_budget = last is not None and (last.max_price or last.min_price) and \
        c.category in ('', last.category)
    if not c.has_price and not session.asked_budget and not knows_budget:
        session.asked_budget = True
        dm._expect(session, State.AWAIT_BUDGET)
        return dm._say(session, Intent.RECOMMEND, 'ask_budget', what=dm._what(c, session.lang))
    dm._ask_recommendations(session)


def _budget_answer(turn: Turn) -> tuple[Intent, dict]:
    turn.dm._merge_constraints(turn.session, turn.slots)
    turn.dm._ask_recommendations(turn.session)
    return Intent.RECOMMEND, turn.slots


# The answer to "what is your budget?" (a price said, whatever else the NLU made of it).
BUDGET_ANSWER = Rule(
    'budget_answer',
    lambda t: t.session.state is State.AWAIT_BUDGET and t.has_price
    and t.intent in (Intent.UNKNOWN, Intent.RECOMMEND, Intent.AFFIRM, Intent.FIND_PRODUCT),
    _budget_answer)
