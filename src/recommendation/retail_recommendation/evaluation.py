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
stores). The hybrid trains as in the store (`training.train`): validation on the training rows
picks its settings.

Discovery (the same split, the same trained models): each member is asked for the first product
they buy that they had NEVER bought before (time split: their first row at or after the cutoff
whose product is not among their training rows; leave-last-out: the held-out product when it is
new to them). The hybrid answers with its discovery list (`exclude_owned`), next to EASE (best L2
strength on this split) and popularity by distinct buyers, both with the member's products
masked. Reported with it: how many slots of the hybrid's robot list hold an owned durable (a
product the member bought that the model has not learned to be re-bought; must be 0) and how
many hold owned products at all.
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
from retail_recommendation.training import train

EVAL_CONSTRAINTS = Constraints(in_stock_only=False)
BASELINES = ('popularity (distinct buyers)', 'item-kNN (cosine)', 'EASE', 'ALS (implicit)')
HYBRID = 'hybrid'
DISCOVERY_BASELINES = ('popularity, owned masked', 'EASE, owned masked')
HYBRID_DISCOVERY = 'hybrid discovery'


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
    discovery: dict[str, str] = field(default_factory=dict)  # customer -> next product never bought before


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
    kept = history.select(keep)
    owned = _owned(kept)
    held_out = {c: history.skus[r] for c, r in held.items()}
    return Split(train=kept, held_out=held_out,
                 discovery={c: s for c, s in held_out.items() if s not in owned.get(c, ())})


def _owned(history: History) -> dict[str, set[str]]:
    owned: dict[str, set[str]] = {}
    for customer, sku in zip(history.customer_ids, history.skus):
        owned.setdefault(customer, set()).add(sku)
    return owned


def time_split(history: History, cutoff: float, known_skus: Iterable[str] | None = None) -> Split:
    """Rows before `cutoff` (seconds) train; each member who bought before it: first purchase after."""
    known = set(known_skus) if known_skus is not None else None
    usable = _known_rows(history, known)
    before = usable & (history.ts < cutoff)
    trained = {history.customer_ids[r] for r in np.flatnonzero(before)}
    kept = history.select(before)
    owned = _owned(kept)
    first: dict[str, int] = {}
    first_new: dict[str, int] = {}
    for r in np.flatnonzero(usable & (history.ts >= cutoff)).tolist():
        customer = history.customer_ids[r]
        if customer not in trained:
            continue
        if customer not in first or history.ts[r] < history.ts[first[customer]]:
            first[customer] = r
        if history.skus[r] not in owned[customer] and (
                customer not in first_new or history.ts[r] < history.ts[first_new[customer]]):
            first_new[customer] = r
    return Split(train=kept, held_out={c: history.skus[r] for c, r in first.items()}, name='time',
                 discovery={c: history.skus[r] for c, r in first_new.items()})


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
        self._ease: dict[float, sparse.csr_matrix | np.ndarray] = {}
        self.discovery_members = [c for c in split.discovery if c in self.customers]

    def ease(self, lam: float):
        """EASE weights for one L2 strength, solved once for the plain and the masked peer."""
        if lam not in self._ease:
            self._ease = {lam: comp.ease(self.binary, lam, keep=None)}  # one at a time: it is large
        return self._ease[lam]

    def top_lists(self, score_rows: Callable[[np.ndarray], np.ndarray], k: int,
                  exclude_owned: bool = False) -> dict[str, list[str]]:
        """Top k per asked member; exclude_owned: the discovery members, their products masked."""
        lists: dict[str, list[str]] = {}
        members = self.discovery_members if exclude_owned else self.members
        for start in range(0, len(members), 500):
            chunk = members[start:start + 500]
            rows = np.array([self.customers[c] for c in chunk])
            scores = np.array(score_rows(rows), dtype=np.float64)
            if exclude_owned:
                owned = self.binary[rows].tocoo()
                scores[owned.row, owned.col] = -np.inf
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if scores.shape[1] > k else \
                np.tile(np.arange(scores.shape[1]), (len(chunk), 1))
            for customer, row, cand in zip(chunk, scores, top):
                ranked = cand[np.lexsort((cand, -row[cand]))]
                lists[customer] = [self.skus[i] for i in ranked if np.isfinite(row[i])]
        return lists


def evaluate_popularity(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    """The same top-k products by distinct buyers in the training rows for everyone."""
    coded = coded or _Coded(catalog, split)
    buyers = np.asarray(coded.binary.sum(axis=0)).ravel()
    top = [coded.skus[i] for i in np.lexsort((np.arange(len(buyers)), -buyers))[:k]]
    return _score(BASELINES[0], {c: top for c in split.held_out}, split.held_out, len(catalog))


def evaluate_popularity_masked(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    """Discovery: the most bought products (distinct buyers) the member has not bought."""
    coded = coded or _Coded(catalog, split)
    buyers = np.asarray(coded.binary.sum(axis=0)).ravel()
    lists = coded.top_lists(lambda rows: np.tile(buyers, (len(rows), 1)), k, exclude_owned=True)
    return _score(DISCOVERY_BASELINES[0], lists, split.discovery, len(catalog), question='never bought')


def evaluate_ease_masked(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None,
                         lambdas: list[float] | None = None) -> Metrics:
    """Discovery: EASE (best L2 strength of `components.ease_lambdas` on this split), owned products masked."""
    coded = coded or _Coded(catalog, split)
    best = None
    for lam in lambdas or comp.ease_lambdas(coded.binary):
        try:
            b = coded.ease(lam)
        except ValueError as exc:
            return Metrics(DISCOVERY_BASELINES[1], float('nan'), float('nan'), 0.0, len(split.discovery),
                           {'note': str(exc), 'question': 'never bought'})
        lists = coded.top_lists(lambda rows, b=b: (coded.binary[rows] @ b).toarray(), k, exclude_owned=True)
        metrics = _score(DISCOVERY_BASELINES[1], lists, split.discovery, len(catalog),
                         question='never bought', **{'lambda': lam})
        if best is None or metrics.hit_rate > best.hit_rate:
            best = metrics
    return best


def evaluate_knn(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None) -> Metrics:
    coded = coded or _Coded(catalog, split)
    sim = comp.cosine_knn(coded.binary, keep=100)
    lists = coded.top_lists(lambda rows: (coded.binary[rows] @ sim).toarray(), k)
    return _score(BASELINES[1], lists, split.held_out, len(catalog))


def evaluate_ease(catalog: Catalog, split: Split, k: int, coded: _Coded | None = None,
                  lambdas: list[float] | None = None) -> Metrics:
    """EASE with the best L2 strength of `components.ease_lambdas` on this split."""
    coded = coded or _Coded(catalog, split)
    best = None
    for lam in lambdas or comp.ease_lambdas(coded.binary):
        try:
            b = coded.ease(lam)
        except ValueError as exc:
            return Metrics(BASELINES[2], float('nan'), float('nan'), 0.0, len(split.held_out), {'note': str(exc)})
        lists = coded.top_lists(lambda rows, b=b: (coded.binary[rows] @ b).toarray(), k)
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


def evaluate_hybrid(catalog: Catalog, split: Split, k: int, progress: Progress | None = None,
                    model: Recommender | None = None) -> Metrics:
    """The store's recommender, trained (validation included) on the training rows only.

    Also counts the slots of its lists holding an owned product (`owned_slots`) and an owned
    durable (`owned_durables`: an owned product the model has not learned people re-buy).
    """
    model = model or train(catalog, split.train, progress=progress)
    lists = {}
    owned_slots = durable_slots = slots = 0
    for i, customer in enumerate(split.held_out):
        items = model.recommend(customer, EVAL_CONSTRAINTS, k)
        lists[customer] = [r.sku for r in items]
        owned = set(model.purchases_of(customer)[0].tolist())
        for r in items:
            j = model.sku_index[r.sku]
            slots += 1
            owned_slots += j in owned
            durable_slots += j in owned and not model.rebuyable[j]
        if progress and i % 200 == 199:
            progress('hybrid: recommending', (i + 1) / len(split.held_out))
    return _score(HYBRID, lists, split.held_out, len(catalog), settings=model.settings.describe(),
                  validation=model.validation.describe(), train_s=round(model.fit_seconds, 2),
                  slots=slots, owned_slots=owned_slots, owned_durables=durable_slots)


def evaluate_discovery(catalog: Catalog, split: Split, k: int, model: Recommender,
                       progress: Progress | None = None) -> Metrics:
    """The hybrid's discovery list (nothing the member owns) for the next product never bought before."""
    lists = {}
    owned_slots = 0
    for i, customer in enumerate(split.discovery):
        items = model.recommend(customer, EVAL_CONSTRAINTS, k, exclude_owned=True)
        lists[customer] = [r.sku for r in items]
        owned = set(model.purchases_of(customer)[0].tolist())
        owned_slots += sum(model.sku_index[r.sku] in owned for r in items)
        if progress and i % 200 == 199:
            progress('hybrid discovery: recommending', (i + 1) / len(split.discovery))
    return _score(HYBRID_DISCOVERY, lists, split.discovery, len(catalog), question='never bought',
                  settings=model.discovery.describe(), owned_slots=owned_slots)


def evaluate_all(catalog: Catalog, split: Split, k: int = 10,
                 progress: Progress | None = None) -> list[Metrics]:
    """The four peers, then the hybrid, on one split; then discovery: two masked peers and the
    hybrid's discovery list (the same trained model)."""
    coded = _Coded(catalog, split)
    trained: list[Recommender] = []
    ease_masked: list[Metrics] = []

    def ease() -> Metrics:  # both EASE peers, one L2 strength at a time (each solve is solved once)
        plain = masked = None
        for lam in comp.ease_lambdas(coded.binary):
            a = evaluate_ease(catalog, split, k, coded, [lam])
            b = evaluate_ease_masked(catalog, split, k, coded, [lam])
            plain = a if plain is None or a.hit_rate > plain.hit_rate else plain
            masked = b if masked is None or b.hit_rate > masked.hit_rate else masked
        ease_masked.append(masked)
        return plain

    def hybrid() -> Metrics:
        trained.append(train(catalog, split.train, progress=progress))
        return evaluate_hybrid(catalog, split, k, progress, trained[0])

    steps = [('popularity', lambda: evaluate_popularity(catalog, split, k, coded)),
             ('item-kNN', lambda: evaluate_knn(catalog, split, k, coded)),
             ('EASE', ease),
             ('ALS', lambda: evaluate_als(catalog, split, k, coded=coded)),
             ('hybrid', hybrid),
             ('popularity, owned masked', lambda: evaluate_popularity_masked(catalog, split, k, coded)),
             ('EASE, owned masked', lambda: ease_masked[0]),
             ('hybrid discovery', lambda: evaluate_discovery(catalog, split, k, trained[0], progress))]
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


def best_baseline(results: list[Metrics], peers: tuple[str, ...] = BASELINES) -> Metrics:
    return max((m for m in results if m.method in peers and not math.isnan(m.hit_rate)),
               key=lambda m: m.hit_rate)
