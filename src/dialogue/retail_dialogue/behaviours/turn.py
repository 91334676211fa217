"""One turn as the behaviours see it, and the shape of a behaviour's rule.

A `Rule` is one line of the priority table (`behaviours/__init__.py`): `applies(turn)` reads the
turn and the session, `handle(turn)` carries it out through the manager's toolkit (`turn.dm`: say,
record, guide, recommend, ...) and returns the turn's (intent, slots), or None to let the rules
below it decide (after, possibly, rewriting `turn.intent`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..catalog_match import HeardProduct
from ..followups import Cues
from ..nlu import NluResult
from ..session import Intent, Session

if TYPE_CHECKING:
    from ..manager import DialogueManager

SHOW_K = 3                 # products named in one answer
Outcome = tuple[Intent, dict]


@dataclass
class Turn:
    dm: 'DialogueManager'
    session: Session
    result: NluResult
    cues: Cues
    text: str
    intent: Intent
    slots: dict[str, Any]
    heard: HeardProduct | None = None      # the product the recogniser heard (speech only), with its confidence
    pending: HeardProduct | None = None    # the product the robot asked about last turn ("您是说…吗？")

    @property
    def has_thing(self) -> bool:
        """A product, category, brand or place was named."""
        return any(k in self.slots for k in ('sku', 'category', 'brand', 'zone'))

    @property
    def has_price(self) -> bool:
        return 'max_price' in self.slots or 'min_price' in self.slots


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[Turn], bool]
    handle: Callable[[Turn], Outcome | None]
