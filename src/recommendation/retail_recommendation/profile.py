"""A returning member's profile (what she said on earlier visits, kept by the platform and sent
to the robots in her member record: `retail_common.profiles`) applied to a recommendation: pure,
no rclpy.

`recommend_with_profile` narrows the request to what she asked for last time when today's
request does not say otherwise (category, budget), never offers a brand she refused or a product
she turned down, puts brands she wanted first, and says so in each reason ("last time you were
looking at laptops under 6,000 yuan"). When the profile's narrowing leaves nothing, the plain
request is answered (without the profile sentence).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

from retail_common.profiles import MemberProfile

__all__ = ['MemberProfile', 'narrowed', 'recommend_with_profile']


def same_need(constraints, profile: MemberProfile) -> bool:
    """Today's request is about what she was looking at last time (or names no category)."""
    return not constraints.category or constraints.category == profile.category


def narrowed(constraints, profile: MemberProfile):
    """The request with the profile filled in where today's request is silent: her category and
    budget only when today's request is about the same thing (last time's laptop budget says
    nothing about a TV); a brand she refused and products she turned down, always."""
    changes: dict[str, Any] = {}
    if same_need(constraints, profile):
        if not constraints.category and profile.category:
            changes['category'] = profile.category
        if not constraints.has_price and (profile.max_price or profile.min_price):
            changes['min_price'], changes['max_price'] = profile.min_price, profile.max_price
    refused = tuple(b for b in profile.brands_refused if b != constraints.brand)
    if refused:
        changes['exclude_brands'] = tuple(dict.fromkeys((*constraints.exclude_brands, *refused)))
    if profile.declined_skus:
        changes['exclude_skus'] = tuple(dict.fromkeys((*constraints.exclude_skus,
                                                       *profile.declined_skus)))
    return replace(constraints, **changes)


def recommend_with_profile(recommender, customer_id: str, constraints, profile: MemberProfile,
                           k: int = 5, exclude_owned: bool = False,
                           sentence: tuple[str, str] | None = None) -> tuple[list, bool]:
    """(recommendations, profile_used): the recommender's answer shaped by the profile.
    profile_used (and the sentence in every reason) only when what she asked for last time
    (category, budget, wanted brands) shaped the answer; refusals are honoured silently.
    `sentence`: (zh, en) in the store's words (retail_common.profiles.sentence_for)."""
    if profile.empty:
        return recommender.recommend(customer_id, constraints, k, exclude_owned=exclude_owned), False
    items: Sequence = recommender.recommend(customer_id, narrowed(constraints, profile),
                                            max(k * 3, k), exclude_owned=exclude_owned)
    if not items:
        return recommender.recommend(customer_id, constraints, k, exclude_owned=exclude_owned), False
    wanted = {b.lower() for b in profile.brands_wanted} if not constraints.brand else set()
    items = sorted(items, key=lambda r: (r.product.brand.lower() not in wanted, -r.score))[:k]
    if not (same_need(constraints, profile) and profile.speaks):
        return list(items), False
    zh, en = sentence or profile.sentence()
    return [replace(r, reason_zh=f'{zh}；{r.reason_zh}', reason_en=f'{en}; {r.reason_en}')
            for r in items], True
