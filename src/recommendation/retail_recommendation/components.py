"""The statistics the recommender learns from a store's history, one function per component.

All inputs are integer-coded numpy columns (product index, member index, time in seconds) and all
outputs are numpy arrays or scipy CSR matrices indexed by product; nothing here knows about
settings, reasons or requests. Names follow the field:
  * `ease` - EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): the
    item-item weight matrix B = I - P diag(1/diag(P)), P = (X^T X + lambda I)^-1, one dense solve,
    so only for catalogs whose sold products fit (`EASE_MAX_ITEMS`);
  * `cosine_knn` - item-based kNN with cosine similarity on the member x product matrix (Sarwar et
    al. 2001, Deshpande & Karypis 2004), sparse, for catalogs of any size;
  * `follow_ups` - what members buy on their next visits after a product (a first-order
    sequential model over visits, like the item-to-item transitions of FPMC without factors);
  * `repeat_stats` - how often buyers of a product buy it again, on a later visit, and after how
    long (hierarchically smoothed: product -> category -> store), and which products are
    consumables people buy again (everything else a member owns is a durable);
  * `popularity` - distinct buyers, each weighted by the recency of their last purchase.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

DAY_S = 86400.0
# EASE inverts a dense (sold products)^2 matrix: 5 000 products is 100 MB (float32) and about 1-2 s per solve
# on 2 cores; validation solves it a few times, which keeps training under a minute.
EASE_MAX_ITEMS = 5000
VISIT_CAP = 12  # products of one visit used for follow-ups (bounds wholesale baskets' pair count)
# A consumable: the lower one-sided 95 % (Wilson) bound of the share of its buyers who came back
# later that bought it again is at least REBUY_MIN_RATE, judged on the product's own such buyers
# when it has MIN_SUPPORT of them, else on its category's, else on the catalog's prior (a store
# without data).
REBUY_MIN_RATE = 0.05
MIN_SUPPORT = 10
WILSON_Z = 1.645


def wilson_lower(successes: np.ndarray, trials: np.ndarray, z: float = WILSON_Z) -> np.ndarray:
    """Lower bound of the Wilson score interval of successes / trials (0 where there are no trials)."""
    n = np.maximum(np.asarray(trials, dtype=np.float64), 1e-12)
    p = np.asarray(successes, dtype=np.float64) / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.where(np.asarray(trials) > 0, (centre - spread) / (1 + z * z / n), 0.0)


def decay(age_s: np.ndarray | float, half_life_days: float):
    """exp2(-age / half-life); an infinite half-life means no decay (all ones)."""
    if not np.isfinite(half_life_days):
        return np.ones_like(np.asarray(age_s, dtype=np.float64))
    return np.exp2(-np.maximum(age_s, 0.0) / (half_life_days * DAY_S))


def rank_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rank (0 = largest value) of each element among the elements of its group."""
    order = np.lexsort((-values, groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - run_start
    return rank


def top_per_row(matrix: sparse.spmatrix, keep: int, positive_only: bool = True) -> sparse.csr_matrix:
    """Keep the `keep` largest entries of every row (bounds memory and request time)."""
    coo = sparse.coo_matrix(matrix)
    if positive_only:
        good = coo.data > 0
        coo = sparse.coo_matrix((coo.data[good], (coo.row[good], coo.col[good])), shape=coo.shape)
    if coo.nnz == 0:
        return sparse.csr_matrix(coo.shape, dtype=np.float32)
    kept = rank_within(coo.row, coo.data) < keep
    return sparse.csr_matrix((coo.data[kept].astype(np.float32), (coo.row[kept], coo.col[kept])),
                             shape=coo.shape)


@dataclass
class Visits:
    """A history sorted by (member, time, file order) with its visits (same member, same time)."""

    item: np.ndarray       # product index per row
    member: np.ndarray     # member index per row
    ts: np.ndarray         # seconds per row
    qty: np.ndarray        # units per row
    visit: np.ndarray      # global visit number per row (consecutive within a member)
    n_items: int
    n_members: int

    @classmethod
    def build(cls, item: np.ndarray, member: np.ndarray, ts: np.ndarray, qty: np.ndarray,
              n_items: int, n_members: int) -> 'Visits':
        order = np.lexsort((np.arange(len(item)), ts, member))
        item, member, ts, qty = item[order], member[order], ts[order], qty[order]
        new = np.ones(len(item), dtype=bool)
        if len(item):
            new[1:] = (member[1:] != member[:-1]) | (ts[1:] != ts[:-1])
        return cls(item, member, ts, qty, np.cumsum(new) - 1, n_items, n_members)

    def matrix(self) -> sparse.csr_matrix:
        """Binary member x product matrix (1: bought at least once)."""
        x = sparse.csr_matrix((np.ones(len(self.item), np.float32), (self.member, self.item)),
                              shape=(self.n_members, self.n_items))
        x.sum_duplicates()
        x.data[:] = 1.0
        return x


@dataclass
class Profiles:
    """Per (member, product): visits with it, first/last time, visits since; CSR-like by member."""

    ptr: np.ndarray        # member m's entries are [ptr[m], ptr[m+1])
    items: np.ndarray
    visits: np.ndarray     # on how many distinct visits the member bought it
    first: np.ndarray
    last: np.ndarray
    ago: np.ndarray        # member's visits since the last one with it (0: their latest visit)

    @classmethod
    def build(cls, v: Visits) -> 'Profiles':
        n = max(v.n_items, 1)
        key = v.member.astype(np.int64) * n + v.item
        order = np.lexsort((v.ts, key))
        key_sorted = key[order]
        if not len(key_sorted):
            zeros = np.zeros(0)
            return cls(np.zeros(v.n_members + 1, np.int64), zeros.astype(np.int64), zeros, zeros, zeros,
                       zeros.astype(np.int64))
        starts = np.r_[0, np.flatnonzero(np.diff(key_sorted)) + 1]
        ends = np.r_[starts[1:], len(key_sorted)]
        unique_keys = key_sorted[starts]
        visit_sorted = v.visit[order]
        # distinct visits per (member, item): count changes of visit number within each run
        new_visit = np.ones(len(order), dtype=bool)
        new_visit[1:] = (visit_sorted[1:] != visit_sorted[:-1]) | (key_sorted[1:] != key_sorted[:-1])
        visits = np.add.reduceat(new_visit.astype(np.float64), starts)
        ts_sorted = v.ts[order]
        member_last_visit = np.zeros(v.n_members, np.int64)
        np.maximum.at(member_last_visit, v.member, v.visit)
        members = unique_keys // n
        ago = member_last_visit[members] - visit_sorted[ends - 1]
        ptr = np.searchsorted(members, np.arange(v.n_members + 1))
        return cls(ptr, (unique_keys % n).astype(np.int64), visits, ts_sorted[starts], ts_sorted[ends - 1], ago)

    def of(self, m: int) -> slice:
        return slice(int(self.ptr[m]), int(self.ptr[m + 1]))


def ease(x: sparse.csr_matrix, lam: float, keep: int | None) -> sparse.csr_matrix:
    """EASE weights B (product x product, row j = what buying j says about each product).

    `keep`: the largest positive weights kept per row (None: the whole matrix).
    Solved on the products that were sold at least once; raises ValueError beyond EASE_MAX_ITEMS.
    """
    sold = np.flatnonzero(np.asarray(x.sum(axis=0)).ravel() > 0)
    if len(sold) > EASE_MAX_ITEMS:
        raise ValueError(f'EASE needs a dense {len(sold)}^2 solve; at most {EASE_MAX_ITEMS} products')
    n = x.shape[1]
    if not len(sold):
        return sparse.csr_matrix((n, n), dtype=np.float32)
    xs = x[:, sold]
    gram = (xs.T @ xs).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += lam
    p = _spd_inverse(gram)
    b = p / (-np.diag(p))[None, :]
    b[np.diag_indices_from(b)] = 0.0
    del p, gram
    if keep is None or keep >= len(sold):  # everything, negative weights included
        rows, cols = np.nonzero(b != 0)
        vals = b[rows, cols]
    else:  # the `keep` largest positive weights per row, straight from the dense matrix
        cols = np.argpartition(-b, keep - 1, axis=1)[:, :keep]
        vals = np.take_along_axis(b, cols, axis=1).ravel()
        rows = np.repeat(np.arange(len(sold)), keep)
        cols = cols.ravel()
        rows, cols, vals = rows[vals > 0], cols[vals > 0], vals[vals > 0]
    return sparse.csr_matrix((vals.astype(np.float32), (sold[rows], sold[cols])), shape=(n, n))


def _spd_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf/potri), in place.

    About 3-4x faster than a general inverse in float32; X^T X + lambda I (lambda > 0) is well
    conditioned enough for single precision. Falls back to numpy's inverse if potrf fails.
    """
    from scipy.linalg import lapack
    factor, info = lapack.spotrf(a, lower=False, clean=False, overwrite_a=False)
    if info == 0:
        inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
        if info == 0:
            upper = np.triu(inverse)
            return upper + np.triu(upper, 1).T
    return np.linalg.inv(a.astype(np.float64)).astype(np.float32)


def ease_lambdas(x: sparse.csr_matrix) -> list[float]:
    """The L2 strengths validation tries: around the mean number of buyers of a sold product."""
    buyers = np.asarray(x.sum(axis=0)).ravel()
    mean = float(buyers[buyers > 0].mean()) if (buyers > 0).any() else 1.0
    return [round(mean * f, 1) for f in (0.5, 2.0, 8.0, 32.0)]


def cosine_knn(x: sparse.csr_matrix, keep: int, shrink: float = 10.0) -> sparse.csr_matrix:
    """Cosine similarity between products' buyer sets, shrunk for rare pairs, top `keep` per row."""
    co = (x.T @ x).tocsr().astype(np.float32)
    counts = co.diagonal().astype(np.float64)
    co.setdiag(0)
    co.eliminate_zeros()
    coo = co.tocoo()
    norm = np.sqrt(counts[coo.row] * counts[coo.col])
    sim = coo.data / (norm + shrink)
    return top_per_row(sparse.coo_matrix((sim, (coo.row, coo.col)), shape=co.shape), keep)


def follow_ups(v: Visits, lags: int, keep: int) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """(P(product i on one of the next `lags` visits | product j on this one), shrunk; raw counts).

    Pairs are weighted 1/lag; each visit contributes at most VISIT_CAP products.
    """
    n = v.n_items
    first_of_visit = np.r_[0, np.flatnonzero(np.diff(v.visit)) + 1] if len(v.visit) else np.zeros(0, np.int64)
    position = np.arange(len(v.visit)) - np.repeat(first_of_visit, np.diff(np.r_[first_of_visit, len(v.visit)]))
    capped = position < VISIT_CAP
    n_visits = int(v.visit[-1]) + 1 if len(v.visit) else 0
    basket = sparse.csr_matrix((np.ones(int(capped.sum()), np.float32), (v.visit[capped], v.item[capped])),
                               shape=(n_visits, n))
    basket.sum_duplicates()
    basket.data[:] = 1.0
    member_of_visit = np.zeros(n_visits, np.int64)
    member_of_visit[v.visit] = v.member
    counts = sparse.csr_matrix((n, n), dtype=np.float32)
    for lag in range(1, lags + 1):
        if n_visits <= lag:
            break
        same = np.flatnonzero(member_of_visit[:-lag] == member_of_visit[lag:])
        counts = counts + (basket[same].T @ basket[same + lag]) * (1.0 / lag)
    counts = counts.tocsr()
    counts.setdiag(0)  # buying the same product again is the repeat component's business
    counts.eliminate_zeros()
    out = np.asarray(counts.sum(axis=1)).ravel()
    follow = sparse.diags(1.0 / (out + 2.0)) @ counts
    return top_per_row(follow, keep), counts


@dataclass
class RepeatStats:
    rate: np.ndarray       # per product: smoothed share of its buyers who bought it on a later visit
    interval_days: np.ndarray  # per product: median days between a buyer's visits with it (smoothed)
    buyers: np.ndarray     # distinct buyers per product
    repurchasable: np.ndarray  # a consumable people buy again: an owner may be offered it again


def repeat_stats(profiles: Profiles, item_category: np.ndarray, prior_rate: np.ndarray,
                 strength: float = 5.0) -> RepeatStats:
    """How often buyers re-buy each product, and after how long; product -> category -> store.

    `prior_rate` (per product) is what the catalog says when the data says little (e.g. a
    `consumable` tag); it enters with the weight of `strength` buyers, like the category's rate.
    """
    n = len(item_category)
    n_cat = int(item_category.max()) + 1 if n else 0
    buyers = np.bincount(profiles.items, minlength=n).astype(np.float64)
    rebuy = profiles.visits >= 2
    rebuyers = np.bincount(profiles.items, rebuy, minlength=n)
    store_rate = (rebuyers.sum() + 1.0) / (buyers.sum() + 2.0)
    cat_buyers = np.bincount(item_category, buyers, minlength=n_cat)
    cat_rebuyers = np.bincount(item_category, rebuyers, minlength=n_cat)
    cat_rate = (cat_rebuyers + strength * store_rate) / (cat_buyers + strength)
    prior = np.maximum(cat_rate[item_category], prior_rate)
    rate = (rebuyers + strength * prior) / (buyers + strength)
    # a consumable by the data: among the buyers who came back after buying it (only they could buy
    # it again), the share who did; the product's own if enough, else its category's, else the prior
    returned = np.bincount(profiles.items, rebuy | (profiles.ago > 0), minlength=n).astype(np.float64)
    cat_returned = np.bincount(item_category, returned, minlength=n_cat)
    own = returned >= MIN_SUPPORT
    by_category = ~own & (cat_returned[item_category] >= MIN_SUPPORT)
    repurchasable = np.where(own, wilson_lower(rebuyers, returned) >= REBUY_MIN_RATE,
                             np.where(by_category,
                                      wilson_lower(cat_rebuyers, cat_returned)[item_category] >= REBUY_MIN_RATE,
                                      prior_rate >= REBUY_MIN_RATE))
    # mean gap of each re-buyer, then the median per product (category's median as the fallback)
    gap = np.where(rebuy, (profiles.last - profiles.first) / np.maximum(profiles.visits - 1, 1) / DAY_S, np.nan)
    interval = np.full(n, np.nan)
    has = np.flatnonzero(rebuy)
    if len(has):
        order = np.lexsort((gap[has], profiles.items[has]))
        items_sorted, gaps_sorted = profiles.items[has][order], gap[has][order]
        starts = np.r_[0, np.flatnonzero(np.diff(items_sorted)) + 1]
        counts = np.diff(np.r_[starts, len(items_sorted)])
        interval[items_sorted[starts]] = gaps_sorted[starts + counts // 2]
        cat_interval = np.full(n_cat, np.nan)
        for c in np.unique(item_category[items_sorted]):
            cat_interval[c] = np.median(gaps_sorted[item_category[items_sorted] == c])
        interval = np.where(np.isnan(interval), cat_interval[item_category], interval)
    return RepeatStats(rate, interval, buyers, repurchasable.astype(bool))


def popularity(profiles: Profiles, n_items: int, now: float, half_life_days: float) -> np.ndarray:
    """Distinct buyers per product, each weighted by how recently they last bought it."""
    return np.bincount(profiles.items, decay(now - profiles.last, half_life_days), minlength=n_items)
