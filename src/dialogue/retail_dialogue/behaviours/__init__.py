"""The dialogue's behaviours: what the robot does with one understood turn.

Each behaviour is a small module (its rules and handler, with its own tests); this file is the
one place that says which wins. `RULES` are tried in order, first on the context of the
conversation (what the robot asked, what was shown, a mission in progress); the first rule that
applies and answers decides the turn. A rule may also only rewrite the intent and pass on
("take me there" becomes a guide request). If none answers, the NLU's intent picks its handler
from `INTENT_HANDLERS`; an intent not understood goes to `unknown`.

A new intent: a module with its cues and handler, a line in `INTENT_HANDLERS` (and, if it
depends on the conversation, a rule at its place in `RULES`).
"""
from __future__ import annotations

from typing import Callable

from ..session import Intent
from . import (ask_price, ask_promotion, call_staff, campaign, compare, confirm_product, enrol, find_product, guide_to,
               hours, recommend, refer, refine, smalltalk, tour, unknown, unsold, vip_checkin)
from .turn import Outcome, Rule, Turn

RULES: tuple[Rule, ...] = (
    tour.CONTROL,                 # a tour in progress: next / skip / stop first
    campaign.ANSWER,              # the turn after a campaign offer: "yes" accepts it (passes on)
    call_staff.ASKED,             # "叫一下店员": at any time
    confirm_product.ANSWER,       # yes / no to "您是说美的空气炸锅吗？"
    confirm_product.ASK,          # a product name heard unsurely: asked, not guessed
    call_staff.OFFER_ANSWER,      # yes / no to "shall I call a colleague?"
    unsold.RULE,                  # "有无人机吗" in a store without: "we don't sell drones"
    recommend.BUDGET_ANSWER,      # a price after "your budget?"
    guide_to.OFFER_ANSWER,        # yes after "shall I take you there?"
    vip_checkin.ANSWER,           # name and time after "your booking?"
    smalltalk.DENY_PENDING,       # no to any of those questions
    enrol.CONSENT_ANSWER,         # yes / no to the consent notice
    enrol.OFFER,                  # "注册会员"
    tour.START,                   # "带我参观一下"
    compare.RULE,                 # "哪个更好" with two products shown
    guide_to.TAKE_ME_THERE,       # "take me there": becomes a guide request
    refer.RULE,                   # "第二个", "它", "the cheaper one"
    refine.RULE,                  # "便宜一点的", "another brand", "还有别的吗"
    refine.WHAT_ABOUT,            # "那华为的呢"
    campaign.OFFER,               # a member's "你好" / "any deals?": HQ's campaign, once per visit
)

INTENT_HANDLERS: dict[Intent, Callable[[Turn], None]] = {
    Intent.GREET: smalltalk.greet,
    Intent.GOODBYE: smalltalk.goodbye,
    Intent.THANKS: smalltalk.thanks,
    Intent.AFFIRM: smalltalk.affirm,
    Intent.DENY: smalltalk.deny,
    Intent.VIP_CHECKIN: vip_checkin.handle,
    Intent.FIND_PRODUCT: find_product.handle,
    Intent.ASK_PRICE: ask_price.handle,
    Intent.ASK_PROMOTION: ask_promotion.handle,
    Intent.RECOMMEND: recommend.handle,
    Intent.GUIDE_TO: guide_to.handle,
    Intent.ASK_HOURS: hours.handle,
}


def decide(turn: Turn) -> Outcome:
    """Carry out one turn: the first rule that answers, else the intent's handler."""
    for rule in RULES:
        if rule.applies(turn):
            outcome = rule.handle(turn)
            if outcome is not None:
                return outcome
    handler = INTENT_HANDLERS.get(turn.intent)
    if handler is None:
        return unknown.handle(turn)
    handler(turn)
    return turn.intent, turn.slots


__all__ = ['INTENT_HANDLERS', 'RULES', 'Rule', 'Turn', 'decide']
