"""HQ's campaigns in conversation: "你好" from a member, or "有什么优惠" with nothing named, is
answered with the campaign HQ made for her (retail_common.campaigns: the platform lists the
matching members the store knows), in her language, with its products shown and an offer to take
her there; "好的" then counts as accepting it (`campaign_accepted`) and the guide offer goes on.

Guarantees: only a member the campaign lists (never an anonymous customer, never one the
platform forgot: it is no longer listed), only inside the campaign's window (the wall clock),
only products the store has in stock, and at most once per visit: a member offered a campaign is
offered none again within VISIT_S of that offer (the manager's `campaigns_offered`, kept across
her tracks and sessions: walking away and back is the same visit).
"""
from __future__ import annotations

from retail_common import events as ev
from retail_common.campaigns import Campaign

from ..session import Intent, State
from .turn import SHOW_K, Rule, Turn

VISIT_S = 12 * 3600.0          # one visit: no campaign is offered twice to a member within this
MAX_REMEMBERED = 10_000        # (member, campaign) offers remembered; the oldest are dropped


def _in_visit(turn: Turn) -> bool:
    """A campaign was already offered to this member in this visit (one per visit at most)."""
    return any(member == turn.session.customer_id and turn.dm.clock() - when < VISIT_S
               for (member, _), when in turn.dm.campaigns_offered.items())


def _products(turn: Turn, campaign: Campaign) -> list:
    by_sku = turn.dm.store.catalog.by_sku
    return [by_sku[s] for s in campaign.skus if s in by_sku and by_sku[s].in_stock][:SHOW_K]


def offerable(turn: Turn) -> tuple[Campaign, list] | None:
    """The campaign to offer this member now, with its products in stock; None: none."""
    session = turn.session
    if not session.customer_id or session.state is not State.OPEN or _in_visit(turn):
        return None
    now = turn.dm.wall_clock().timestamp()
    for campaign in getattr(turn.dm.store, 'campaigns', ()):
        if campaign.offers_to(session.customer_id, now):
            products = _products(turn, campaign)
            if products:
                return campaign, products
    return None


def _asks_for_an_offer(turn: Turn) -> bool:
    """A greeting, or "any deals?" about nothing in particular."""
    if turn.intent is Intent.GREET:
        return True
    return turn.intent is Intent.ASK_PROMOTION and not turn.has_thing and not turn.cues.refers


def _offer(turn: Turn):
    found = offerable(turn)
    if found is None:
        return None
    campaign, products = found
    dm, session = turn.dm, turn.session
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
        dm._say(session, turn.intent, 'campaign_offer', message=message,
                zone=dm.store.zone_name(zone, session.lang), products=dm._shown_all(products))
    else:
        dm._say(session, turn.intent, 'campaign_offer_here', message=message,
                products=dm._shown_all(products))
    dm._record(session, ev.CampaignOffered(campaign_id=campaign.id, skus=[p.sku for p in products],
                                           language=session.lang))
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
