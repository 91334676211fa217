"""'最近有什么优惠' / 'any deals?': the store's promotions, best first, or one product's."""
from __future__ import annotations

from ..session import Intent, State
from ..templates import render, yuan
from .turn import SHOW_K, Turn


def _current_stop(turn: Turn) -> str:
    """During a tour, the stop the robot is presenting ('' before the first or outside a tour)."""
    tour = turn.session.tour
    if turn.session.state is not State.TOURING or tour is None or not 0 <= tour.at < len(tour.zones):
        return ''
    return tour.zones[tour.at]


def _stop_offers(turn: Turn, zone: str) -> None:
    """'这里有什么优惠吗' on a tour: the offers at this stop, not the store's."""
    dm, session, lang = turn.dm, turn.session, turn.session.lang
    offers = [p for p in dm.store.promotions() if dm.store.zone_of(p) == zone][:SHOW_K]
    name = dm.store.zone_name(zone, lang)
    if not offers:
        return dm._say(session, Intent.ASK_PROMOTION, 'promotion_nothing_here', zone=name)
    items = dm._sep(lang).join(render('promotion_item', lang, name=dm._name(p, lang), price=yuan(p.price_cny, lang),
                                      promotion=dm._promo(p, lang)) for p in offers)
    dm._present(session, offers)
    dm._say(session, Intent.ASK_PROMOTION, 'promotion_list_here', zone=name, items=items, products=dm._shown_all(offers))


def _one_product(turn: Turn, product) -> None:
    """'iPhone 16有优惠吗': that product's offer, or that it has none."""
    dm, session, lang = turn.dm, turn.session, turn.session.lang
    dm._focus(session, product)
    if product.promotion:
        return dm._say(session, Intent.ASK_PROMOTION, 'promotion_one', name=dm._name(product, lang),
                       promotion=dm._promo(product, lang), products=(dm._shown(product),))
    dm._say(session, Intent.ASK_PROMOTION, 'promotion_none', name=dm._name(product, lang))


def _best_offers(offers: list) -> list:
    """Best first; one product per promotion text and category; at most SHOW_K."""
    chosen, seen = [], set()
    for product in offers:
        key = (product.promotion, product.category)
        if key not in seen:
            seen.add(key)
            chosen.append(product)
        if len(chosen) == SHOW_K:
            break
    return chosen


def _store_offers(turn: Turn, scoped: bool) -> None:
    """The store's offers (of the kind or brand asked about, when `scoped`), best first."""
    dm, session, slots, lang = turn.dm, turn.session, turn.slots, turn.session.lang
    offers = [p for p in dm.store.promotions() if not scoped or dm._fits(p, slots)]
    if not offers:
        if scoped:
            return dm._say(session, Intent.ASK_PROMOTION, 'promotion_nothing_what', what=dm._what(slots, lang))
        return dm._say(session, Intent.ASK_PROMOTION, 'promotion_nothing')
    chosen = _best_offers(offers)
    items = dm._sep(lang).join(render('promotion_item', lang, name=dm._name(p, lang), price=yuan(p.price_cny, lang),
                                      promotion=dm._promo(p, lang)) for p in chosen)
    dm._present(session, chosen)
    session.offered_zone = dm.store.zone_of(chosen[0]) or ''
    dm._expect(session, State.AWAIT_GUIDE if session.offered_zone else State.OPEN)
    if scoped:
        return dm._say(session, Intent.ASK_PROMOTION, 'promotion_list_what', what=dm._what(slots, lang),
                       items=items, products=dm._shown_all(chosen))
    dm._say(session, Intent.ASK_PROMOTION, 'promotion_list', items=items, products=dm._shown_all(chosen))


def handle(turn: Turn) -> None:
    """Name the promotions asked about: a product's, this tour stop's, or the store's (of a kind)."""
    dm, session, slots, cues = turn.dm, turn.session, turn.slots, turn.cues
    product = dm._product(slots)
    if product is None and not slots and cues.refers:
        product = dm._referred(session, cues)
    if product is not None:
        return _one_product(turn, product)
    scoped = bool(slots.get('category') or slots.get('brand'))
    stop = _current_stop(turn)
    if stop and not scoped:
        return _stop_offers(turn, stop)
    _store_offers(turn, scoped)
