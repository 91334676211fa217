"""'注册会员' / 'remember me': the consent notice first; only a yes enrols the face."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Outcome, Rule, Turn


def _consent_answer(turn: Turn) -> Outcome | None:
    if turn.intent in (Intent.AFFIRM, Intent.DENY):
        granted = turn.intent is Intent.AFFIRM
        turn.dm._consent(turn.session, granted, turn.text)
        return Intent.ENROL, {'consent': granted}
    turn.session.state = State.OPEN       # another wish: no consent given; the rules below answer it
    return None


def _offer(turn: Turn) -> Outcome:
    turn.dm._offer_enrolment(turn.session)
    return Intent.ENROL, {}


# The answer to the consent notice.
CONSENT_ANSWER = Rule('consent_answer', lambda t: t.session.state is State.AWAIT_CONSENT, _consent_answer)

# Asked to become a member the robot recognises (not while naming a product or checking in).
OFFER = Rule('enrol_offer',
             lambda t: t.cues.enrol and t.intent not in (Intent.CALL_STAFF, Intent.VIP_CHECKIN) and 'sku' not in t.slots,
             _offer)
