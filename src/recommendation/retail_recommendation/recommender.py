"""Explainable recommender learned per store: what this member is likely to buy next, within what they asked.

A product's score for a member is a weighted sum of components, each scaled to 1 at its best
product for that member (so weights compare), fitted on the store's own history
(`components.py`):
  * `cf` - item-item collaborative filtering: EASE when the sold products fit a dense solve,
    cosine item-kNN beyond; the member's products weighted by recency;
  * `seq` - follow-ups: what members buy on their next visits after the products of this
    member's latest visits;
  * `repeat` - the member's own products again, by how often buyers re-buy each one (learned from
    the data; the `consumable` tag is only the prior), the member's own count and recency;
  * `pop` - distinct buyers, weighted by recency (also what anonymous and new customers get);
  * `affinity` - the categories members move to next from this member's categories, the
    product's share of its category, tilted towards the member's brands;
  * `fits` - the catalog's `for_<SKU>` tags: the ink that fits the member's printer.
Which components are on, their weights, neighbourhood sizes, regularisation and half-lives are
`Settings`, chosen by validation on the same history when the model is trained
(`training.train(catalog, history)` returns the fitted model; `Recommender(catalog, history,
settings=...)` fits given settings, the documented prior by default). There are two blends: the
robot's list (`settings`) and the discovery list (`discovery`: only products the member never
bought, `recommend(..., exclude_owned=True)`), each validated on its own question.

Owned products: a product the member already bought comes back (in the robot's list) only when
the data shows it is a consumable people buy again (`components.repeat_stats`: the share of its
buyers who bought it on a later visit, judged by its lower confidence bound, on the product's own
buyers when there are enough of them, else on its category's; the catalog's `consumable` tag is
only the prior of a store without data). Everything else the member owns is a durable and never
comes back. Store context (promotion, margin tag) lifts a score slightly; hard constraints
(category, brand, price range, in stock) and the owned-durable rule are a mask applied before
ranking, so they hold whatever the scores are. Each item's reason, in Chinese and English, names
the component that contributed most to it.

Requests read numpy arrays only, so one fitted model serves many threads; a retrain builds a new
model and the caller swaps the reference.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from retail_common.catalog import Catalog, Product
from retail_common.search import SearchConstraints
from retail_recommendation import components as comp
from retail_recommendation.history import History

DAY_S = comp.DAY_S
WEEK_S = 7 * DAY_S
COMPAT_TAG_PREFIX = 'for_'
MARGIN_TAG_PREFIX = 'margin='
COMPONENTS = ('cf', 'seq', 'repeat', 'pop', 'affinity', 'fits')
CONSUMABLE_PRIOR = 0.5  # re-buy rate a `consumable` tag stands for until the data says otherwise
NEIGHBOURS = 100        # kept per product in the cf and seq matrices (bounds request time)
INF = math.inf


# What the customer asked for: the one type the dialogue's search and this query share. The
# vectorised mask below applies category, brand, price and stock; size and exclusions are applied
# by the caller to the answer (the dialogue does).
Constraints = SearchConstraints


@dataclass(frozen=True)
class Settings:
    """The blend and the components' hyper-parameters (chosen by validation; see training.py).

    The defaults are the uninformed prior used when the history is too small to validate on:
    the member's own signals on with weight 1, popularity 0.1 (it breaks their ties), no decay,
    the brand tilt in the middle of the validated range.
    """

    weights: tuple[tuple[str, float], ...] = tuple((c, 0.1 if c == 'pop' else 1.0) for c in COMPONENTS)
    cf: str = 'ease'                     # 'ease' or 'knn' (kNN whenever EASE does not fit)
    ease_lambda: float = 0.0             # 0: the middle of components.ease_lambdas
    profile_half_life_days: float = INF  # recency of the member's products for cf and affinity
    seq_lags: int = 2                    # later visits that count as a follow-up
    repeat_half_life_days: float = INF
    repeat_due: bool = False             # x min(1, days since the member's last one / the product's re-buy interval)
    popularity_half_life_days: float = INF
    brand_tilt: float = 4.0              # x(1 + tilt * member's share of purchases in the brand)
    other_fit: float = 1.0               # x this for a product made for a device the member lacks
    promotion_lift: float = 0.05         # store context, not learned: the store's own policy
    margin_lift: float = 0.1

    def weight(self, name: str) -> float:
        return dict(self.weights).get(name, 0.0)

    def with_weights(self, **weights: float) -> 'Settings':
        merged = dict(self.weights) | weights
        return replace(self, weights=tuple((c, float(merged.get(c, 0.0))) for c in COMPONENTS))

    def describe(self) -> str:
        """One line for logs and `recommend eval`: the components on, and their parameters."""
        on = [f'{c} {w:g}' for c, w in self.weights if w > 0]
        days = lambda h: 'none' if not math.isfinite(h) else f'{h:g} d'  # noqa: E731
        parts = [f"weights: {', '.join(on) or 'none'}"]
        if self.weight('cf') > 0:
            parts.append(f'cf: {self.cf}' + (f' lambda {self.ease_lambda:g}' if self.cf == 'ease' else '')
                         + f', profile half-life {days(self.profile_half_life_days)}')
        if self.weight('seq') > 0:
            parts.append(f'seq: {self.seq_lags} visit(s) ahead')
        if self.weight('repeat') > 0:
            parts.append(f'repeat half-life {days(self.repeat_half_life_days)}'
                         + (', when due' if self.repeat_due else ''))
        if self.weight('pop') > 0 or not on:
            parts.append(f'popularity half-life {days(self.popularity_half_life_days)}')
        if self.weight('affinity') > 0:
            parts.append(f'brand tilt {self.brand_tilt:g}' + (f', made for a device not owned x{self.other_fit:g}'
                                                               if self.other_fit != 1.0 else ''))
        return '; '.join(parts)

    def as_dict(self) -> dict:
        out = asdict(self)
        out['weights'] = dict(self.weights)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


@dataclass(frozen=True)
class Recommendation:
    product: Product
    score: float
    reason_zh: str
    reason_en: str
    component: str = ''  # the component that contributed most ('' when only store context)

    @property
    def sku(self) -> str:
        return self.product.sku

    def reason(self, language: str = 'zh') -> str:
        return self.reason_en if language.startswith('en') else self.reason_zh


@dataclass
class Validation:
    """What training measured: the chosen settings' validation score next to each component alone."""

    members: int = 0
    metric: str = 'recall@10'
    blend: float = 0.0
    alone: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ''
    discovery_members: int = 0   # members whose held-out visit has a product they never bought before
    discovery_blend: float = 0.0  # the discovery blend's recall@10 of those products, owned masked
    discovery_alone: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.members:
            return f'not validated ({self.note})'
        alone = ', '.join(f'{c} {v:.3f}' for c, v in sorted(self.alone.items(), key=lambda kv: -kv[1]))
        text = (f'validation {self.metric} {self.blend:.3f} on {self.members} members '
                f'(each component alone: {alone}; {self.seconds:.1f} s)')
        if self.discovery_members:
            alone = ', '.join(f'{c} {v:.3f}' for c, v in sorted(self.discovery_alone.items(), key=lambda kv: -kv[1]))
            text += (f'; discovery {self.metric} {self.discovery_blend:.3f} on {self.discovery_members} members '
                     f'(alone: {alone})')
        return text


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


def every(days: float) -> tuple[str, str]:
    """('每月', 'every month') style phrases for a buying interval in days."""
    if days < 10:
        return '每周', 'every week'
    if days < 21:
        return '每两周', 'every two weeks'
    if days < 45:
        return '每月', 'every month'
    months = max(2, round(days / 30))
    if months >= 11:
        return '每年', 'every year'
    return f'每{months}个月', f'every {months} months'


def margin_of(product: Product) -> float:
    for tag in product.tags:
        if tag.startswith(MARGIN_TAG_PREFIX):
            try:
                return min(max(float(tag[len(MARGIN_TAG_PREFIX):]), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 0.0


def _row_entries(matrix: sparse.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, values, which of `rows`) of the stored entries of some rows; cheaper than slicing."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    take = offsets + np.arange(total)
    return matrix.indices[take], matrix.data[take], np.repeat(np.arange(len(rows)), lengths)


Progress = Callable[[str, float], None]  # (what is being done, fraction done 0..1)


def encode(sku_index: dict[str, int], history: History
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(product, member, ts, qty, member index) of the rows whose sku the catalog lists."""
    item = np.fromiter((sku_index.get(s, -1) for s in history.skus), np.int64, len(history))
    known = item >= 0
    members: dict[str, int] = {}
    codes = np.fromiter((members.setdefault(c, len(members)) for c in history.customer_ids),
                        np.int64, len(history))
    return item[known], codes[known], history.ts[known], history.qty[known].astype(np.float64), members


class Recommender:
    """A fitted model of one store, for given settings (`training.train` chooses them by validation).

    settings=None: the documented prior (`Settings()`); discovery=None: the same as `settings`.
    `now` (seconds) is the moment recency is measured from (default: the latest purchase).
    `validation` is what chose the settings; `fit_seconds` the whole training time (the caller's
    `started`, a `time.perf_counter()` reading, includes its validation).
    """

    def __init__(self, catalog: Catalog, history: History | None = None, *,
                 settings: Settings | None = None, discovery: Settings | None = None,
                 now: float | None = None, validation: Validation | None = None,
                 started: float | None = None) -> None:
        started = started if started is not None else time.perf_counter()
        history = history if history is not None else History()
        self._setup(catalog, settings, discovery, now if now is not None else
                    (history.latest_ts if len(history) else time.time()), validation)
        # One BLAS thread: training runs next to the robot's other nodes, and a multi-threaded
        # BLAS on busy cores spins (a Cholesky solve measured 8x slower with 2 threads than 1).
        with threadpool_limits(1, 'blas'):
            item, member, ts, qty, self.customer_index = self.encode(history)
            self.fit_statistics(comp.Visits.build(item, member, ts, qty, len(self.products),
                                                  len(self.customer_index)))
        self.fit_seconds = time.perf_counter() - started

    @classmethod
    def from_visits(cls, catalog: Catalog, visits: comp.Visits, customer_index: dict[str, int], *,
                    settings: Settings, now: float,
                    cf_variants: Sequence[tuple[str, float]] = ()) -> 'Recommender':
        """A model fitted on already coded visits; `cf_variants` [(kind, lambda)] are all fitted (validation)."""
        model = cls.__new__(cls)
        started = time.perf_counter()
        model._setup(catalog, settings, None, now, None)
        model.customer_index = customer_index
        with threadpool_limits(1, 'blas'):
            model.fit_statistics(visits, cf_variants)
        model.fit_seconds = time.perf_counter() - started
        return model

    def _setup(self, catalog: Catalog, settings: Settings | None, discovery: Settings | None,
               now: float, validation: Validation | None) -> None:
        self.catalog = catalog
        self._index_catalog(catalog.products)
        self.now = now
        self.settings = settings or Settings()
        self.discovery = discovery or self.settings
        self.validation = validation or Validation(note='settings given')

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
        self._on_promotion = np.fromiter((bool(p.promotion) for p in self.products), bool, n)
        self._margin = np.fromiter((margin_of(p) for p in self.products), np.float64, n)
        self._no_items = np.zeros(0, dtype=np.int64)
        self._items_of_category = [np.flatnonzero(self.item_category == c) for c in range(len(self.categories))]
        self._items_of_brand = [np.flatnonzero(self.item_brand == b) for b in range(len(self.brands))]
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
        self._made_for = np.unique(np.array(fits, dtype=np.int64))  # products made for a device

    def encode(self, history: History) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
        """(product, member, ts, qty, member index) of the rows whose sku the catalog lists."""
        return encode(self.sku_index, history)

    @property
    def has_fits(self) -> bool:
        """The catalog tags some products as made for others (`for_<SKU>`)."""
        return bool(self._compatible.nnz)

    def fit_statistics(self, visits: comp.Visits, cf_variants: Sequence[tuple[str, float]] = ()) -> None:
        """Fit every component on coded visits; `cf_variants` [(kind, lambda)] are kept for validation."""
        s = self.settings
        n = len(self.products)
        self.purchase_rows = len(visits.item)
        self.profiles = comp.Profiles.build(visits)
        x = visits.matrix()
        self.units_sold = np.bincount(visits.item, visits.qty, minlength=n)
        self.buyers_this_week = np.bincount(visits.item, visits.ts > self.now - WEEK_S, minlength=n)
        self._popularity_cache: dict[tuple[float, bool], np.ndarray] = {}
        self.repeat = comp.repeat_stats(self.profiles, self.item_category, CONSUMABLE_PRIOR * self.consumable)
        self.rebuyable = self.repeat.repurchasable  # learned: what an owner may be offered again
        self.follow, counts = comp.follow_ups(visits, s.seq_lags, NEIGHBOURS)
        self.cf_matrices: dict[tuple[str, float], sparse.csr_matrix] = {}
        wanted = list(cf_variants) or list(dict.fromkeys([(s.cf, s.ease_lambda),
                                                           (self.discovery.cf, self.discovery.ease_lambda)]))
        for kind, lam in wanted:
            if kind == 'ease':
                lam = lam or comp.ease_lambdas(x)[1]
                try:
                    self.cf_matrices[('ease', lam)] = comp.ease(x, lam, NEIGHBOURS)
                    continue
                except ValueError:
                    kind, lam = 'knn', 0.0  # too many products for a dense solve
            self.cf_matrices[(kind, 0.0)] = comp.cosine_knn(x, NEIGHBOURS)
        self.cf_key = next(iter(self.cf_matrices))
        if not cf_variants and self.cf_key != (s.cf, s.ease_lambda):
            self.settings = replace(s, cf=self.cf_key[0], ease_lambda=self.cf_key[1])
        d = self.discovery
        if not cf_variants and (d.cf, d.ease_lambda) not in self.cf_matrices:
            self.discovery = replace(d, cf=self.cf_key[0], ease_lambda=self.cf_key[1])
        # category transitions (from the follow-up counts) and each product's share of its category
        n_cat = len(self.categories)
        coo = counts.tocoo()
        pair = self.item_category[coo.row].astype(np.int64) * n_cat + self.item_category[coo.col]
        cat_counts = np.bincount(pair, coo.data, minlength=n_cat * n_cat).reshape(n_cat, n_cat)
        buyers = self.popularity(INF)
        cat_buyers = np.bincount(self.item_category, buyers + 1.0, minlength=n_cat)  # add-one smoothing
        self.share_in_category = (buyers + 1.0) / cat_buyers[self.item_category]
        self._top_share_in_category = np.zeros(n_cat)
        np.maximum.at(self._top_share_in_category, self.item_category, self.share_in_category)
        cat_share = cat_buyers / cat_buyers.sum() if n_cat else cat_buyers
        self._category_next = (cat_counts + 5.0 * cat_share) / (cat_counts.sum(axis=1, keepdims=True) + 5.0)
        self.week_rank = comp.rank_within(self.item_category, self.buyers_this_week) if n else np.zeros(0)
        self.sales_rank = comp.rank_within(self.item_category, buyers) if n else np.zeros(0)
        self.context_lift = 1.0 + s.promotion_lift * self._on_promotion + s.margin_lift * self._margin

    def popularity(self, half_life_days: float, scaled: bool = False) -> np.ndarray:
        """Recency-weighted distinct buyers per product; scaled: 1 at the best (all 1 without data)."""
        key = (half_life_days, scaled)
        pop = self._popularity_cache.get(key)
        if pop is None:
            pop = comp.popularity(self.profiles, len(self.products), self.now, half_life_days)
            if scaled:
                top = pop.max() if len(pop) else 0.0
                pop = pop / top if top > 0 else np.ones(len(pop))
            self._popularity_cache[key] = pop
        return pop

    # ---------------------------------------------------------------- queries
    @property
    def n_customers(self) -> int:
        return len(self.customer_index)

    def purchases_of(self, customer_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(products, visits with each, last purchase time) of a member; empty if unknown."""
        m = self.customer_index.get(customer_id)
        if m is None:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty
        at = self.profiles.of(m)
        return self.profiles.items[at], self.profiles.visits[at], self.profiles.last[at]

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
        if constraints.exclude_brands:          # "not Huawei", a brand the member refused
            refused = [self._brand_index[b.casefold()] for b in constraints.exclude_brands
                       if b.casefold() in self._brand_index]
            mask &= ~np.isin(self._take(self.item_brand, idx), refused)
        if constraints.exclude_skus:            # products shown already, or turned down
            out = np.array([self.sku_index[s] for s in constraints.exclude_skus
                            if s in self.sku_index], dtype=np.int64)
            mask &= ~np.isin(np.arange(len(self.products)) if idx is None else idx, out)
        return mask

    def admissible(self, constraints: Constraints) -> np.ndarray:
        """Indices of the products that satisfy `constraints` (ignoring what anyone owns)."""
        idx = self._candidates(constraints)
        mask = self._admissible(idx, constraints)
        return np.flatnonzero(mask) if idx is None else idx[mask]

    def _sparse_part(self, matrix: sparse.csr_matrix, items: np.ndarray,
                     weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(products, summed weight) of sum_j weight_j * matrix[j], over the stored entries."""
        columns, values, row = _row_entries(matrix, items)
        if not len(columns):
            return columns, values.astype(np.float64)
        uniq, inverse = np.unique(columns, return_inverse=True)
        return uniq, np.bincount(inverse, values * weight[row])

    def component_scores(self, m: int | None, idx: np.ndarray | None, settings: Settings | None = None,
                         only: frozenset[str] | None = None) -> dict[str, np.ndarray]:
        """Each component's score over `idx` (None: the catalog), scaled to 1 at its catalog-wide best.

        `m` is the member index (None: anonymous); `only` limits the work to some components
        (popularity is always there). Components a member has no data for are absent.
        """
        s = settings or self.settings
        size = len(self.products) if idx is None else len(idx)
        parts = {'pop': self._take(self.popularity(s.popularity_half_life_days, scaled=True), idx)}
        if m is None:
            return parts
        at = self.profiles.of(m)
        items = self.profiles.items[at]
        if not len(items):
            return parts
        age = self.now - self.profiles.last[at]
        profile = comp.decay(age, s.profile_half_life_days)

        def scatter(name: str, columns: np.ndarray, values: np.ndarray) -> None:
            if len(values) and values.max() > 0:
                pos, found = self._positions(idx, columns)
                out = np.zeros(size)
                out[pos] = values[found] / values.max()
                parts[name] = out

        want = lambda name: only is None or name in only  # noqa: E731
        if want('cf'):
            cf = self.cf_matrices.get((s.cf, s.ease_lambda), self.cf_matrices[self.cf_key])
            scatter('cf', *self._sparse_part(cf, items, profile))
        if want('seq'):
            recent = self.profiles.ago[at] < s.seq_lags
            scatter('seq', *self._sparse_part(self.follow, items[recent],
                                              1.0 / (1.0 + self.profiles.ago[at][recent])))
        if want('repeat'):
            rate = self.repeat.rate[items]
            repeat = (rate * np.log2(1.0 + self.profiles.visits[at]) * comp.decay(age, s.repeat_half_life_days)
                      * self.rebuyable[items])
            if s.repeat_due:  # the time between re-buys the data shows: not before it is due
                interval = self.repeat.interval_days[items]
                known = np.isfinite(interval) & (interval > 0)
                repeat = repeat * np.where(known, np.minimum(age / DAY_S / np.where(known, interval, 1.0), 1.0), 1.0)
            scatter('repeat', items, repeat)
        if want('fits'):
            fitting = np.unique(_row_entries(self._compatible, items)[0])
            scatter('fits', fitting, np.ones(len(fitting)))
        if not want('affinity'):
            return parts
        share = profile / profile.sum()
        category_next = share @ self._category_next[self.item_category[items]]
        brand_share = np.bincount(self.item_brand[items], share, minlength=len(self.brands))
        affinity = (category_next[self._take(self.item_category, idx)] * self._take(self.share_in_category, idx)
                    * (1.0 + s.brand_tilt * brand_share[self._take(self.item_brand, idx)]))
        if s.other_fit != 1.0 and len(self._made_for):
            affinity[self._positions(idx, self._made_for)[0]] *= s.other_fit
            fitting = np.unique(_row_entries(self._compatible, items)[0])
            affinity[self._positions(idx, fitting)[0]] /= s.other_fit
        # scaled by its catalog-wide upper bound (the same for any idx, and cheap)
        bound = float((category_next * self._top_share_in_category).max()) * (1.0 + s.brand_tilt * brand_share.max())
        if bound > 0:
            parts['affinity'] = affinity / bound
        return parts

    def owned_mask(self, m: int | None, idx: np.ndarray | None,
                   exclude_owned: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(positions in idx of the member's products that must not come back, all their products).

        Durables (owned products the data does not show people re-buying) never come back;
        `exclude_owned`: nothing the member owns comes back.
        """
        if m is None:
            return self._no_items, self._no_items
        items = self.profiles.items[self.profiles.of(m)]
        pos, found = self._positions(idx, items)
        return (pos if exclude_owned else pos[~self.rebuyable[items[found]]]), items

    def blend(self, parts: dict[str, np.ndarray], settings: Settings | None = None) -> np.ndarray:
        s = settings or self.settings
        if len(parts) == 1:  # anonymous or new: popularity whatever its weight for members
            return parts['pop']
        total = None
        for name, values in parts.items():
            w = s.weight(name)
            if w > 0:
                total = values * w if total is None else total + values * w
        return total if total is not None else np.zeros(len(next(iter(parts.values()))))

    def recommend(self, customer_id: str = '', constraints: Constraints = Constraints(),
                  k: int = 5, exclude_owned: bool = False) -> list[Recommendation]:
        """Top `k` products for the customer ('' or unknown = anonymous) that satisfy `constraints`.

        Owned durables never come back; `exclude_owned`: the discovery list (nothing the member
        owns, ranked by the blend validated on products members had never bought).
        """
        idx = self._candidates(constraints)
        size = len(self.products) if idx is None else len(idx)
        if k <= 0 or size == 0:
            return []
        settings = self.discovery if exclude_owned else self.settings
        mask = self._admissible(idx, constraints)
        m = self.customer_index.get(customer_id)
        parts = self.component_scores(m, idx, settings)
        blocked, items = self.owned_mask(m, idx, exclude_owned)
        mask[blocked] = False
        # popularity always breaks ties, also when validation switched it off
        score = (self.blend(parts, settings) + 1e-6 * parts['pop']) * self._take(self.context_lift, idx)
        valid = np.flatnonzero(mask)
        if len(valid) > k:
            valid = valid[np.argpartition(-score[valid], k - 1)[:k]]
        product_ids = valid if idx is None else idx[valid]
        order = np.lexsort((product_ids, -score[valid]))
        if not len(order):
            return []
        best = score[valid[order[0]]] or 1.0
        weights = dict(settings.weights)
        return [self._explain(int(product_ids[o]), float(score[valid[o]] / best),
                              {name: weights.get(name, 0.0) * float(part[valid[o]]) for name, part in parts.items()},
                              m, items, settings)
                for o in order]

    # ---------------------------------------------------------------- reasons
    def _explain(self, i: int, score: float, parts: dict[str, float], m: int | None,
                 items: np.ndarray, settings: Settings) -> Recommendation:
        product = self.products[i]
        # on a tie the member's own reason (their products) wins over "a best seller"
        component = max(parts, key=lambda c: (round(parts[c], 9), c != 'pop')) \
            if parts and max(parts.values()) > 0 else ''
        if m is not None and i in items:
            component = 'repeat'  # the member's own product again: their buying rhythm says why
        reason_zh, reason_en = self._reason(i, component, m, items, settings)
        if product.promotion:
            promo_zh, promo_en = f'促销：{product.promotion}', f'on promotion: {product.promotion}'
            reason_zh = f'{reason_zh}；{promo_zh}' if reason_zh else promo_zh
            reason_en = f'{reason_en}; {promo_en}' if reason_en else promo_en
        if not reason_zh:
            reason_zh, reason_en = '符合您的要求', 'matches what you asked for'
        return Recommendation(product, round(score, 4), reason_zh, reason_en, component)

    def _reason(self, i: int, component: str, m: int | None, items: np.ndarray,
                settings: Settings) -> tuple[str, str]:
        """The sentence for the component that put product i here."""
        if component == 'repeat' and m is not None:
            at = self.profiles.of(m)
            mine = np.flatnonzero(self.profiles.items[at] == i)
            if len(mine):
                j = at.start + int(mine[0])
                visits = self.profiles.visits[j]
                if visits >= 2:
                    gap = (self.profiles.last[j] - self.profiles.first[j]) / (visits - 1) / DAY_S
                    zh, en = every(gap)
                    return f'您{zh}都买这款', f'you buy this {en}'
                days = max(int((self.now - self.profiles.last[j]) // DAY_S), 0)
                return (f'您{days}天前购买过，可以补货了',
                        f'you bought this {days} day{"" if days == 1 else "s"} ago; time to restock')
        if component == 'fits':
            owner = self._owned_fit(i, items)
            if owner is not None:
                p = self.products[owner]
                return f'适配您的{p.name_zh}', f'fits your {p.name_en}'
        if component in ('cf', 'seq') and len(items):
            matrix = self.follow if component == 'seq' else \
                self.cf_matrices.get((settings.cf, settings.ease_lambda), self.cf_matrices[self.cf_key])
            p = self.products[self._source(i, items, matrix)]
            if component == 'cf':
                return (f'买过您那款{p.name_zh}的顾客也买了这款',
                        f'customers who bought your {p.name_en} also bought this')
            return (f'买了{p.name_zh}的顾客接下来常买这款',
                    f'members often buy this next after the {p.name_en} you bought')
        if component == 'affinity' and len(items):
            same_brand = items[self.item_brand[items] == self.item_brand[i]]
            if len(same_brand):  # their own product of that brand, the same category first
                same_category = self.item_category[same_brand] == self.item_category[i]
                p = self.products[int(same_brand[np.lexsort((self.price[same_brand], same_category))[-1]])]
                return f'因为您购买过{p.brand_zh}{p.category_zh}', f'because you bought {_bought(p)}'
            src = items[np.argmax(self._category_next[self.item_category[items], self.item_category[i]])]
            p, q = self.products[int(src)], self.products[i]
            return (f'买了{p.category_zh}的顾客常接着买{q.category_zh}',
                    f'members who buy {category_en(p.category)} often buy {category_en(q.category)} next')
        if self.buyers_this_week[i] > 0 and self.week_rank[i] < 3:
            return '本周热销', 'popular this week'
        if self.units_sold[i] > 0 and self.sales_rank[i] < 5:
            return '本店热销', 'a best seller in this store'
        return '', ''

    def _owned_fit(self, i: int, items: np.ndarray) -> int | None:
        owners = self._owners_of.indices[self._owners_of.indptr[i]:self._owners_of.indptr[i + 1]]
        owned = np.intersect1d(owners, items)
        return int(owned[0]) if len(owned) else None

    def _source(self, i: int, items: np.ndarray, matrix: sparse.csr_matrix) -> int:
        """The member's product whose row gives product i the most weight."""
        columns, values, row = _row_entries(matrix, items)
        contribution = np.bincount(row[columns == i], values[columns == i], minlength=len(items))
        return int(items[int(np.argmax(contribution))])
