"""Offline evaluation: the hybrid next to the strongest simple recommenders on one split.

Splits:
  * `leave_last_out` (`--split last`): each member with two or more purchases gives up their
    latest purchase row; everything else trains;
  * `time_split` (`--split time --cutoff DATE`): rows before the cutoff train; each member who
    bought before it is asked for their first purchase row at or after it.
Metrics: HR@k (share of members whose held-out product is in their top k), NDCG@k (the same,
discounted by its rank) and catalog coverage (share of the catalog in any list). Peers, fitted
on the same training rows: popularity by distinct buyers, cosine item-kNN, EASE (its L2 strength
the best of `ease_lambdas` on this very split, an optimistic peer) and ALS from `implicit`; none
of them filters what the member already bought (they score better that way on re-buying
stores). The hybrid trains as in the store: validation on the training rows picks its settings.
Stock is ignored here: it decides what can be sold today, not what a member wanted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from scipy import sparse

from retail_common.catalog import Catalog
from retail_recommendation import components as comp
from retail_recommendation.history import History
from retail_recommendation.recommender import Constraints, Progress, Recommender

EVAL_CONSTRAINTS = Constraints(in_stock_only=False)
BASELINES = ('popularity (distinct buyers)', 'item-kNN (cosine)', 'EASE', 'ALS (implicit)')
HYBRID = 'hybrid'


@dataclass(frozen=True)
class Metrics:
    method: str
    hit_rate: float
    ndcg: float
    coverage: float
    members: int
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {'method': self.method, 'hr': round(self.hit_rate, 4), 'ndcg': round(self.ndcg, 4),
                'coverage': round(self.coverage, 4), 'members': self.members} | self.extra


@dataclass(frozen=True)
class Split:
    train: History
    held_out: dict[str, str]  # customer -> sku of the purchase to guess
    name: str = 'leave-last-out'


def _known_rows(history: History, known: set[str] | None) -> np.ndarray:
    if known is None:
        return np.ones(len(history), dtype=bool)
    return np.fromiter((s in known for s in history.skus), bool, len(history))


def leave_last_out(history: History, known_skus: Iterable[str] | None = None) -> Split:
    """Each member with at least two purchases gives up their latest one (ties: the last row)."""
    known = set(known_skus) if known_skus is not None else None
    ts = history.ts.tolist()
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for r, (customer, sku) in enumerate(zip(history.customer_ids, history.skus)):
        if known is not None and sku not in known:
            continue
        count[customer] = count.get(customer, 0) + 1
        if customer not in last or ts[r] >= ts[last[customer]]:
            last[customer] = r
    held = {c: r for c, r in last.items() if count[c] >= 2}
    keep = _known_rows(history, known)
    keep[list(held.values())] = False
    return Split(train=history.select(keep), held_out={c: history.skus[r] for c, r in held.items()})


def time_split(history: History, cutoff: float, known_skus: Iterable[str] | None = None) -> Split:
    """Rows before `cutoff` (seconds) train; each member who bought before it: first purchase after."""
    known = set(known_skus) if known_skus is not None else None
    usable = _known_rows(history, known)
    before = usable & (history.ts < cutoff)
    trained = {history.customer_ids[r] for r in np.flatnonzero(before)}
    first: dict[str, int] = {}
    for r in np.flatnonzero(usable & (history.ts >= cutoff)).tolist():
        customer = history.customer_ids[r]
        if customer in trained and (customer not in first or history.ts[r] < history.ts[first[customer]]):
            first[customer] = r
    return Split(train=history.select(before), held_out={c: history.skus[r] for c, r in first.items()},
                 name='time')


def _score(method: str, lists: dict[str, list[str]], held_out: dict[str, str], n_products: int,
           **extra) -> Metrics:
    hits, gain, shown = 0, 0.0, set()
    for customer, target in held_out.items():
        ranked = lists.get(customer, [])
        shown.update(ranked)
        if target in ranked:
            hits += 1
            gain += 1.0 / math.log2(ranked.index(target) + 2)
    members = max(len(held_out), 1)
    return Metrics(method, hits / members, gain / members, len(shown) / max(n_products, 1), len(held_out),
                   extra)


class _Coded:
    """The training rows as a member x product matrix, and the evaluated members' row numbers."""

    def __init__(self, catalog: Catalog, split: Split) -> None:
        self.skus = [p.sku for p in catalog.products]
        index = {s: i for i, s in enumerate(self.skus)}
        self.customers = {c: i for i, c in enumerate(dict.fromkeys(split.train.customer_ids))}
        rows = np.fromiter((self.customers[c] for c in split.train.customer_ids), np.int64, len(split.train))
        cols = np.fromiter((index[s] for s in split.train.skus), np.int64, len(split.train))
        self.counts = sparse.csr_matrix((split.train.qty.astype(np.float32), (rows, cols)),
                                        shape=(len(self.customers), len(self.skus)))
        self.binary = self.counts.copy()
        self.binary.data[:] = 1.0
        self.members = [c for c in split.held_out if c in self.customers]

    def top_lists(self, score_rows: Callable[[np.ndarray], np.ndarray], k: int) -> dict[str, list[str]]:
        lists: dict[str, list[str]] = {}
        for start in range(0, len(self.members), 500):
            chunk = self.members[start:start + 500]
            scores = np.asarray(score_rows(np.array([self.customers[c] for c in chunk])))
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if scores.shape[1] > k else \
                np.tile(np.arange(scores.shape[1]), (len(chunk), 1))
            for customer, row, cand in zip(chunk, scores, top):
                ranked = cand[np.lexsort((cand, -row[cand]))]
                lists[customer] = [self.skus[i] for i in ranked]
        return lists


def evaluate_popularity(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    """The same top-k products by distinct buyers in the training rows for everyone."""
    coded = coded or _Coded(catalog, split)
    buyers = np.asarray(coded.binary.sum(axis=0)).ravel()
    top = [coded.skus[i] for i in np.lexsort((np.arange(len(buyers)), -buyers))[:k]]
    return _score(BASELINES[0], {c: top for c in split.held_out}, split.held_out, len(catalog))


def evaluate_knn(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    coded = coded or _Coded(catalog, split)
    sim = comp.cosine_knn(coded.binary, keep=100)
    lists = coded.top_lists(lambda rows: (coded.binary[rows] @ sim).toarray(), k)
    return _score(BASELINES[1], lists, split.held_out, len(catalog))


def evaluate_ease(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    """EASE with the best L2 strength of `components.ease_lambdas` on this split."""
    coded = coded or _Coded(catalog, split)
    best = None
    for lam in comp.ease_lambdas(coded.binary):
        try:
            b = comp.ease(coded.binary, lam, keep=None)
        except ValueError as exc:
            return Metrics(BASELINES[2], float('nan'), float('nan'), 0.0, len(split.held_out), {'note': str(exc)})
        lists = coded.top_lists(lambda rows: (coded.binary[rows] @ b).toarray(), k)
        metrics = _score(BASELINES[2], lists, split.held_out, len(catalog), **{'lambda': lam})
        if best is None or metrics.hit_rate > best.hit_rate:
            best = metrics
    return best


def evaluate_als(catalog: Catalog, split: Split, k: int, factors: int = 64, iterations: int = 15,
                 seed: int = 0, coded: _Coded | None = None) -> Metrics:
    """Plain ALS from `implicit` on member x product purchase counts."""
    from implicit.als import AlternatingLeastSquares  # slow import; only when evaluating
    from threadpoolctl import threadpool_limits

    coded = coded or _Coded(catalog, split)
    with threadpool_limits(1, 'blas'):  # implicit's own threads; a BLAS pool only slows it down
        model = AlternatingLeastSquares(factors=factors, iterations=iterations, random_state=seed,
                                        calculate_training_loss=False)
        model.fit(coded.counts, show_progress=False)
    lists: dict[str, list[str]] = {}
    for start in range(0, len(coded.members), 1000):
        chunk = coded.members[start:start + 1000]
        user_ids = np.array([coded.customers[c] for c in chunk])
        ids, _ = model.recommend(user_ids, coded.counts[user_ids], N=k, filter_already_liked_items=False)
        for customer, row in zip(chunk, ids):
            lists[customer] = [coded.skus[i] for i in row if 0 <= i < len(coded.skus)]
    return _score(BASELINES[3], lists, split.held_out, len(catalog))


def evaluate_hybrid(catalog: Catalog, split: Split, k: int, progress: Progress | None = None) -> Metrics:
    """The store's recommender, trained (validation included) on the training rows only."""
    model = Recommender(catalog, split.train, progress=progress)
    lists = {}
    for i, customer in enumerate(split.held_out):
        lists[customer] = [r.sku for r in model.recommend(customer, EVAL_CONSTRAINTS, k)]
        if progress and i % 200 == 199:
            progress('hybrid: recommending', (i + 1) / len(split.held_out))
    return _score(HYBRID, lists, split.held_out, len(catalog), settings=model.settings.describe(),
                  validation=model.validation.describe(), train_s=round(model.fit_seconds, 2))


def evaluate_all(catalog: Catalog, split: Split, k: int = 10,
                 progress: Progress | None = None) -> list[Metrics]:
    """The four peers, then the hybrid, on one split."""
    coded = _Coded(catalog, split)
    steps = [('popularity', lambda: evaluate_popularity(catalog, split, k, coded)),
             ('item-kNN', lambda: evaluate_knn(catalog, split, k, coded)),
             ('EASE', lambda: evaluate_ease(catalog, split, k, coded)),
             ('ALS', lambda: evaluate_als(catalog, split, k, coded=coded)),
             ('hybrid', lambda: evaluate_hybrid(catalog, split, k, progress))]
    from threadpoolctl import threadpool_limits
    results = []
    with threadpool_limits(1, 'blas'):  # as the hybrid trains: a multi-threaded BLAS spins on busy cores
        for name, step in steps:
            if progress:
                progress(name, 0.0)
            results.append(step())
            if progress:
                progress(name, 1.0)
    return results


def best_baseline(results: list[Metrics]) -> Metrics:
    return max((m for m in results if m.method in BASELINES and not math.isnan(m.hit_rate)),
               key=lambda m: m.hit_rate)
