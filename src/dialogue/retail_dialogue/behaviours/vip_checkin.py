"""'我是王丽，约了三点' / 'I have an appointment': a VIP checks in without face recognition."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Rule, Turn


def handle(turn: Turn) -> None:
    """Check the customer in (or ask for their name and time)."""
    dm, session, result = turn.dm, turn.session, turn.result
    dm._check_in(session, result.text)


def _answer(turn: Turn) -> tuple[Intent, dict]:
    turn.dm._check_in(turn.session, turn.text)
    return Intent.VIP_CHECKIN, turn.slots


# The answer to "your name and booking time?" (or a yes after the VIP greeting).
ANSWER = Rule(
    'checkin_answer',
    lambda t: t.session.state is State.AWAIT_CHECKIN and t.intent in (Intent.AFFIRM, Intent.VIP_CHECKIN),
    _answer)
