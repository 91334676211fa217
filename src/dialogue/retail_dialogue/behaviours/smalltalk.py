"""Greetings, thanks, goodbyes, and yes/no with nothing pending: polite answers, never a mission."""
from __future__ import annotations

from ..session import CancelMission, Intent, State
from .turn import Rule, Turn


def greet(turn: Turn) -> None:
    """Greet back."""
    dm, session = turn.dm, turn.session
    dm._say(session, Intent.GREET, 'greet_back')


def goodbye(turn: Turn) -> None:
    """Say goodbye and end the conversation (a tour in progress is cancelled)."""
    dm, session = turn.dm, turn.session
    if session.state is State.TOURING:
        dm._out.append(CancelMission(session.track_id))
    dm._say(session, Intent.GOODBYE, 'goodbye')
    dm._end(session, 'goodbye')


def thanks(turn: Turn) -> None:
    """You're welcome."""
    dm, session = turn.dm, turn.session
    dm._say(session, Intent.THANKS, 'thanks')


def affirm(turn: Turn) -> None:
    """A yes with nothing pending: ask what they need."""
    dm, session = turn.dm, turn.session
    dm._say(session, Intent.AFFIRM, 'ask_need', examples=dm._examples(session.lang))


def deny(turn: Turn) -> None:
    """A no with nothing pending: anything else?"""
    dm, session = turn.dm, turn.session
    dm._say(session, Intent.DENY, 'anything_else')


def _deny_pending(turn: Turn) -> tuple[Intent, dict]:
    session = turn.session
    if session.state is State.AWAIT_BUDGET:
        turn.dm._ask_recommendations(session)       # no budget: recommend without one
        return Intent.RECOMMEND, turn.slots
    turn.dm._expect(session, State.OPEN)
    turn.dm._say(session, turn.intent, 'anything_else')
    return turn.intent, turn.slots


# "不用了" to an offer to guide, a check-in question or a budget question.
DENY_PENDING = Rule(
    'deny_pending',
    lambda t: t.intent is Intent.DENY and t.session.state in (State.AWAIT_GUIDE, State.AWAIT_CHECKIN, State.AWAIT_BUDGET),
    _deny_pending)
