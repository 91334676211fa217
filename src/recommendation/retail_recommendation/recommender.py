"""Hybrid, explainable recommender: what this member is likely to buy next, within what they asked for.

Score of a product i for a member with past purchases j (weighted by quantity and recency):
  * item-to-item follow-ups learned from the history (directed co-purchase: what members bought
    after j, within their next few purchases) - phone -> case, ink -> the same ink again;
  * category follow-ups (P(next category | categories bought)) times the product's share of its
    category's sales, tilted towards the brands the member buys (brand loyalty);
  * catalog compatibility (`for_<SKU>` tags: the ink that fits the member's printer);
  * restocking consumables the member bought before;
  * store best sellers (recency weighted) as the floor, and for anonymous or new customers;
  * store context: promotions and margin (tag `margin=0.25`) give a small lift.
Hard constraints (category, brand, price range, in stock, no second identical durable) are a mask
applied before ranking, so they hold whatever the scores are. Each item gets one short reason in
Chinese and English taken from the component that put it there.

Training is a few vectorised passes over the history (about a second per million rows), fast
enough to rebuild whenever the sync delivers new history. Requests are read-only on numpy arrays,
so one fitted model serves many threads.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse

from retail_common.catalog import Catalog, Product
from retail_recommendation.history import History

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
COMPAT_TAG_PREFIX = 'for_'
MARGIN_TAG_PREFIX = 'margin='


@dataclass(frozen=True)
class Constraints:
    """What the customer asked for. Prices in CNY; a max_price of 0 means no upper bound."""

    category: str = ''
    brand: str = ''
    min_price: float = 0.0
    max_price: float = 0.0
    in_stock_only: bool = True

    def admits(self, product: Product) -> bool:
        """The same rule the vectorised mask applies (for checks and tests)."""
        return ((not self.category or product.category == self.category)
                and (not self.brand or product.brand.casefold() == self.brand.casefold())
                and product.price_cny >= self.min_price
                and (self.max_price <= 0 or product.price_cny <= self.max_price)
                and (product.in_stock or not self.in_stock_only))


@dataclass(frozen=True)
class Weights:
    """Blend of the components; tuned on leave-last-out hit rate (benches/recommendation_quality.py)."""

    item_follow_up: float = 1.0
    category_follow_up: float = 1.0
    brand_tilt: float = 8.0          # x(1 + tilt * share of the member's purchases in this brand)
    compatible: float = 4.0          # x(1 + this) for a product that fits one the member owns
    restock: float = 0.3
    popularity: float = 0.05
    promotion_lift: float = 0.05
    margin_lift: float = 0.1
    reverse_co_purchase: float = 0.2  # weight of "bought before" next to "bought after"
    lags: int = 5                    # how many later purchases count as a follow-up
    neighbours: int = 100            # follow-ups kept per product
    history_half_life_days: float = 60.0
    popularity_half_life_days: float = 30.0


@dataclass(frozen=True)
class Recommendation:
    product: Product
    score: float
    reason_zh: str
    reason_en: str

    @property
    def sku(self) -> str:
        return self.product.sku

    def reason(self, language: str = 'zh') -> str:
        return self.reason_en if language.startswith('en') else self.reason_zh


def _bought(product: Product) -> str:
    """'a Huawei phone', 'an Apple smartwatch', 'Sony headphones'; a consumable by its name."""
    if product.consumable:
        return product.name_en
    phrase = f'{product.brand} {category_en(product.category)}'
    if product.category.endswith('s'):
        return phrase
    brand = product.brand
    # 'an' before a vowel sound: 'an Apple', and spelled-out initials like 'an HP', 'an LG'.
    vowel_sound = brand[:1].lower() in 'aeiou' or (brand.isupper() and len(brand) <= 3
                                                     and brand[:1] in 'AEFHILMNORSX')
    return ('an ' if vowel_sound else 'a ') + phrase


def category_en(category: str) -> str:
    return category.replace('_', ' ')


def margin_of(product: Product) -> float:
    for tag in product.tags:
        if tag.startswith(MARGIN_TAG_PREFIX):
            try:
                return min(max(float(tag[len(MARGIN_TAG_PREFIX):]), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 0.0


def _rank_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rank (0 = largest value) of each element among the elements of its group."""
    order = np.lexsort((-values, groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - run_start
    return rank


def _top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """Keep the `keep` largest entries of every row (bounds memory and request time)."""
    coo = matrix.tocoo()
    if coo.nnz == 0:
        return matrix
    rank = _rank_within(coo.row, coo.data)
    kept = rank < keep
    return sparse.csr_matrix((coo.data[kept], (coo.row[kept], coo.col[kept])), shape=matrix.shape)


class Recommender:
    """A fitted model of one store: catalog arrays, member profiles, follow-up statistics."""

    def __init__(self, catalog: Catalog, history: History | None = None, *,
                 weights: Weights = Weights(), now: float | None = None) -> None:
        started = time.perf_counter()
        self.catalog = catalog
        self.weights = weights
        history = history if history is not None else History()
        self._index_catalog(catalog.products)
        self.now = now if now is not None else (history.latest_ts if len(history) else time.time())
        self._fit(history)
        self.fit_seconds = time.perf_counter() - started

    # ---------------------------------------------------------------- fitting
    def _index_catalog(self, products: Sequence[Product]) -> None:
        self.products = list(products)
        n = len(self.products)
        self.sku_index = {p.sku: i for i, p in enumerate(self.products)}
        self.categories = sorted({p.category for p in self.products})
        self.brands = sorted({p.brand.casefold() for p in self.products})
        cat_of = {c: i for i, c in enumerate(self.categories)}
        brand_of = {b: i for i, b in enumerate(self.brands)}
        self._category_index, self._brand_index = cat_of, brand_of
        self.item_category = np.fromiter((cat_of[p.category] for p in self.products), np.int32, n)
        self.item_brand = np.fromiter((brand_of[p.brand.casefold()] for p in self.products), np.int32, n)
        self.price = np.fromiter((p.price_cny for p in self.products), np.float64, n)
        self.in_stock = np.fromiter((p.in_stock for p in self.products), bool, n)
        self.consumable = np.fromiter((p.consumable for p in self.products), bool, n)
        on_promotion = np.fromiter((bool(p.promotion) for p in self.products), bool, n)
        margin = np.fromiter((margin_of(p) for p in self.products), np.float64, n)
        self.context_lift = (1.0 + self.weights.promotion_lift * on_promotion
                             + self.weights.margin_lift * margin)
        self._no_items = np.zeros(0, dtype=np.int64)
        self._items_of_category = [np.flatnonzero(self.item_category == c) for c in range(len(self.categories))]
        self._items_of_brand = [np.flatnonzero(self.item_brand == b) for b in range(len(self.brands))]
        # Compatibility: owner item (e.g. a printer) -> items made for it (its inks).
        owners, fits = [], []
        for i, p in enumerate(self.products):
            for tag in p.tags:
                if tag.startswith(COMPAT_TAG_PREFIX):
                    owner = self.sku_index.get(tag[len(COMPAT_TAG_PREFIX):])
                    if owner is not None:
                        owners.append(owner)
                        fits.append(i)
        self._compatible = sparse.csr_matrix((np.ones(len(owners)), (owners, fits)), shape=(n, n))
        self._owners_of = self._compatible.T.tocsr()
        self._made_for = np.unique(np.array(fits, dtype=np.int64))  # sorted

    def _fit(self, history: History) -> None:
        w = self.weights
        n = len(self.products)
        item = np.fromiter((self.sku_index.get(s, -1) for s in history.skus), np.int64, len(history))
        known = item >= 0  # rows of skus the catalog lacks teach nothing that can be sold
        self.customer_index: dict[str, int] = {}
        codes = np.fromiter((self.customer_index.setdefault(c, len(self.customer_index))
                             for c in history.customer_ids), np.int64, len(history))
        item, customer = item[known], codes[known]
        ts, qty = history.ts[known], history.qty[known].astype(np.float64)
        self.purchase_rows = len(item)
        n_customers = len(self.customer_index)

        # Member profiles: customer x item, quantity weighted by recency, and when last bought.
        decay = np.exp2(-np.maximum(self.now - ts, 0.0) / (w.history_half_life_days * DAY_S))
        key = customer * n + item
        order = np.lexsort((ts, key))
        key_sorted = key[order]
        starts = np.r_[0, np.flatnonzero(np.diff(key_sorted)) + 1] if len(key_sorted) else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], len(key_sorted)].astype(np.int64)
        unique_keys = key_sorted[starts]
        self._profile_items = (unique_keys % n).astype(np.int64) if n else unique_keys
        self._profile_weight = np.add.reduceat((qty * decay)[order], starts) if len(starts) else np.zeros(0)
        self._profile_last = ts[order][ends - 1] if len(starts) else np.zeros(0)
        self._profile_ptr = np.searchsorted(unique_keys // max(n, 1), np.arange(n_customers + 1))

        # Popularity: recency-weighted units sold; units this week; ranks within each category.
        pop_decay = np.exp2(-np.maximum(self.now - ts, 0.0) / (w.popularity_half_life_days * DAY_S))
        popularity = np.bincount(item, qty * pop_decay, minlength=n)
        self.units_sold = np.bincount(item, qty, minlength=n)
        self.units_this_week = np.bincount(item, qty * (ts > self.now - WEEK_S), minlength=n)
        total = popularity.sum()
        self.popularity_share = popularity / total if total > 0 else np.full(n, 1.0 / max(n, 1))
        smooth = 0.1
        category_total = np.bincount(self.item_category, popularity + smooth, minlength=len(self.categories))
        self.share_in_category = (popularity + smooth) / category_total[self.item_category]
        self.category_share = category_total / category_total.sum() if n else category_total
        self.week_rank = _rank_within(self.item_category, self.units_this_week) if n else np.zeros(0)
        self.sales_rank = _rank_within(self.item_category, popularity) if n else np.zeros(0)

        # Follow-ups: each purchase and the member's next `lags` purchases, in time order.
        order = np.lexsort((ts, customer))
        seq_item, seq_customer = item[order], customer[order]
        src, dst, weight = [], [], []
        for lag in range(1, w.lags + 1):
            same = seq_customer[:-lag] == seq_customer[lag:]
            a, b = seq_item[:-lag][same], seq_item[lag:][same]
            src += [a, b]
            dst += [b, a]
            weight += [np.full(len(a), 1.0 / lag), np.full(len(a), w.reverse_co_purchase / lag)]
        src_all = np.concatenate(src) if src else np.zeros(0, np.int64)
        dst_all = np.concatenate(dst) if dst else np.zeros(0, np.int64)
        weight_all = np.concatenate(weight) if weight else np.zeros(0)
        counts = sparse.csr_matrix((weight_all, (src_all, dst_all)), shape=(n, n))
        counts.sum_duplicates()
        out = np.asarray(counts.sum(axis=1)).ravel()
        follow = sparse.diags(1.0 / (out + 2.0)) @ counts  # P(next = i | bought j), shrunk
        self._follow = _top_per_row(sparse.csr_matrix(follow), w.neighbours)

        n_cat = len(self.categories)
        different = src_all != dst_all
        pair = (self.item_category[src_all[different]].astype(np.int64) * n_cat
                + self.item_category[dst_all[different]])
        category_counts = np.bincount(pair, weight_all[different], minlength=n_cat * n_cat).reshape(n_cat, n_cat)
        prior = 5.0
        self._category_next = ((category_counts + prior * self.category_share)
                               / (category_counts.sum(axis=1, keepdims=True) + prior))

    # ---------------------------------------------------------------- queries
    @property
    def n_customers(self) -> int:
        return len(self.customer_index)

    def purchases_of(self, customer_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(items, recency-weighted quantities, last purchase time) of a member; empty if unknown."""
        c = self.customer_index.get(customer_id)
        if c is None:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty
        lo, hi = self._profile_ptr[c], self._profile_ptr[c + 1]
        return self._profile_items[lo:hi], self._profile_weight[lo:hi], self._profile_last[lo:hi]

    def _candidates(self, constraints: Constraints) -> np.ndarray | None:
        """Sorted product indices worth scoring, or None for the whole catalog (no copies then)."""
        if constraints.category:
            c = self._category_index.get(constraints.category)
            return self._items_of_category[c] if c is not None else self._no_items
        if constraints.brand:
            b = self._brand_index.get(constraints.brand.casefold())
            return self._items_of_brand[b] if b is not None else self._no_items
        return None

    @staticmethod
    def _take(values: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
        return values if idx is None else values[idx]

    @staticmethod
    def _positions(idx: np.ndarray | None, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `idx` of those `items` that are candidates, which items those are)."""
        if idx is None:
            return items, np.ones(len(items), dtype=bool)
        if not len(idx):
            return items[:0], np.zeros(len(items), dtype=bool)
        pos = np.minimum(np.searchsorted(idx, items), len(idx) - 1)
        found = idx[pos] == items
        return pos[found], found

    @staticmethod
    def _row_entries(matrix: sparse.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, values, which of `rows`) of the stored entries of some rows; cheaper than slicing."""
        starts = matrix.indptr[rows]
        lengths = matrix.indptr[rows + 1] - starts
        total = int(lengths.sum())
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        take = offsets + np.arange(total)
        return matrix.indices[take], matrix.data[take], np.repeat(np.arange(len(rows)), lengths)

    def _admissible(self, idx: np.ndarray | None, constraints: Constraints) -> np.ndarray:
        price = self._take(self.price, idx)
        mask = price >= constraints.min_price
        if constraints.max_price > 0:
            mask &= price <= constraints.max_price
        if constraints.in_stock_only:
            mask &= self._take(self.in_stock, idx)
        if constraints.brand:
            b = self._brand_index.get(constraints.brand.casefold(), -1)
            mask &= self._take(self.item_brand, idx) == b
        return mask

    def admissible(self, constraints: Constraints) -> np.ndarray:
        """Indices of the products that satisfy `constraints` (ignoring what anyone owns)."""
        idx = self._candidates(constraints)
        mask = self._admissible(idx, constraints)
        return np.flatnonzero(mask) if idx is None else idx[mask]

    def recommend(self, customer_id: str = '', constraints: Constraints = Constraints(),
                  k: int = 5) -> list[Recommendation]:
        """Top `k` products for the customer ('' = anonymous) that satisfy `constraints`."""
        idx = self._candidates(constraints)
        size = len(self.products) if idx is None else len(idx)
        if k <= 0 or size == 0:
            return []
        mask = self._admissible(idx, constraints)
        items, weight, last = self.purchases_of(customer_id)
        w = self.weights
        parts: dict[str, np.ndarray] = {'popularity': w.popularity * self._take(self.popularity_share, idx)}
        if len(items):
            share = weight / weight.sum()
            columns, values, row = self._row_entries(self._follow, items)
            pos, found = self._positions(idx, columns)
            parts['item'] = w.item_follow_up * np.bincount(pos, (values * share[row])[found], minlength=size)
            category_next = share @ self._category_next[self.item_category[items]]
            brand_share = np.bincount(self.item_brand[items], share, minlength=len(self.brands))
            content = (category_next[self._take(self.item_category, idx)]
                       * self._take(self.share_in_category, idx)
                       * (1.0 + w.brand_tilt * brand_share[self._take(self.item_brand, idx)]))
            fitting = np.unique(self._row_entries(self._compatible, items)[0])
            if len(fitting):
                # The ink for the member's printer up; inks for printers they do not own down.
                factor = np.ones(size)
                factor[self._positions(idx, self._made_for)[0]] = 0.2
                factor[self._positions(idx, fitting)[0]] = 1.0 + w.compatible
                content *= factor
            parts['category'] = w.category_follow_up * content
            pos, found = self._positions(idx, items)
            consumable = self.consumable[items[found]]
            mask[pos[~consumable]] = False  # never a second identical durable
            restock = np.zeros(size)
            restock[pos[consumable]] = w.restock * share[found][consumable]
            parts['restock'] = restock
        score = sum(parts.values()) * self._take(self.context_lift, idx)
        valid = np.flatnonzero(mask)
        if len(valid) > k:
            valid = valid[np.argpartition(-score[valid], k - 1)[:k]]
        product_ids = valid if idx is None else idx[valid]
        order = np.lexsort((product_ids, -score[valid]))
        if not len(order):
            return []
        best = score[valid[order[0]]] or 1.0
        return [self._explain(int(product_ids[o]), float(score[valid[o]] / best),
                              {name: float(part[valid[o]]) for name, part in parts.items()},
                              items, weight, last)
                for o in order]

    # ---------------------------------------------------------------- reasons
    def _explain(self, i: int, score: float, parts: dict[str, float], items: np.ndarray,
                 weight: np.ndarray, last: np.ndarray) -> Recommendation:
        product = self.products[i]
        reason_zh, reason_en = self._reason(i, parts, items, weight, last)
        if product.promotion:
            promo_zh, promo_en = f'促销：{product.promotion}', f'on promotion: {product.promotion}'
            reason_zh = f'{reason_zh}；{promo_zh}' if reason_zh else promo_zh
            reason_en = f'{reason_en}; {promo_en}' if reason_en else promo_en
        if not reason_zh:
            reason_zh, reason_en = '符合您的要求', 'matches what you asked for'
        return Recommendation(product, round(score, 4), reason_zh, reason_en)

    def _reason(self, i: int, parts: dict[str, float], items: np.ndarray,
                weight: np.ndarray, last: np.ndarray) -> tuple[str, str]:
        """The personal link that put product i here, else why the store suggests it."""
        if len(items):
            mine = np.flatnonzero(items == i)
            if self.consumable[i] and len(mine):
                days = max(int((self.now - last[mine[0]]) // DAY_S), 0)
                return (f'您{days}天前购买过，可以补货了',
                        f'you bought this {days} day{"" if days == 1 else "s"} ago; time to restock')
            owner = self._owned_fit(i, items)
            if owner is not None:
                p = self.products[owner]
                return f'适配您的{p.name_zh}', f'fits your {p.name_en}'
            same_brand = self.item_brand[items] == self.item_brand[i]
            if same_brand.any() or parts.get('item', 0.0) >= 0.5 * sum(parts.values()):
                p = self.products[self._source(i, items, weight)]
                return f'因为您购买过{p.brand_zh}{p.category_zh}', f'because you bought {_bought(p)}'
        if self.units_this_week[i] > 0 and self.week_rank[i] < 3:
            return '本店本周热销', 'popular in this store this week'
        if self.units_sold[i] > 0 and self.sales_rank[i] < 5:
            return '本店热销', 'a best seller in this store'
        return '', ''

    def _owned_fit(self, i: int, items: np.ndarray) -> int | None:
        owners = self._owners_of.indices[self._owners_of.indptr[i]:self._owners_of.indptr[i + 1]]
        owned = np.intersect1d(owners, items)
        return int(owned[0]) if len(owned) else None

    def _source(self, i: int, items: np.ndarray, weight: np.ndarray) -> int:
        """The past purchase that best explains product i: same brand (and category) first."""
        same_brand = self.item_brand[items] == self.item_brand[i]
        if same_brand.any():  # brand loyalty: the member's own product of that brand, best match
            same_category = self.item_category[items] == self.item_category[i]
            return int(items[np.lexsort((self.price[items], same_category & same_brand, same_brand))[-1]])
        columns, values, row = self._row_entries(self._follow, items)
        follow = np.bincount(row[columns == i], values[columns == i], minlength=len(items))
        category = self._category_next[self.item_category[items], self.item_category[i]]
        return int(items[int(np.argmax(weight * (follow + category)))])
