"""'第二个' / 'the first one' / '它' / '便宜的那个': a question about a product shown or in focus."""
from __future__ import annotations

from retail_common.catalog import Product

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


def _of_brand(turn: Turn) -> Product | None:
    """"博世那款" / "the Bosch one": the model of that brand among those shown, else of the kind
    under discussion (a product named beats a list position)."""
    dm, session, brand = turn.dm, turn.session, turn.slots.get('brand')
    if not brand or turn.cues.ordinal:
        return None
    catalog = dm.store.catalog.by_sku
    for sku in [*session.shown, *session.topic]:
        if sku in catalog and catalog[sku].brand == brand:
            return catalog[sku]
    focus = catalog.get(session.focus)
    category = turn.slots.get('category') or (focus.category if focus else session.constraints.category)
    models = sorted((p for p in dm.store.catalog.products if p.brand == brand and p.category == category),
                    key=lambda p: (not p.in_stock, p.price_cny))
    return models[0] if models else None


def _refer(turn: Turn) -> Outcome | None:
    product = _of_brand(turn) or turn.dm._referred(turn.session, turn.cues)
    if product is not None:
        return turn.dm._about(turn.session, product, turn.intent, turn.cues), {'sku': product.sku}
    if turn.cues.ordinal or turn.intent in (Intent.ASK_PRICE, Intent.GUIDE_TO):
        turn.dm._say(turn.session, Intent.ABOUT_PRODUCT, 'refer_none')
        return Intent.ABOUT_PRODUCT, {}
    return None             # "这个" as a filler: the rules below answer


RULE = Rule('reference', _applies, _refer)
