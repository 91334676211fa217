"""The one list of what a customer can mean: the dialogue's intents.

The NLU produces them, the dialogue manager handles them, the screen and `retailbot chat --json`
read them from `dialogue_turn` events and `/dialogue/replies`, and the `dialogue_turn` event
contract (`retail_common.events`) accepts only these. A new intent is added here first; every
reader then knows it (and a reader's list of intents is a subset of `INTENTS`, checked by a test).
"""

from __future__ import annotations

from enum import Enum


class Intent(str, Enum):
    GREET = 'greet'
    GOODBYE = 'goodbye'
    THANKS = 'thanks'
    FIND_PRODUCT = 'find_product'
    ASK_PRICE = 'ask_price'
    ASK_PROMOTION = 'ask_promotion'
    RECOMMEND = 'recommend'
    GUIDE_TO = 'guide_to'
    VIP_CHECKIN = 'vip_checkin'
    CALL_STAFF = 'call_staff'
    ASK_HOURS = 'ask_hours'  # when the store opens / closes (retail_common.hours)
    AFFIRM = 'affirm'
    DENY = 'deny'
    UNKNOWN = 'unknown'
    # follow-ups, from the dialogue state
    REFINE = 'refine'
    ABOUT_PRODUCT = 'about_product'
    COMPARE = 'compare'
    TOUR = 'tour'
    TOUR_CONTROL = 'tour_control'
    ENROL = 'enrol'


INTENTS: tuple[str, ...] = tuple(i.value for i in Intent)
# What the NLU reads from one utterance alone (the others come from the dialogue's state).
NLU_INTENTS: tuple[str, ...] = INTENTS[: INTENTS.index(Intent.UNKNOWN.value) + 1]
# Intents whose turn's slots name products the screen shows as cards when the reply presented none.
PRODUCT_INTENTS: frozenset[str] = frozenset(
    {Intent.FIND_PRODUCT.value, Intent.ASK_PRICE.value, Intent.ASK_PROMOTION.value, Intent.COMPARE.value}
)
