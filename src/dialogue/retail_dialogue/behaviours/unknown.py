"""A turn not understood: say so; after two in a row, offer a colleague."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Outcome, Turn

MISUNDERSTOOD_BEFORE_STAFF = 2     # turns not understood in a row before staff is offered


def handle(turn: Turn) -> Outcome:
    session = turn.session
    session.misunderstood += 1
    session.wanted.append('?')
    if session.misunderstood >= MISUNDERSTOOD_BEFORE_STAFF:
        turn.dm._expect(session, State.AWAIT_STAFF)
        turn.dm._say(session, Intent.UNKNOWN, 'offer_staff')
    else:
        turn.dm._say(session, Intent.UNKNOWN, 'out_of_scope' if turn.result.confidence >= 0.5 else 'unknown')
    return Intent.UNKNOWN, turn.slots
