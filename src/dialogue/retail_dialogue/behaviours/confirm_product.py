"""'您是说美的空气炸锅吗？' / 'Did you mean the Midea air fryer?': a product name the robot did not
hear surely is confirmed with the customer instead of guessed.

ASK: a spoken turn whose product (`Turn.heard`, matched to the catalogue by the ASR node with a
confidence: catalog_match.py) is below the manager's `confirm_below`: the robot asks, and keeps
the turn as the catalogue writes it. ANSWER: yes → that turn is carried out as if the name had
been heard clearly; no → the customer is asked to say the product again. Anything else is a new
turn (the question lapses: it is asked about one turn only). Typed and touched input is never
confirmed (what the customer typed is what they meant).
"""
from __future__ import annotations

from ..followups import read_cues
from ..session import Intent, State
from .turn import Outcome, Rule, Turn


def _uncertain(turn: Turn) -> bool:
    heard = turn.heard
    if heard is None or heard.confidence >= turn.dm.confirm_below or heard.sku not in turn.dm.store.catalog.by_sku:
        return False
    return turn.slots.get('sku', heard.sku) == heard.sku     # the NLU read no other product


def _ask(turn: Turn) -> Outcome:
    dm, session, heard = turn.dm, turn.session, turn.heard
    product = dm.store.catalog.by_sku[heard.sku]
    session.pending_product = heard
    dm._expect(session, State.OPEN)
    dm._say(session, turn.intent, 'confirm_product', name=dm._name(product, session.lang))
    return turn.intent, turn.slots


def _answer(turn: Turn) -> Outcome:
    from . import decide
    dm, session, pending = turn.dm, turn.session, turn.pending
    if turn.intent is Intent.DENY or pending.sku not in dm.store.catalog.by_sku:
        dm._say(session, Intent.DENY, 'confirm_product_again')
        return Intent.DENY, turn.slots
    result = dm.nlu.parse(pending.catalog_text)
    confirmed = Turn(dm, session, result, read_cues(result.masked), pending.catalog_text, Intent(result.intent),
                     dict(result.slots))
    if 'sku' not in confirmed.slots and confirmed.intent is not Intent.UNKNOWN:
        confirmed.slots['sku'] = pending.sku
    return decide(confirmed)


ANSWER = Rule('confirm_product_answer',
              lambda t: t.pending is not None and t.intent in (Intent.AFFIRM, Intent.DENY), _answer)
ASK = Rule('confirm_product', _uncertain, _ask)
