"""'哪个更好' / 'what's the difference': the first two products shown, side by side."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _named(turn: Turn) -> list[str]:
    """The products the turn names, when it names two or more ("华为Pura 70和iPhone 16哪个便宜")."""
    skus = turn.slots.get('skus')
    return [s for s in skus if s in turn.dm.store.catalog.by_sku] if isinstance(skus, list) else []


def _compare(turn: Turn) -> Outcome:
    named = _named(turn)
    if len(named) >= 2:
        turn.dm._present(turn.session, [turn.dm.store.catalog.by_sku[s] for s in named])   # they are the subject
    turn.dm._compare(turn.session, turn.cues)
    return Intent.COMPARE, {'skus': turn.dm._compared(turn.session, turn.cues)}


# Two products named, or two shown and no other kind named.
RULE = Rule('compare',
            lambda t: t.cues.compare and (len(_named(t)) >= 2 or (len(t.session.shown) >= 2 and 'category' not in t.slots)),
            _compare)
