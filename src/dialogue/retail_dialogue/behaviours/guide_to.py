"""'带我去' / 'take me there': guide the customer to a zone, a product's zone or the zone offered."""
from __future__ import annotations

from ..session import Intent, State
from .turn import Rule, Turn


def handle(turn: Turn) -> None:
    """Set off to the zone asked for (or say where that is unknown)."""
    dm, session, slots = turn.dm, turn.session, turn.slots
    zone = slots.get('zone', '')
    if not zone:
        product = dm._product(slots)
        if product is not None:
            dm._focus(session, product)
            zone = dm.store.zone_of(product) or ''
        elif slots.get('category') or slots.get('brand'):
            zone = dm._zone_for(slots)
        elif session.focus and session.focus in dm.store.catalog.by_sku:
            zone = dm.store.zone_of(dm.store.catalog.by_sku[session.focus]) or session.offered_zone
        else:
            zone = session.offered_zone
    if not zone:
        return dm._say(session, Intent.GUIDE_TO, 'unknown_zone')
    dm._start_guide(session, zone)


def _offer_answer(turn: Turn) -> tuple[Intent, dict]:
    turn.dm._start_guide(turn.session, turn.session.offered_zone)
    return Intent.GUIDE_TO, {'zone': turn.session.offered_zone}


def _take_me_there(turn: Turn) -> None:
    turn.intent = Intent.GUIDE_TO         # "ok, take me there", "带我去看看": then the rules below
    return None


# "好的" / "take me" after the robot offered to guide.
OFFER_ANSWER = Rule(
    'guide_offer_answer',
    lambda t: t.session.state is State.AWAIT_GUIDE and t.intent in (Intent.AFFIRM, Intent.GUIDE_TO)
    and not t.has_thing and not t.cues.refers and t.cues.tour != 'start',
    _offer_answer)

# "there" with nothing named: to the product or zone under discussion (rewrites the intent).
TAKE_ME_THERE = Rule(
    'take_me_there',
    lambda t: t.cues.there and not t.has_thing and (t.intent is Intent.AFFIRM or (
        t.intent is Intent.FIND_PRODUCT and bool(t.session.focus or t.session.offered_zone))),
    _take_me_there)
