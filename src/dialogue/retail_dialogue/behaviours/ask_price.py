"""'多少钱' / 'how much is X': one product's price, else the price range of a kind."""
from __future__ import annotations

from retail_common.catalog import Product

from ..session import Intent
from ..templates import count_noun, yuan
from .turn import Turn


def _product(turn: Turn, matches: list[Product]) -> Product | None:
    """The one product asked about: named, referred to, in focus, or the only one of a brand's kind."""
    dm, session, slots = turn.dm, turn.session, turn.slots
    product = dm._product(slots) or (dm._referred(session, turn.cues) if not slots else None)
    if product is None and not slots and session.focus:
        product = dm.store.catalog.by_sku.get(session.focus)
    if product is None and len(matches) == 1 and (slots.get('category') or slots.get('brand')):
        product = matches[0]                # "西门子冰箱多少钱" and the store has one in stock: its price
    return product


def _none_in_stock(turn: Turn) -> None:
    """The kind asked about has nothing in stock: the one sold-out product, a search, or not carried."""
    dm, session, slots = turn.dm, turn.session, turn.slots
    sold_out = dm._matching(slots)
    if len(sold_out) == 1:              # the store has it, sold out: say so, with alternatives
        return dm._answer_product(session, sold_out[0], Intent.ASK_PRICE)
    if sold_out:
        dm._merge_constraints(session, slots)
        session.search = 'find'
        return dm._run_find(session)
    return dm._say(session, Intent.ASK_PRICE, 'not_carried', what=dm._what(slots, session.lang))


def handle(turn: Turn) -> None:
    """Quote a price (or a range, or say the store does not carry it)."""
    dm, session, slots = turn.dm, turn.session, turn.slots
    lang = session.lang
    # the kind's in-stock products (none when a product is named; _matching needs a category or brand)
    matches = [] if dm._product(slots) else [p for p in dm._matching(slots) if p.in_stock]
    product = _product(turn, matches)
    if product is not None:
        dm._focus(session, product)
        session.offered_zone = dm.store.zone_of(product) or ''      # for "take me there"
        return dm._say(session, Intent.ASK_PRICE, 'price', name=dm._name(product, lang),
                       price=yuan(product.price_cny, lang), stock=dm._stock(product, lang),
                       promotion=dm._promotion_line(product, lang), products=(dm._shown(product),))
    if not slots.get('category') and not slots.get('brand'):
        return dm._say(session, Intent.ASK_PRICE, 'which_product')
    if not matches:
        return _none_in_stock(turn)
    dm._merge_constraints(session, slots)
    session.topic = [p.sku for p in matches]
    prices = [p.price_cny for p in matches]
    dm._say(session, Intent.ASK_PRICE, 'price_range', what=dm._what(slots, lang, capital=True),
            low=yuan(min(prices), lang), high=yuan(max(prices), lang), count=len(matches),
            count_models=count_noun(len(matches), 'model'))
