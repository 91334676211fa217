"""'哪个更好' / 'what's the difference': the first two products shown, side by side."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _named(turn: Turn) -> list[str]:
    """The products the turn names, in order, when it names two or more: by name ("华为Pura 70和
    iPhone 16哪个便宜"), or by brand and kind when the store has one such model ("飞利浦空气炸锅和
    美的空气炸锅 5升", "方太和老板的油烟机哪个便宜")."""
    catalog = turn.dm.store.catalog
    focus = catalog.by_sku.get(turn.session.focus)
    category = turn.slots.get('category') or (focus.category if focus else turn.session.constraints.category)
    skus = turn.slots.get('skus')
    if isinstance(skus, list) and len(skus) >= 2:
        return [s for s in skus if s in catalog.by_sku]
    named: list[str] = []
    for m in turn.result.entities:
        kind, values = m.term.kind, m.term.values
        if kind == 'product' and len(values) == 1:
            named.append(values[0])
        elif kind == 'brand' and category:      # a brand of which the store has one such model
            models = [p for p in catalog.products if p.brand == values[0] and p.category == category]
            named += [models[0].sku] if len(models) == 1 else []
    return list(dict.fromkeys(s for s in named if s in catalog.by_sku))


def _compare(turn: Turn) -> Outcome:
    named = _named(turn)
    if len(named) >= 2:
        turn.dm._present(turn.session, [turn.dm.store.catalog.by_sku[s] for s in named])   # they are the subject
    turn.dm._compare(turn.session, turn.cues, named=len(named) >= 2)
    return Intent.COMPARE, {'skus': turn.dm._compared(turn.session, turn.cues)}


# Two products named, or two shown and no other kind named.
RULE = Rule('compare',
            lambda t: t.cues.compare and (len(_named(t)) >= 2 or (len(t.session.shown) >= 2 and 'category' not in t.slots
                                                                  and 'brand' not in t.slots)),
            _compare)
