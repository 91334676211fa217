"""Synthetic stores with planted buying behaviour, for tests, benchmarks and the demo history.

`simulate_purchases` works on any catalog (the demo store's or a generated one) and plants what
the recommender should find, so a benchmark can tell whether it does:
  * brand loyalty - each member has a favourite brand and mostly buys it where it exists;
  * follow-ups - a phone is followed by an accessory, earphones or a watch within weeks, a laptop
    by a printer, a TV by a game console ... (FOLLOW_UPS);
  * consumables - a printer, coffee machine or water purifier is followed by the ink, capsules or
    filter made for it (`for_<SKU>` tag), bought again at a regular interval;
  * uneven popularity inside each category (a few best sellers).
`make_catalog` generates a catalog of any size in the shared CSV format (the latency benchmark
uses 100 000 products).
"""
from __future__ import annotations

import bisect
import csv
import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from retail_common.catalog import COLUMNS, Catalog, Product
from retail_recommendation.history import Purchase

DAY_S = 86400.0
DEFAULT_END = datetime(2026, 11, 22, 20, 0, tzinfo=timezone.utc)

# category -> [(follow-up category, probability, (min days, max days) after the purchase)]
FOLLOW_UPS: dict[str, list[tuple[str, float, tuple[int, int]]]] = {
    'phone': [('phone_accessory', 0.6, (0, 14)), ('headphones', 0.35, (0, 60)),
              ('smartwatch', 0.25, (7, 120))],
    'tablet': [('phone_accessory', 0.4, (0, 30)), ('headphones', 0.15, (0, 60))],
    'laptop': [('printer', 0.25, (0, 60)), ('headphones', 0.2, (0, 60))],
    'tv': [('game_console', 0.2, (0, 90))],
    'game_console': [('tv', 0.1, (0, 90)), ('headphones', 0.15, (0, 60))],
    'camera': [('phone_accessory', 0.2, (0, 30))],
    'refrigerator': [('washing_machine', 0.2, (0, 60)), ('microwave', 0.15, (0, 60))],
    'washing_machine': [('refrigerator', 0.15, (0, 60))],
    'air_fryer': [('rice_cooker', 0.15, (0, 90))],
    'rice_cooker': [('air_fryer', 0.15, (0, 90))],
}
# owner category -> (consumable category, (min, max) days between refills)
CONSUMABLES: dict[str, tuple[str, tuple[int, int]]] = {
    'printer': ('printer_ink', (50, 110)),
    'coffee_machine': ('coffee_capsule', (20, 45)),
    'water_purifier': ('water_filter', (120, 200)),
}
# How often a member's own shopping trip is for each category (relative).
CATEGORY_DEMAND: dict[str, float] = {
    'phone': 10, 'smartwatch': 3, 'tablet': 4, 'phone_accessory': 3, 'laptop': 5, 'printer': 3,
    'tv': 4, 'headphones': 4, 'camera': 2, 'game_console': 2, 'air_fryer': 4, 'rice_cooker': 3,
    'microwave': 2, 'coffee_machine': 3, 'refrigerator': 3, 'washing_machine': 3,
    'air_conditioner': 4, 'vacuum': 3, 'water_purifier': 3, 'hair_dryer': 3,
}


@dataclass(frozen=True)
class _CategorySpec:
    zh: str
    zone: str
    price: tuple[float, float]


_SPECS: dict[str, _CategorySpec] = {
    'phone': _CategorySpec('手机', 'phones', (999, 9999)),
    'smartwatch': _CategorySpec('智能手表', 'phones', (249, 3299)),
    'tablet': _CategorySpec('平板电脑', 'phones', (1499, 8999)),
    'phone_accessory': _CategorySpec('手机配件', 'phones', (39, 329)),
    'laptop': _CategorySpec('笔记本电脑', 'computers', (3999, 12999)),
    'printer': _CategorySpec('打印机', 'computers', (999, 2999)),
    'printer_ink': _CategorySpec('墨盒', 'computers', (59, 299)),
    'tv': _CategorySpec('电视', 'audio_video', (1599, 8999)),
    'headphones': _CategorySpec('耳机', 'audio_video', (199, 2999)),
    'camera': _CategorySpec('相机', 'cameras_gaming', (3499, 15999)),
    'game_console': _CategorySpec('游戏机', 'cameras_gaming', (1299, 3899)),
    'air_fryer': _CategorySpec('空气炸锅', 'kitchen', (169, 1099)),
    'rice_cooker': _CategorySpec('电饭煲', 'kitchen', (299, 2599)),
    'microwave': _CategorySpec('微波炉', 'kitchen', (399, 1599)),
    'coffee_machine': _CategorySpec('咖啡机', 'kitchen', (499, 3999)),
    'coffee_capsule': _CategorySpec('咖啡胶囊', 'kitchen', (45, 229)),
    'refrigerator': _CategorySpec('冰箱', 'large_appliances', (1499, 14999)),
    'washing_machine': _CategorySpec('洗衣机', 'large_appliances', (1099, 4299)),
    'air_conditioner': _CategorySpec('空调', 'large_appliances', (2199, 6999)),
    'vacuum': _CategorySpec('吸尘器', 'home_care', (1499, 6499)),
    'water_purifier': _CategorySpec('净水器', 'home_care', (1999, 3999)),
    'water_filter': _CategorySpec('滤芯', 'home_care', (199, 799)),
    'hair_dryer': _CategorySpec('吹风机', 'home_care', (199, 2999)),
}
_BRANDS = [('Huawei', '华为'), ('Xiaomi', '小米'), ('Apple', '苹果'), ('OPPO', 'OPPO'),
           ('vivo', 'vivo'), ('Honor', '荣耀'), ('Midea', '美的'), ('Haier', '海尔'),
           ('Gree', '格力'), ('Sony', '索尼'), ('Lenovo', '联想'), ('HP', '惠普'), ('Canon', '佳能'),
           ('Philips', '飞利浦'), ('Supor', '苏泊尔'), ('Joyoung', '九阳'), ('TCL', 'TCL'),
           ('Hisense', '海信'), ('Dyson', '戴森'), ('Panasonic', '松下')]
_PROMOTIONS = ['满2000减200', '满5000减500', '12期免息', '第二件半价', '以旧换新补贴15%']


def make_catalog(n_products: int = 300, seed: int = 7, brands_per_category: int = 6) -> Catalog:
    """A catalog of `n_products` spread over the store's categories, consumables tied to owners."""
    rng = random.Random(seed)
    categories = list(_SPECS)
    products: list[Product] = []
    owners: dict[str, list[Product]] = {}
    owners_by_brand: dict[tuple[str, str], list[Product]] = {}
    counter = itertools.count(1)
    for position, category in enumerate(categories):
        per_category = n_products // len(categories) + (position < n_products % len(categories))
        spec = _SPECS[category]
        brands = rng.sample(_BRANDS, min(brands_per_category, len(_BRANDS)))
        consumable = any(c == category for c, _ in CONSUMABLES.values())
        for _ in range(per_category):
            brand, brand_zh = rng.choice(brands)
            number = next(counter)
            sku = f'{brand[:2].upper()}-{category[:3].upper()}{number:06d}'
            low, high = spec.price
            price = round(rng.uniform(low, high) / 10) * 10 - 1.0
            tags = ['consumable'] if consumable else []
            if consumable:
                owner_category = next(o for o, (c, _) in CONSUMABLES.items() if c == category)
                candidates = owners_by_brand.get((owner_category, brand)) or owners.get(owner_category)
                if candidates:
                    tags.append('for_' + rng.choice(candidates).sku)
            stock = 0 if rng.random() < 0.1 else rng.randint(1, 40)
            promotion = rng.choice(_PROMOTIONS) if rng.random() < 0.2 else ''
            products.append(Product(
                sku=sku, name_zh=f'{brand_zh}{spec.zh} {number}', name_en=f'{brand} {category} {number}',
                aliases=(), category=category, category_zh=spec.zh, brand=brand, brand_zh=brand_zh,
                price_cny=max(price, 9.0), zone=spec.zone, stock=stock, tags=tuple(tags),
                promotion=promotion))
        owners[category] = products[len(products) - per_category:]
        for p in owners[category]:
            owners_by_brand.setdefault((category, p.brand), []).append(p)
    return Catalog(path='synthetic', products=products)


def write_catalog(path: str | Path, catalog: Catalog) -> None:
    with Path(path).open('w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in catalog.products:
            writer.writerow((p.sku, p.name_zh, p.name_en, '|'.join(p.aliases), p.category,
                             p.category_zh, p.brand, p.brand_zh, f'{p.price_cny:.2f}', p.zone,
                             p.stock, '|'.join(p.tags), p.promotion))


class _Shelf:
    """Fast weighted picks of products by category and by (category, brand)."""

    def __init__(self, catalog: Catalog, rng: random.Random) -> None:
        self.by_category: dict[str, tuple[list[Product], list[float]]] = {}
        self.by_brand: dict[tuple[str, str], tuple[list[Product], list[float]]] = {}
        self.fits: dict[str, list[Product]] = {}
        grouped: dict[str, list[Product]] = {}
        for p in catalog.products:
            grouped.setdefault(p.category, []).append(p)
            for tag in p.tags:
                if tag.startswith('for_'):
                    self.fits.setdefault(tag[4:], []).append(p)
        for category, items in grouped.items():
            rng.shuffle(items)
            weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(items))]  # a few best sellers
            self.by_category[category] = (items, list(itertools.accumulate(weights)))
            brands: dict[str, list[tuple[Product, float]]] = {}
            for item, weight in zip(items, weights):
                brands.setdefault(item.brand, []).append((item, weight))
            for brand, pairs in brands.items():
                self.by_brand[(category, brand)] = ([p for p, _ in pairs],
                                                    list(itertools.accumulate(w for _, w in pairs)))
        self.brand_weight: dict[str, float] = {}
        for p in catalog.products:
            self.brand_weight[p.brand] = self.brand_weight.get(p.brand, 0.0) + 1.0

    @staticmethod
    def _pick(rng: random.Random, entry: tuple[list[Product], list[float]]) -> Product:
        items, cumulative = entry
        return items[bisect.bisect(cumulative, rng.random() * cumulative[-1])]

    def pick(self, rng: random.Random, category: str, brand: str, loyalty: float,
             owned: set[str] = frozenset()) -> Product | None:
        """A product of `category`, mostly of `brand`; nobody buys a second identical durable."""
        if category not in self.by_category:
            return None
        for _ in range(3):
            if rng.random() < loyalty and (category, brand) in self.by_brand:
                product = self._pick(rng, self.by_brand[(category, brand)])
            else:
                product = self._pick(rng, self.by_category[category])
            if product.sku not in owned:
                return product
        return None


def simulate_purchases(catalog: Catalog, n_customers: int, *, days: int = 365, seed: int = 1,
                       end: datetime = DEFAULT_END, first_id: int = 1,
                       trips_per_customer: float = 1.6) -> list[Purchase]:
    """A year (by default) of purchases by `n_customers` members `m-000001`... with planted habits."""
    rng = random.Random(seed)
    shelf = _Shelf(catalog, rng)
    end_ts = end.timestamp()
    start_ts = end_ts - days * DAY_S
    demand = [(c, w) for c, w in CATEGORY_DEMAND.items() if c in shelf.by_category]
    demand_categories = [c for c, _ in demand]
    demand_cumulative = list(itertools.accumulate(w for _, w in demand))
    brands = list(shelf.brand_weight)
    brand_cumulative = list(itertools.accumulate(shelf.brand_weight[b] for b in brands))
    purchases: list[Purchase] = []
    for number in range(first_id, first_id + n_customers):
        customer = f'm-{number:06d}'
        favourite = brands[bisect.bisect(brand_cumulative, rng.random() * brand_cumulative[-1])]
        loyalty = rng.uniform(0.5, 0.9)
        trips = 1 + _poisson(rng, trips_per_customer - 1)
        own: list[Purchase] = []
        owned: set[str] = set()
        for _ in range(trips):
            category = demand_categories[bisect.bisect(demand_cumulative, rng.random() * demand_cumulative[-1])]
            when = rng.uniform(start_ts, end_ts)
            product = shelf.pick(rng, category, favourite, loyalty, owned)
            if product is None:
                continue
            own.append(_purchase(customer, product, when))
            owned.add(product.sku)
            for follow_category, probability, (lo, hi) in FOLLOW_UPS.get(category, []):
                if rng.random() < probability:
                    item = shelf.pick(rng, follow_category, product.brand, loyalty, owned)
                    if item is not None:
                        own.append(_purchase(customer, item, when + rng.uniform(lo, hi) * DAY_S))
                        owned.add(item.sku)
            if category in CONSUMABLES:
                own.extend(_refills(rng, customer, product, shelf, when, end_ts))
        purchases.extend(p for p in own if p.ts <= end_ts)
    purchases.sort(key=lambda p: p.ts)
    return purchases


def _refills(rng: random.Random, customer: str, owner: Product, shelf: _Shelf, since: float,
             end_ts: float) -> list[Purchase]:
    consumable_category, (lo, hi) = CONSUMABLES[owner.category]
    fitting = shelf.fits.get(owner.sku)
    item = rng.choice(fitting) if fitting else shelf.pick(rng, consumable_category, owner.brand, 0.8)
    if item is None:
        return []
    out = []
    when = since + rng.uniform(0, 10) * DAY_S
    while when <= end_ts and rng.random() < 0.9:
        out.append(_purchase(customer, item, when, qty=rng.choice((1, 1, 1, 2))))
        when += rng.uniform(lo, hi) * DAY_S
    return out


def _purchase(customer: str, product: Product, ts: float, qty: int = 1) -> Purchase:
    return Purchase(customer, product.sku, round(ts), qty, product.price_cny)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def zipf_store(n_products: int = 2000, n_members: int = 8000, *, seed: int = 1, groups: int = 40,
               zipf: float = 1.0, group_share: float = 0.6, staple_share: float = 0.15,
               rebuy: float = 0.25, visits_mean: float = 4.0, days: int = 365,
               end: datetime = DEFAULT_END) -> tuple[Catalog, list[Purchase]]:
    """A store built unlike the demo: no brands, categories unrelated to taste, Zipf popularity.

    Products fall into `groups` hidden taste groups (independent of their category); popularity
    is Zipf(`zipf`) over the whole catalog (0: uniform). A member has one or two groups; on each
    of their visits (Poisson count, at random times) they buy 1-3 products, each from one of
    their groups with probability `group_share` (by popularity inside it), else from the whole
    store, and - with probability `rebuy` per visit - one of their earlier "staple" products
    (a `staple_share` of the catalog people re-buy, untagged). group_share=0 leaves popularity
    as the only signal; zipf=0 with group_share=1 leaves only the item-item structure.
    """
    rng = random.Random(seed)
    products = _zipf_products(rng, n_products)
    catalog = Catalog(path='zipf-synthetic', products=products)
    order = list(range(n_products))
    rng.shuffle(order)  # popularity rank independent of sku, group and category
    weight = [0.0] * n_products
    for rank, i in enumerate(order):
        weight[i] = 1.0 / (rank + 1) ** zipf
    group_of = [rng.randrange(groups) for _ in range(n_products)]
    staple = [rng.random() < staple_share for _ in range(n_products)]
    members_of: list[list[int]] = [[] for _ in range(groups)]
    for i in range(n_products):
        members_of[group_of[i]].append(i)
    cumulative = [list(itertools.accumulate(weight[i] for i in items)) for items in members_of]
    everything = list(itertools.accumulate(weight))
    end_ts = end.timestamp()
    start_ts = end_ts - days * DAY_S
    purchases: list[Purchase] = []
    for number in range(1, n_members + 1):
        customer = f'z-{number:06d}'
        mine = [g for g in rng.sample(range(groups), 2 if rng.random() < 0.5 else 1) if members_of[g]]
        times = sorted(rng.uniform(start_ts, end_ts) for _ in range(1 + _poisson(rng, visits_mean - 1)))
        own: list[int] = []
        for when in times:
            basket = set(_rebought(rng, own, staple, rebuy))
            for _ in range(rng.randint(1, 3)):
                basket.add(min(_zipf_pick(rng, mine, group_share, members_of, cumulative, everything),
                               n_products - 1))
            for i in basket:
                purchases.append(_purchase(customer, products[i], when))
                own.append(i)
    purchases.sort(key=lambda p: p.ts)
    return catalog, purchases


def _zipf_products(rng: random.Random, n_products: int) -> list[Product]:
    """`n_products` generic products over 12 categories, random prices and stock."""
    categories = [c for c in _SPECS if c not in ('printer_ink', 'coffee_capsule', 'water_filter')][:12]
    products = []
    for number in range(1, n_products + 1):
        category = categories[rng.randrange(len(categories))]
        spec = _SPECS[category]
        price = round(rng.uniform(*spec.price) / 10) * 10 - 1.0
        products.append(Product(
            sku=f'Z-{number:06d}', name_zh=f'{spec.zh} {number}',
            name_en=f"{category.replace('_', ' ')} {number}",
            aliases=(), category=category, category_zh=spec.zh, brand='Generic', brand_zh='通用',
            price_cny=max(price, 9.0), zone=spec.zone, stock=rng.randint(1, 40), tags=(), promotion=''))
    return products


def _rebought(rng: random.Random, own: list[int], staple: list[bool], rebuy: float) -> list[int]:
    """With probability `rebuy` (and earlier purchases), one of the member's staple products again."""
    if own and rng.random() < rebuy:
        staples = [i for i in own if staple[i]]
        if staples:
            return [rng.choice(staples)]
    return []


def _zipf_pick(rng: random.Random, mine: list[int], group_share: float, members_of: list[list[int]],
               cumulative: list[list[float]], everything: list[float]) -> int:
    """One product index: by popularity inside one of the member's groups (`group_share`), else
    by popularity over the whole store."""
    if mine and rng.random() < group_share:
        g = rng.choice(mine)
        items = members_of[g]
        return items[bisect.bisect(cumulative[g], rng.random() * cumulative[g][-1])]
    return bisect.bisect(everything, rng.random() * everything[-1])
