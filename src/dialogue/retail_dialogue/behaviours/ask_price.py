"""'多少钱' / 'how much is X': one product's price, else the price range of a kind."""
from __future__ import annotations

from ..session import Intent
from ..templates import count_noun, yuan
from .turn import Turn


def handle(turn: Turn) -> None:
    """Quote a price (or a range, or say the store does not carry it)."""
    dm, session, slots, cues = turn.dm, turn.session, turn.slots, turn.cues
    product = dm._product(slots) or (dm._referred(session, cues) if not slots else None)
    if product is None and not slots and session.focus:
        product = dm.store.catalog.by_sku.get(session.focus)
    matches = [p for p in dm._matching(slots) if p.in_stock] if product is None else []
    if product is None and len(matches) == 1 and (slots.get('category') and slots.get('brand')):
        product = matches[0]                # "西门子冰箱多少钱" and the store has one
    if product is not None:
        dm._focus(session, product)
        session.offered_zone = dm.store.zone_of(product) or ''      # for "take me there"
        return dm._say(session, Intent.ASK_PRICE, 'price', name=dm._name(product, session.lang),
                         price=yuan(product.price_cny, session.lang), stock=dm._stock(product, session.lang),
                         promotion=dm._promotion_line(product, session.lang),
                         products=(dm._shown(product),))
    if not slots.get('category') and not slots.get('brand'):
        return dm._say(session, Intent.ASK_PRICE, 'which_product')
    if not matches:
        sold_out = dm._matching(slots)
        if len(sold_out) == 1:              # the store has it, sold out: say so, with alternatives
            return dm._answer_product(session, sold_out[0], Intent.ASK_PRICE)
        if sold_out:
            dm._merge_constraints(session, slots)
            session.search = 'find'
            return dm._run_find(session)
        return dm._say(session, Intent.ASK_PRICE, 'not_carried', what=dm._what(slots, session.lang))
    dm._merge_constraints(session, slots)
    session.topic = [p.sku for p in matches]
    prices = [p.price_cny for p in matches]
    dm._say(session, Intent.ASK_PRICE, 'price_range', what=dm._what(slots, session.lang, capital=True),
              low=yuan(min(prices), session.lang), high=yuan(max(prices), session.lang), count=len(matches),
              count_models=count_noun(len(matches), 'model'))
