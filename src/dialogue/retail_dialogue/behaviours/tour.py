"""'带我参观一下' / 'show me around' starts the store's tour; on the way 'next', 'skip', 'stop'."""
from __future__ import annotations

import re

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

# "我自己逛逛" / "I'll look around myself": browsing alone, no tour.
ON_MY_OWN = re.compile(r'自己|随便|\b(?:myself|on my own|by myself)\b', re.IGNORECASE)


def _wants_tour(turn: Turn) -> bool:
    """Asked for a tour: not while thanking, saying goodbye or declining ("谢谢，我自己再逛逛"), not a
    question about a product, a price or a booking."""
    return (turn.cues.tour == 'start' and 'sku' not in turn.slots
            and turn.intent not in (Intent.VIP_CHECKIN, Intent.ASK_PRICE, Intent.THANKS, Intent.GOODBYE, Intent.DENY)
            and not ON_MY_OWN.search(turn.result.masked))


START = Rule('tour_start', _wants_tour, _start)
