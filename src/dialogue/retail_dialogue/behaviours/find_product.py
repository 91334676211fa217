"""'有X吗' / 'do you have X?' / 'where are the TVs?': one product answered with stock, price and
place; a kind of product searched over the active constraints."""
from __future__ import annotations

from ..nlu import CUES
from ..session import Intent
from .turn import Turn


def handle(turn: Turn) -> None:
    """Answer a question about a product or a kind of product."""
    dm, session, slots, result = turn.dm, turn.session, turn.slots, turn.result
    product = dm._product(slots)
    if product is not None:
        return dm._answer_product(session, product, Intent.FIND_PRODUCT)
    if not slots.get('category') and not slots.get('brand'):
        if zone := slots.get('zone'):
            return dm._start_guide(session, zone)
        return dm._say(session, Intent.FIND_PRODUCT, 'ask_need', examples=dm._examples(session.lang))
    dm._merge_constraints(session, slots)
    session.search = 'find'
    where_only = bool(CUES['where'].search(result.masked)) and not CUES['find_product'].search(result.masked)
    dm._run_find(session, where_only=where_only)
