"""'叫一下店员' / 'can I talk to someone?': a staff member is called, carrying what the customer wanted."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Outcome, Rule, Turn


def _asked(turn: Turn) -> Outcome:
    session = turn.session
    turn.dm._call_staff(session, 'customer_request')
    turn.dm._say(session, Intent.CALL_STAFF, 'staff_called')
    if session.state is State.AWAIT_STAFF:
        turn.dm._expect(session, State.OPEN)
    return Intent.CALL_STAFF, turn.slots


def _offer_answer(turn: Turn) -> Outcome:
    session = turn.session
    turn.dm._expect(session, State.OPEN)
    if turn.intent is Intent.AFFIRM:
        turn.dm._call_staff(session, 'not_understood')
        turn.dm._say(session, Intent.CALL_STAFF, 'staff_called')
        return Intent.CALL_STAFF, turn.slots
    turn.dm._say(session, turn.intent, 'anything_else')
    return turn.intent, turn.slots


# Asked for a person: at any time, whatever else is going on.
ASKED = Rule('call_staff', lambda t: t.intent is Intent.CALL_STAFF, _asked)

# Yes/no to "shall I call a colleague?" (offered after turns not understood, or nothing in stock).
OFFER_ANSWER = Rule('staff_offer_answer',
                    lambda t: t.session.state is State.AWAIT_STAFF and t.intent in (Intent.AFFIRM, Intent.DENY),
                    _offer_answer)
