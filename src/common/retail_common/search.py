"""What a customer is looking for, as one typed value shared by the dialogue (its search and its
refinements) and the recommender (its query): `SearchConstraints`.

Pure (no rclpy, no numpy). Prices in CNY; a max_price of 0 means no upper bound. A size is
(value, unit) with the units of `retail_dialogue.sizes` ('inch', 'l', 'kg', 'hp', ...), matched
against a product's `<value>_<unit>` tags or the size in its name by the caller's `size_fits`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from .catalog import Product


@dataclass(frozen=True)
class SearchConstraints:
    category: str = ''
    brand: str = ''
    min_price: float = 0.0
    max_price: float = 0.0  # 0: no upper bound
    in_stock_only: bool = True
    size: tuple[float, str] | None = None
    exclude_brands: tuple[str, ...] = ()
    exclude_skus: tuple[str, ...] = ()

    @classmethod
    def from_slots(cls, slots: Mapping[str, Any]) -> 'SearchConstraints':
        """The constraints an utterance's slots name (category, brand, min/max_price, size)."""
        size = slots.get('size')
        if isinstance(size, Mapping):
            size = (float(size['value']), str(size['unit']))
        return cls(
            category=str(slots.get('category') or ''),
            brand=str(slots.get('brand') or ''),
            min_price=float(slots.get('min_price') or 0.0),
            max_price=float(slots.get('max_price') or 0.0),
            in_stock_only=False,
            size=tuple(size) if size else None,
            exclude_brands=tuple(slots.get('exclude_brands') or ()),
            exclude_skus=tuple(slots.get('exclude_skus') or ()),
        )

    @property
    def has_price(self) -> bool:
        return bool(self.min_price or self.max_price)

    @property
    def kind(self) -> 'SearchConstraints':
        """Only what kind of product: category and brand."""
        return SearchConstraints(category=self.category, brand=self.brand, in_stock_only=self.in_stock_only)

    def without_price(self) -> 'SearchConstraints':
        return replace(self, min_price=0.0, max_price=0.0)

    def with_price(self, min_price: float | None, max_price: float | None) -> 'SearchConstraints':
        """A new budget replaces the old one as a whole."""
        return replace(self, min_price=float(min_price or 0.0), max_price=float(max_price or 0.0))

    def admits(self, product: Product, size_fits: Callable[[Product, tuple[float, str]], bool] | None = None) -> bool:
        """Whether `product` fits every constraint (the size only when `size_fits` is given)."""
        return (
            (not self.category or product.category == self.category)
            and (not self.brand or product.brand.casefold() == self.brand.casefold())
            and product.brand not in self.exclude_brands
            and product.sku not in self.exclude_skus
            and product.price_cny >= self.min_price
            and (self.max_price <= 0 or product.price_cny <= self.max_price)
            and (product.in_stock or not self.in_stock_only)
            and (self.size is None or size_fits is None or size_fits(product, self.size))
        )

    def as_slots(self) -> dict[str, Any]:
        """The constraints that are set, as JSON-able slots (events, `chat --json`, staff requests)."""
        out: dict[str, Any] = {}
        for key in ('category', 'brand'):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ('min_price', 'max_price'):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.size:
            out['size'] = {'value': self.size[0], 'unit': self.size[1]}
        for key in ('exclude_brands', 'exclude_skus'):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        return out


__all__ = ['SearchConstraints']
