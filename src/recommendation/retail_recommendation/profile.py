"""A returning member's profile (what she said on earlier visits, kept by the platform:
`GET /v1/members/{member}/profile`) applied to a recommendation: pure, no rclpy.

`recommend_with_profile` narrows the request to what she asked for last time when today's
request does not say otherwise (category, budget), never offers a brand she refused or a product
she turned down, puts brands she wanted first, and says so in each reason ("last time you were
looking at laptops under 6,000 yuan"). When the profile's narrowing leaves nothing, the plain
request is answered (without the profile sentence).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

MAX_ITEMS = 50


@dataclass(frozen=True)
class MemberProfile:
    category: str = ''
    min_price: float = 0.0
    max_price: float = 0.0
    brands_wanted: tuple[str, ...] = ()
    brands_refused: tuple[str, ...] = ()
    declined_skus: tuple[str, ...] = ()
    compared_skus: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'MemberProfile':
        """From the platform's answer; unknown keys ignored, bad values dropped (never raises)."""
        def text(key: str) -> str:
            value = data.get(key)
            return value[:64] if isinstance(value, str) else ''

        def number(key: str) -> float:
            value = data.get(key)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                0 <= value <= 10_000_000
            return float(value) if ok else 0.0

        def texts(key: str) -> tuple[str, ...]:
            value = data.get(key)
            if not isinstance(value, list):
                return ()
            return tuple(v[:128] for v in value[:MAX_ITEMS] if isinstance(v, str) and v)
        return cls(text('category'), number('min_price'), number('max_price'),
                   texts('brands_wanted'), texts('brands_refused'), texts('declined_skus'),
                   texts('compared_skus'))

    @property
    def empty(self) -> bool:
        return not (self.category or self.max_price or self.min_price or self.brands_wanted
                    or self.brands_refused or self.declined_skus)

    def sentence(self, category_en: str = '') -> tuple[str, str]:
        """'上次您在看6000元以下的笔记本' / 'last time you were looking at laptops under 6,000
        yuan' (what the reasons and the greeting say)."""
        what_zh = self.category or '商品'
        what_en = category_en or self.category or 'products'
        budget_zh = budget_en = ''
        if self.max_price:
            budget_zh, budget_en = f'{self.max_price:.0f}元以下的', f' under {self.max_price:,.0f} yuan'
        elif self.min_price:
            budget_zh, budget_en = f'{self.min_price:.0f}元以上的', f' over {self.min_price:,.0f} yuan'
        zh, en = f'上次您在看{budget_zh}{what_zh}', f'last time you were looking at {what_en}{budget_en}'
        if self.brands_wanted:
            zh += f'，想要{"、".join(self.brands_wanted[:3])}'
            en += f', {" or ".join(self.brands_wanted[:3])} preferred'
        return zh, en


def narrowed(constraints, profile: MemberProfile):
    """The request with the profile filled in where today's request is silent."""
    changes: dict[str, Any] = {}
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
                           category_en: str = '') -> tuple[list, bool]:
    """(recommendations, profile_used): the recommender's answer shaped by the profile."""
    if profile.empty:
        return recommender.recommend(customer_id, constraints, k, exclude_owned=exclude_owned), False
    items: Sequence = recommender.recommend(customer_id, narrowed(constraints, profile),
                                            max(k * 3, k), exclude_owned=exclude_owned)
    if not items:
        return recommender.recommend(customer_id, constraints, k, exclude_owned=exclude_owned), False
    wanted = {b.lower() for b in profile.brands_wanted}
    items = sorted(items, key=lambda r: (r.product.brand.lower() not in wanted, -r.score))[:k]
    zh, en = profile.sentence(category_en)
    return [replace(r, reason_zh=f'{zh}；{r.reason_zh}', reason_en=f'{en}; {r.reason_en}')
            for r in items], True
