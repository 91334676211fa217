"""Sizes as customers say them and as catalogs write them: 85寸, 55-inch, 10公斤, 1.5匹, 500L.

A number with a unit of size is never a price ("有没有85寸的电视" asks for a size; "around 500
liters" is a capacity): the NLU takes sizes out before it reads a budget, and the dialogue
matches them against the catalog (a product's `<value>_<unit>` tags, e.g. `65_inch`, else its
name: "65寸", "13-inch", "10公斤").

Linear and bounded: each pattern has a single bounded number in front of a fixed unit word.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from retail_common.catalog import Product

from .numbers import parse_zh_number

# unit id -> the words that say it (Chinese and English), longest first inside each regex
UNITS: dict[str, tuple[str, ...]] = {
    'inch': ('英寸', '寸', '吋', 'inches', 'inch', '-inch', '"', '”'),
    'l': ('升', 'litres', 'liters', 'litre', 'liter', 'l'),
    'kg': ('公斤', '千克', 'kilograms', 'kilogram', 'kilos', 'kilo', 'kg'),
    'hp': ('匹', 'horsepower', 'hp'),
    'w': ('瓦', 'watts', 'watt', 'w'),
    'mah': ('毫安时', '毫安', 'mah'),
    'gb': ('gb',),              # never "5g" (the network) nor "1t" alone
    'tb': ('tb',),
}
UNIT_ZH = {'inch': '寸', 'l': '升', 'kg': '公斤', 'hp': '匹', 'w': '瓦', 'mah': '毫安时', 'gb': 'GB', 'tb': 'TB'}
UNIT_EN = {'inch': '-inch', 'l': '-litre', 'kg': '-kg', 'hp': 'hp', 'w': '-watt', 'mah': ' mAh', 'gb': 'GB', 'tb': 'TB'}
_NUMBER = r'(?P<n>\d{1,5}(?:\.\d{1,2})?|[零一二两三四五六七八九十百点]{1,6})'


def _unit_rx() -> re.Pattern[str]:
    words = sorted(((w, u) for u, ws in UNITS.items() for w in ws), key=lambda x: -len(x[0]))
    alternatives = '|'.join(f'(?P<u_{i}>{re.escape(w)})' for i, (w, _) in enumerate(words))
    return re.compile(rf'(?<![\d.]){_NUMBER}\s?(?:{alternatives})(?![a-z])', re.IGNORECASE), [u for _, u in words]


_SIZE_RX, _UNIT_OF_GROUP = _unit_rx()
_TAG = re.compile(r'^(\d{1,5}(?:\.\d{1,2})?)_(inch|l|kg|hp|w|mah|gb|tb)$', re.IGNORECASE)
MAX_TEXT_CHARS = 500
MAX_SIZE = 100_000            # larger is no size of a product (and no slot the events accept)


@dataclass(frozen=True)
class Size:
    value: float
    unit: str                   # a key of UNITS
    span: tuple[int, int]

    def words(self, lang: str) -> str:
        number = f'{self.value:g}'
        return f'{number}{UNIT_ZH[self.unit]}' if lang != 'en' else f'{number}{UNIT_EN[self.unit]}'


def _value(raw: str) -> float | None:
    if raw[0].isdigit():
        return float(raw)
    return parse_zh_number(raw)


def find_sizes(text: str) -> list[Size]:
    """Every size said in `text` (its first MAX_TEXT_CHARS characters), in order."""
    found = []
    for match in _SIZE_RX.finditer(text[:MAX_TEXT_CHARS]):
        unit = next(_UNIT_OF_GROUP[i] for i, g in enumerate(match.groups()[1:]) if g is not None)
        raw = match.group('n')
        if unit in ('gb', 'tb') and not raw[0].isdigit():
            continue
        if unit == 'w' and match.group(0)[-1:].lower() == 'w' and not raw[0].isdigit():
            continue                # "一w" is 10,000 (yuan), not a watt
        if unit == 'w' and match.group(0)[-1:] in 'wW' and re.fullmatch(r'\d{1,2}(?:\.\d)?', raw):
            continue                # "2w", "1.5w": 20,000 / 15,000 yuan as people write it
        value = _value(raw)
        if value and value <= MAX_SIZE:
            found.append(Size(value, unit, match.span()))
    return found


def extract_size(text: str) -> Size | None:
    sizes = find_sizes(text)
    return sizes[0] if sizes else None


def product_sizes(product: Product) -> dict[str, float]:
    """A product's sizes by unit: its `<value>_<unit>` tags first, then sizes in its names."""
    sizes: dict[str, float] = {}
    for tag in product.tags:
        if m := _TAG.match(tag):
            sizes.setdefault(m.group(2).lower(), float(m.group(1)))
    for name in (product.name_zh, product.name_en):
        for size in find_sizes(name):
            if size.unit not in ('gb', 'tb', 'w'):     # "256G" in a name is storage, kept only by tag
                sizes.setdefault(size.unit, size.value)
    return sizes


def fits_size(product: Product, size: tuple[float, str] | dict | None, tolerance: float = 0.02) -> bool:
    """Whether `product` has the size asked for ((value, unit) or the NLU's {'value', 'unit'} slot),
    within 2 %; True when no size was asked."""
    if not size:
        return True
    value, unit = (float(size['value']), str(size['unit'])) if isinstance(size, dict) else size
    have = product_sizes(product).get(unit)
    return have is not None and abs(have - value) <= tolerance * value


__all__ = ['Size', 'UNITS', 'extract_size', 'find_sizes', 'fits_size', 'product_sizes']
