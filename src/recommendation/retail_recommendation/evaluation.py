"""Offline evaluation: hold out each member's last purchase and ask who would have suggested it.

HR@k (share of members whose held-out product is in the top k), NDCG@k (the same, discounted by
its rank) and catalog coverage (share of the catalog that appears in any list) for the hybrid
recommender next to two peers measured on the same split: the store's best sellers and plain ALS
from `implicit` (the usual collaborative-filtering baseline). Stock is ignored here: it decides
what can be sold today, not what a member wanted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from scipy import sparse

from retail_common.catalog import Catalog
from retail_recommendation.history import History
from retail_recommendation.recommender import Constraints, Recommender, Weights

Progress = Callable[[int], None]  # called with the number of members just evaluated
EVAL_CONSTRAINTS = Constraints(in_stock_only=False)


@dataclass(frozen=True)
class Metrics:
    method: str
    hit_rate: float
    ndcg: float
    coverage: float
    members: int

    def as_dict(self) -> dict:
        return {'method': self.method, 'hr': round(self.hit_rate, 4), 'ndcg': round(self.ndcg, 4),
                'coverage': round(self.coverage, 4), 'members': self.members}


@dataclass(frozen=True)
class Split:
    train: History
    held_out: dict[str, str]  # customer -> sku of their last purchase


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
    keep = np.ones(len(history), dtype=bool)
    keep[list(held.values())] = False
    if known is not None:
        keep &= np.fromiter((s in known for s in history.skus), bool, len(history))
    return Split(train=history.select(keep), held_out={c: history.skus[r] for c, r in held.items()})


def _score(method: str, lists: dict[str, list[str]], held_out: dict[str, str], n_products: int) -> Metrics:
    hits, gain, shown = 0, 0.0, set()
    for customer, target in held_out.items():
        ranked = lists.get(customer, [])
        shown.update(ranked)
        if target in ranked:
            hits += 1
            gain += 1.0 / math.log2(ranked.index(target) + 2)
    members = max(len(held_out), 1)
    return Metrics(method, hits / members, gain / members, len(shown) / max(n_products, 1), len(held_out))


def evaluate_hybrid(catalog: Catalog, split: Split, k: int, weights: Weights = Weights(),
                    progress: Progress | None = None) -> Metrics:
    model = Recommender(catalog, split.train, weights=weights)
    lists = {}
    for i, customer in enumerate(split.held_out):
        lists[customer] = [r.sku for r in model.recommend(customer, EVAL_CONSTRAINTS, k)]
        if progress and i % 100 == 99:
            progress(100)
    if progress:
        progress(len(split.held_out) % 100)
    return _score('hybrid', lists, split.held_out, len(catalog))


def evaluate_best_sellers(catalog: Catalog, split: Split, k: int) -> Metrics:
    """The same top-k best sellers (units in the training history) for everyone."""
    units: dict[str, float] = {}
    for sku, qty in zip(split.train.skus, split.train.qty.tolist()):
        units[sku] = units.get(sku, 0) + qty
    top = sorted(units, key=lambda s: (-units[s], s))[:k]
    return _score('best sellers', {c: top for c in split.held_out}, split.held_out, len(catalog))


def evaluate_als(catalog: Catalog, split: Split, k: int, factors: int = 64, iterations: int = 15,
                 seed: int = 0, progress: Progress | None = None) -> Metrics:
    """Plain ALS from `implicit` on member x product purchase counts.

    Already-bought products are not filtered out: members buy consumables again, and with the
    filter ALS scores about half as well here - the stronger variant is the fairer peer.
    """
    from implicit.als import AlternatingLeastSquares  # slow import; only when evaluating
    from threadpoolctl import threadpool_limits

    skus = [p.sku for p in catalog.products]
    sku_index = {s: i for i, s in enumerate(skus)}
    customers = {c: i for i, c in enumerate(dict.fromkeys(split.train.customer_ids))}
    rows = np.fromiter((customers[c] for c in split.train.customer_ids), np.int64, len(split.train))
    cols = np.fromiter((sku_index[s] for s in split.train.skus), np.int64, len(split.train))
    matrix = sparse.csr_matrix((split.train.qty.astype(np.float32), (rows, cols)),
                               shape=(len(customers), len(skus)))
    with threadpool_limits(1, 'blas'):  # implicit's own threads; a BLAS pool only slows it down
        model = AlternatingLeastSquares(factors=factors, iterations=iterations, random_state=seed,
                                        calculate_training_loss=False)
        model.fit(matrix, show_progress=False)
    members = [c for c in split.held_out if c in customers]
    lists: dict[str, list[str]] = {}
    batch = 1000
    for start in range(0, len(members), batch):
        chunk = members[start:start + batch]
        user_ids = np.array([customers[c] for c in chunk])
        ids, _ = model.recommend(user_ids, matrix[user_ids], N=k, filter_already_liked_items=False)
        for customer, row in zip(chunk, ids):
            lists[customer] = [skus[i] for i in row if 0 <= i < len(skus)]
        if progress:
            progress(len(chunk))
    if progress:
        progress(len(split.held_out) - len(members))
    return _score('ALS (implicit)', lists, split.held_out, len(catalog))


def evaluate_all(catalog: Catalog, history: History, k: int = 10,
                 progress: Progress | None = None) -> list[Metrics]:
    """Hybrid, best sellers and plain ALS on one leave-last-out split of `history`."""
    split = leave_last_out(history, catalog.by_sku)
    return [evaluate_hybrid(catalog, split, k, progress=progress),
            evaluate_best_sellers(catalog, split, k),
            evaluate_als(catalog, split, k, progress=progress)]
