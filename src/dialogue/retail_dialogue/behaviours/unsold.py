"""'有无人机吗' / 'do you sell drones?' in a store without any: "we don't sell drones" (a kind of
product the lexicon knows, that this store's catalog does not have), and the topic starts anew."""
from __future__ import annotations

from ..lexicon import CATEGORY_SYNONYMS
from ..session import Intent, SearchConstraints
from ..templates import noun, plural
from .turn import Outcome, Rule, Turn

ASKS = (Intent.FIND_PRODUCT, Intent.ASK_PRICE, Intent.RECOMMEND, Intent.ASK_PROMOTION, Intent.GUIDE_TO, Intent.UNKNOWN)


def words(category: str, lang: str) -> str:
    """How the customer calls the kind: 空调 / air conditioners."""
    zh, en = CATEGORY_SYNONYMS.get(category, ((), ()))
    if lang == 'en':
        return plural(en[0] if en else noun(category))
    return zh[0] if zh else noun(category)


def _not_sold(turn: Turn) -> Outcome:
    session, category = turn.session, str(turn.slots['unsold'])
    session.constraints, session.search = SearchConstraints(in_stock_only=False), ''      # a new topic
    session.wanted.append(category)
    turn.dm._say(session, Intent.FIND_PRODUCT, 'not_sold', what=words(category, session.lang))
    return Intent.FIND_PRODUCT, {'unsold': category}


RULE = Rule('not_sold',
            lambda t: 'unsold' in t.slots and not any(k in t.slots for k in ('sku', 'category', 'brand', 'zone'))
            and t.intent in ASKS,
            _not_sold)
