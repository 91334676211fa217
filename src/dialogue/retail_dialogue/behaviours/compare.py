"""'哪个更好' / 'what's the difference': the first two products shown, side by side."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _compare(turn: Turn) -> Outcome:
    turn.dm._compare(turn.session, turn.cues)
    return Intent.COMPARE, {'skus': turn.dm._compared(turn.session, turn.cues)}


RULE = Rule('compare', lambda t: t.cues.compare and len(t.session.shown) >= 2 and 'category' not in t.slots, _compare)
