"""'带我参观一下' / 'show me around' starts the store's tour; on the way 'next', 'skip', 'stop'."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Outcome, Rule, Turn


def _control(turn: Turn) -> Outcome:
    turn.dm._tour_command(turn.session, turn.cues.tour)
    return Intent.TOUR_CONTROL, {'command': turn.cues.tour}


def _start(turn: Turn) -> Outcome:
    turn.dm._start_tour(turn.session)
    return Intent.TOUR, {}


# A tour in progress: its commands first (a call for staff or a check-in still wins).
CONTROL = Rule('tour_control',
               lambda t: t.session.state is State.TOURING and t.cues.tour in ('next', 'skip', 'stop')
               and t.intent not in (Intent.CALL_STAFF, Intent.VIP_CHECKIN),
               _control)

# Asked for a tour (not a question about a product, a price or a booking).
START = Rule('tour_start',
             lambda t: t.cues.tour == 'start' and 'sku' not in t.slots
             and t.intent not in (Intent.VIP_CHECKIN, Intent.ASK_PRICE),
             _start)
