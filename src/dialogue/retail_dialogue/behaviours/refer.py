"""'第二个' / 'the first one' / '它' / '便宜的那个': a question about a product shown or in focus."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _applies(turn: Turn) -> bool:
    cues = turn.cues
    return 'sku' not in turn.slots and not cues.refine and bool(
        cues.ordinal or (cues.pronoun and (turn.intent is not Intent.UNKNOWN or cues.question)))


def _refer(turn: Turn) -> Outcome | None:
    product = turn.dm._referred(turn.session, turn.cues)
    if product is not None:
        return turn.dm._about(turn.session, product, turn.intent, turn.cues), {'sku': product.sku}
    if turn.cues.ordinal or turn.intent in (Intent.ASK_PRICE, Intent.GUIDE_TO):
        turn.dm._say(turn.session, Intent.ABOUT_PRODUCT, 'refer_none')
        return Intent.ABOUT_PRODUCT, {}
    return None             # "这个" as a filler: the rules below answer


RULE = Rule('reference', _applies, _refer)
