"""'第二个' / 'the first one' / '它' / '便宜的那个': a question about a product shown or in focus."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _filler(turn: Turn) -> bool:
    """"那个洗手间在哪里", "我要这个，带我去收银台", "um, that TV…": a "this/that" that refers to nothing
    shown, because the turn names a place, or a kind other than the product in focus."""
    if 'zone' in turn.slots:
        return True                     # a place asked for wins over the product context
    category = turn.slots.get('category')
    focus = turn.dm.store.catalog.by_sku.get(turn.session.focus)
    return bool(category) and (focus is None or focus.category != category)


def _applies(turn: Turn) -> bool:
    cues = turn.cues
    if 'sku' in turn.slots or cues.refine:
        return False
    if cues.ordinal:
        return True
    return cues.pronoun and (turn.intent is not Intent.UNKNOWN or cues.question) and not _filler(turn)


def _refer(turn: Turn) -> Outcome | None:
    product = turn.dm._referred(turn.session, turn.cues)
    if product is not None:
        return turn.dm._about(turn.session, product, turn.intent, turn.cues), {'sku': product.sku}
    if turn.cues.ordinal or turn.intent in (Intent.ASK_PRICE, Intent.GUIDE_TO):
        turn.dm._say(turn.session, Intent.ABOUT_PRODUCT, 'refer_none')
        return Intent.ABOUT_PRODUCT, {}
    return None             # "这个" as a filler: the rules below answer


RULE = Rule('reference', _applies, _refer)
