"""HQ's campaigns, offered when a matching member is recognised (the greeting carries the offer,
`at_greeting`) or in conversation: "你好" from a member, or "有什么优惠" with nothing named, is
answered with the campaign HQ made for her (retail_common.campaigns: the platform lists the
matching members the store knows), in her language, with its products shown and an offer to take
her there; "好的" then counts as accepting it (`campaign_accepted`) and the guide offer goes on.

Guarantees: only a member the campaign lists (never an anonymous customer, never one the
platform forgot: it is no longer listed), only inside the campaign's window (the wall clock),
only products the store has in stock, and at most once per visit: a member offered a campaign is
offered none again within VISIT_S of that offer (the manager's `campaigns_offered`, kept across
her tracks and sessions: walking away and back is the same visit). One decision (`choose`) and
one way of offering (`offer`) serve both the greeting and the conversation.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from retail_common import events as ev
from retail_common.campaigns import Campaign

from ..session import Intent, Session, State
from .turn import SHOW_K, Rule, Turn

if TYPE_CHECKING:
    from ..manager import DialogueManager

VISIT_S = 12 * 3600.0          # one visit: no campaign is offered twice to a member within this
MAX_REMEMBERED = 10_000        # (member, campaign) offers remembered; the oldest are dropped


def _in_visit(dm: 'DialogueManager', member: str) -> bool:
    """A campaign was already offered to this member in this visit (one per visit at most)."""
    return any(offered_to == member and dm.clock() - when < VISIT_S
               for (offered_to, _), when in dm.campaigns_offered.items())


def _products(dm: 'DialogueManager', campaign: Campaign) -> list:
    by_sku = dm.store.catalog.by_sku
    return [by_sku[s] for s in campaign.skus if s in by_sku and by_sku[s].in_stock][:SHOW_K]


def choose(dm: 'DialogueManager', session: Session) -> tuple[Campaign, list] | None:
    """The campaign to offer this member now, with its products in stock; None: none. The one
    decision of both paths (her greeting, a conversation turn)."""
    if not session.customer_id or session.state is not State.OPEN or _in_visit(dm, session.customer_id):
        return None
    now = dm.wall_clock().timestamp()
    for campaign in getattr(dm.store, 'campaigns', ()):
        if campaign.offers_to(session.customer_id, now):
            products = _products(dm, campaign)
            if products:
                return campaign, products
    return None


def offerable(turn: Turn) -> tuple[Campaign, list] | None:
    """`choose` for a conversation turn."""
    return choose(turn.dm, turn.session)


def _asks_for_an_offer(turn: Turn) -> bool:
    """A greeting, or "any deals?" about nothing in particular."""
    if turn.intent is Intent.GREET:
        return True
    return turn.intent is Intent.ASK_PROMOTION and not turn.has_thing and not turn.cues.refers


def offer(dm: 'DialogueManager', session: Session, intent: Intent, found: tuple[Campaign, list],
          lead: str = '') -> None:
    """Make the offer: remembered for the visit, its products shown, the guide offered, said in
    the session's language (after `lead`, the greeting that carries it) and `campaign_offered`."""
    campaign, products = found
    memory = dm.campaigns_offered
    memory[(session.customer_id, campaign.id)] = dm.clock()
    while len(memory) > MAX_REMEMBERED:
        memory.pop(next(iter(memory)))
    dm._present(session, products)
    zone = dm.store.zone_of(products[0]) or ''
    session.offered_zone = zone
    dm._expect(session, State.AWAIT_GUIDE if zone else State.OPEN)
    session.campaign_pending = campaign.id
    message = campaign.message(session.lang).strip()
    if zone:
        dm._say(session, intent, 'campaign_offer', message=message,
                zone=dm.store.zone_name(zone, session.lang), products=dm._shown_all(products))
    else:
        dm._say(session, intent, 'campaign_offer_here', message=message, products=dm._shown_all(products))
    if lead:
        said = dm._out[-1]
        dm._out[-1] = replace(said, text=lead + said.text)
    dm._record(session, ev.CampaignOffered(campaign_id=campaign.id, skus=[p.sku for p in products],
                                           language=session.lang))


def at_greeting(dm: 'DialogueManager', session: Session, lead: str) -> bool:
    """The greeting of a recognised member carries her campaign (`lead`: the greeting's words,
    said first in the same reply); False when there is none to offer (the caller greets as
    usual)."""
    found = choose(dm, session)
    if found is None:
        return False
    offer(dm, session, Intent.GREET, found, lead)
    return True


def _offer(turn: Turn):
    found = offerable(turn)
    if found is None:
        return None
    offer(turn.dm, turn.session, turn.intent, found)
    return turn.intent, turn.slots


def _answer(turn: Turn):
    """The turn after an offer: "yes" accepts it; anything else lets it go. Never answers the
    turn itself (the guide offer's answer and the other rules do)."""
    campaign_id, turn.session.campaign_pending = turn.session.campaign_pending, ''
    if turn.intent in (Intent.AFFIRM, Intent.GUIDE_TO) and not turn.has_thing:
        turn.dm._record(turn.session, ev.CampaignAccepted(campaign_id=campaign_id))
    return None


# The turn after an offer (first in the table: it only records and passes on).
ANSWER = Rule('campaign_answer', lambda t: bool(t.session.campaign_pending), _answer)

# A member greets or asks for offers: her campaign, once per visit.
OFFER = Rule('campaign_offer', lambda t: _asks_for_an_offer(t) and offerable(t) is not None, _offer)
