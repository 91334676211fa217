"""'便宜一点的' / 'another brand' / '那华为的呢': modify the last search."""
from __future__ import annotations

from ..session import Intent
from .turn import Outcome, Rule, Turn


def _refine(turn: Turn) -> Outcome:
    turn.dm._refine(turn.session, turn.cues.refine, turn.slots)
    return Intent.REFINE, {'refine': turn.cues.refine, **turn.session.constraints.as_slots()}


def _what_about(turn: Turn) -> Outcome:
    turn.dm._refine(turn.session, 'what_about', turn.slots)
    return Intent.REFINE, {'refine': 'what_about', **turn.session.constraints.as_slots()}


# cheaper / pricier / bigger / smaller / another brand / more, after something was shown or searched.
RULE = Rule('refine',
            lambda t: bool(t.cues.refine) and 'sku' not in t.slots
            and bool(t.session.search or t.session.focus or t.session.shown),
            _refine)

# "what about Apple?" after a search: the same search with that brand or category.
WHAT_ABOUT = Rule('what_about',
                  lambda t: t.cues.what_about and 'sku' not in t.slots
                  and ('brand' in t.slots or 'category' in t.slots) and bool(t.session.search),
                  _what_about)
