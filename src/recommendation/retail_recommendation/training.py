"""Training: `train(catalog, history)` chooses the recommender's settings by validation on the
store's own history and returns the fitted `Recommender` (this module imports the recommender,
never the other way round).

Split (time-based, per member): each member with at least two visits (a visit = their purchases
at one time) gives up their latest visit; the model is fitted on everything else and asked, for a
sample of those members, for its top 10. Two questions are validated on that one fit:
  * the robot's list: recall@10 of the held-out visit's products, with owned durables masked (for
    a one-product visit that is HR@10; for a basket it is the HR@10 of a product drawn from it,
    which is what `recommend eval` measures, with less noise);
  * the discovery list: recall@10 of the held-out products the member had never bought before,
    everything they own masked (members whose held-out visit only repeats are left out).

Search for each question, all on that one fit:
  1. each component's own variants (EASE lambda or kNN, profile, repeat and popularity
     half-lives, brand tilt) are scored alone and the best variant of each is kept;
  2. the blend starts from the best single component and coordinate ascent over the others'
     weights keeps a change only when validation improves, so a component that does not help
     (brands in a store without brands, categories that carry no signal) stays off;
  3. each component on in the blend may swap to another of its variants when the blend improves.
The search works on each member's candidate products (the union of every variant's top 50, among
the products the list may show), so its cost grows with members x variants, not with the catalog;
the sample is smaller for large catalogs (`MAX_SCORED`) to keep training under a minute at
100 000 products.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from retail_common.catalog import Catalog
from retail_recommendation import components as comp
from retail_recommendation.history import History
from retail_recommendation.recommender import (COMPONENTS, INF, Progress, Recommender, Settings,
                                               Validation, encode)

K = 10
MIN_MEMBERS = 30            # fewer validation members than this: the uninformed defaults
MAX_MEMBERS = 3000          # validation sample (fewer for large catalogs: MAX_SCORED)
MAX_SCORED = 250_000_000    # members x products x variants scored during the search
CANDIDATES = 50             # per variant and member
WEIGHT_GRID = (0.0, 0.05, 0.15, 0.4, 1.0, 2.5)
PROFILE_HALF_LIVES = (INF, 90.0, 30.0)
REPEAT_HALF_LIVES = (INF, 90.0, 30.0)
POPULARITY_HALF_LIVES = (INF, 60.0, 30.0, 14.0, 7.0)
BRAND_TILTS = (0.0, 1.0, 4.0)
OTHER_FITS = (1.0, 0.2)


def train(catalog: Catalog, history: History | None = None, *, now: float | None = None,
          progress: Progress | None = None) -> Recommender:
    """The store's model: settings chosen by validation on `history`, then fitted on all of it."""
    started = time.perf_counter()
    history = history if history is not None else History()
    now = now if now is not None else (history.latest_ts if len(history) else time.time())
    settings, discovery, validation = choose_settings(catalog, history, now, progress)
    return Recommender(catalog, history, settings=settings, discovery=discovery, now=now,
                       validation=validation, started=started)


def _variants(model: Recommender) -> list[tuple[str, Settings]]:
    """(component, settings that select one variant of it)."""
    base = Settings()
    out: list[tuple[str, Settings]] = []
    for kind, lam in model.cf_matrices:
        out += [('cf', replace(base, cf=kind, ease_lambda=lam, profile_half_life_days=h))
                for h in PROFILE_HALF_LIVES]
    out.append(('seq', base))
    out += [('repeat', replace(base, repeat_half_life_days=h, repeat_due=due))
            for h in REPEAT_HALF_LIVES for due in (False, True)]
    out += [('pop', replace(base, popularity_half_life_days=h)) for h in POPULARITY_HALF_LIVES]
    if len(model.brands) > 1 or len(model.categories) > 1:
        tilts = BRAND_TILTS if len(model.brands) > 1 else (0.0,)
        fits = OTHER_FITS if model.has_fits else (1.0,)
        out += [('affinity', replace(base, brand_tilt=t, other_fit=f)) for t in tilts for f in fits]
    if model.has_fits:
        out.append(('fits', base))
    return out


def _recall(score: np.ndarray, target: np.ndarray, basket: np.ndarray) -> float:
    """Mean over members (rows) of (held-out products in their top K) / (held-out products)."""
    top = np.argpartition(-score, K - 1, axis=1)[:, :K]
    hits = np.take_along_axis(target * np.isfinite(score), top, axis=1).sum(axis=1)
    return float(np.mean(hits / basket))


@dataclass
class _Question:
    """One list to validate: which candidates it may show, and which of them were bought."""

    rows: np.ndarray      # the sampled members it asks (row numbers)
    allowed: np.ndarray   # (rows, width) the list may show this candidate
    target: np.ndarray    # (rows, width) 1 where the candidate is a held-out product asked for
    basket: np.ndarray    # (rows,) held-out products asked for


@dataclass
class _Choice:
    score: float
    weights: dict[str, float]
    variant: dict[str, int]   # component -> index into the variants
    alone: dict[str, float]


def _search(values: np.ndarray, variants: list[tuple[str, Settings]], q: _Question) -> _Choice:
    """Steps 1-3 of the module docstring for one question."""
    vals = values[:, q.rows]
    pop_index = [i for i, (c, _) in enumerate(variants) if c == 'pop'][0]
    tie = vals[pop_index] * 1e-6

    def recall(vector: np.ndarray) -> float:
        return _recall(np.where(q.allowed, vector + tie, -np.inf), q.target, q.basket)

    best_variant, alone = _alone(vals, variants, q, recall)
    if not alone:
        return _Choice(0.0, dict(Settings().weights), {}, {})
    order = sorted(alone, key=lambda c: -alone[c])

    def blended(w: dict[str, float], variant: dict[str, int]) -> float:
        return recall(sum(w[c] * vals[variant[c]] for c in variant if w[c] > 0))

    weights, current = _blend_weights(order, lambda w: blended(w, best_variant))
    for c in order:  # the best variant alone is not always the best one within the blend
        if weights[c] <= 0:
            continue
        for i, (name, _) in enumerate(variants):
            if name != c or i == best_variant[c] or not (vals[i] * q.allowed).any():
                continue
            trial_variant = best_variant | {c: i}
            r = blended(weights, trial_variant)
            if r > current + 1e-3:
                current, best_variant = r, trial_variant
    return _Choice(current if math.isfinite(current) else 0.0, weights, best_variant, alone)


def _alone(vals: np.ndarray, variants: list[tuple[str, Settings]], q: _Question,
           recall: Callable[[np.ndarray], float]) -> tuple[dict[str, int], dict[str, float]]:
    """Step 1: each component's best variant alone and its recall (components with nothing to say
    on this question are left out)."""
    best_variant: dict[str, int] = {}
    alone: dict[str, float] = {}
    for i, (name, _) in enumerate(variants):
        if not (vals[i] * q.allowed).any():
            continue  # nothing to say on this question (the member's own products, all masked)
        r = recall(vals[i])
        if name not in alone or r > alone[name] + 1e-9:
            alone[name], best_variant[name] = r, i
    return best_variant, alone


def _blend_weights(order: list[str], blended: Callable[[dict[str, float]], float]
                   ) -> tuple[dict[str, float], float]:
    """Step 2: coordinate ascent over WEIGHT_GRID (two rounds), from the best component alone;
    a change is kept when it gains more than 0.001 recall. (weights, their recall)."""
    weights = {c: 0.0 for c in COMPONENTS} | {order[0]: 1.0}
    current = blended(weights)
    for _ in range(2):
        changed = False
        for c in order:
            for w in WEIGHT_GRID:
                if w == weights[c] or (c == order[0] and w == 0.0):
                    continue
                trial = weights | {c: w}
                r = blended(trial)
                if r > current + 1e-3:
                    current, weights, changed = r, trial, True
        if not changed:
            break
    return weights, current


def _settings(choice: _Choice, variants: list[tuple[str, Settings]]) -> Settings:
    chosen = Settings().with_weights(**choice.weights)
    picked = {c: variants[i][1] for c, i in choice.variant.items()}
    if 'cf' in picked:
        chosen = replace(chosen, cf=picked['cf'].cf, ease_lambda=picked['cf'].ease_lambda,
                         profile_half_life_days=picked['cf'].profile_half_life_days)
    if 'repeat' in picked:
        chosen = replace(chosen, repeat_half_life_days=picked['repeat'].repeat_half_life_days,
                         repeat_due=picked['repeat'].repeat_due)
    if 'pop' in picked:
        chosen = replace(chosen, popularity_half_life_days=picked['pop'].popularity_half_life_days)
    if 'affinity' in picked:
        chosen = replace(chosen, brand_tilt=picked['affinity'].brand_tilt, other_fit=picked['affinity'].other_fit)
    return chosen


def _top(vector: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """The CANDIDATES best products with a positive score, leaving out `excluded`."""
    v = vector.copy()
    v[excluded] = 0.0
    top = np.argpartition(-v, CANDIDATES)[:CANDIDATES] if len(v) > CANDIDATES else np.arange(len(v))
    return top[v[top] > 0]


def choose_settings(catalog: Catalog, history: History, now: float, progress: Progress | None = None
                    ) -> tuple[Settings, Settings, Validation]:
    """(robot's list settings, discovery list settings, what validation measured) for `history`."""
    started = time.perf_counter()
    report = lambda what, done: progress and progress(what, done)  # noqa: E731
    n = len(catalog.products)
    item, member, ts, qty, members = encode({p.sku: i for i, p in enumerate(catalog.products)}, history)
    visits = comp.Visits.build(item, member, ts, qty, n, len(members))
    last_visit = np.full(len(members), -1, np.int64)
    np.maximum.at(last_visit, visits.member, visits.visit)
    first_visit = np.full(len(members), np.iinfo(np.int64).max)
    np.minimum.at(first_visit, visits.member, visits.visit)
    eligible = np.flatnonzero((last_visit > first_visit) & (last_visit >= 0))
    if len(eligible) < MIN_MEMBERS:
        note = f'{len(eligible)} members with two visits; at least {MIN_MEMBERS} needed'
        return Settings(), Settings(), Validation(note=note)
    held = visits.visit == last_visit[visits.member]
    held &= np.isin(visits.member, eligible)
    train_rows = ~held
    report('validation: fitting', 0.0)
    x = comp.Visits.build(visits.item[train_rows], visits.member[train_rows], visits.ts[train_rows],
                          visits.qty[train_rows], n, len(members))
    sold = int((np.bincount(x.item, minlength=n) > 0).sum())
    cf_variants = ([('ease', lam) for lam in comp.ease_lambdas(x.matrix())]
                   if sold <= comp.EASE_MAX_ITEMS else []) + [('knn', 0.0)]
    model = Recommender.from_visits(catalog, x, members, settings=Settings(),
                                    now=float(visits.ts[train_rows].max()), cf_variants=cf_variants)
    variants = _variants(model)
    budget = max(MIN_MEMBERS, MAX_SCORED // max(n * len(variants), 1))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(eligible, size=min(len(eligible), MAX_MEMBERS, budget), replace=False))

    held_rows = np.flatnonzero(held)
    held_members = visits.member[held_rows]
    rows = _candidates(model, variants, sample, visits, held_rows, held_members, n, report)
    values, hit, present, durable, owned_c = _padded(rows, len(variants), len(sample))
    # the held-out products each list is asked for (counted over the whole catalog, not the candidates)
    basket = np.zeros(len(sample))
    new_basket = np.zeros(len(sample))
    for s_i, m in enumerate(sample):
        held_items = np.unique(visits.item[held_rows[held_members == m]])
        at = model.profiles.of(int(m))
        basket[s_i] = max(len(held_items), 1)
        new_basket[s_i] = len(np.setdiff1d(held_items, model.profiles.items[at]))
    everyone = np.arange(len(sample))
    robot = _Question(everyone, present & ~durable, hit, basket)
    newcomers = np.flatnonzero(new_basket > 0)
    report('validation: choosing the blends', 0.0)
    chosen = _search(values, variants, robot)
    settings = _settings(chosen, variants)
    discovery, found = settings, None
    if len(newcomers) >= MIN_MEMBERS:
        found = _search(values, variants, _Question(newcomers, (present & ~owned_c)[newcomers],
                                                    (hit * ~owned_c)[newcomers], new_basket[newcomers]))
        discovery = _settings(found, variants)
    report('validation: choosing the blends', 1.0)
    return settings, discovery, Validation(
        members=len(sample), metric=f'recall@{K}', blend=chosen.score, alone=chosen.alone,
        seconds=time.perf_counter() - started,
        discovery_members=len(newcomers) if found else 0, discovery_blend=found.score if found else 0.0,
        discovery_alone=found.alone if found else {})


def _candidates(model: Recommender, variants: list[tuple[str, Settings]], sample: np.ndarray, visits,
                held_rows: np.ndarray, held_members: np.ndarray, n: int, report: Callable[[str, float], object]
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per sampled member: (candidate products, each variant's scores of them, held out?, blocked?,
    owned?). The candidates are the union of each variant's top products among those the robot's
    list may show and among those the discovery list may show."""
    shared = {i: model.component_scores(None, None, settings)['pop']
              for i, (name, settings) in enumerate(variants) if name == 'pop'}
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for s_i, m in enumerate(sample):
        m = int(m)
        scores = [shared[i] if i in shared else
                  model.component_scores(m, None, settings, frozenset((name,))).get(name)
                  for i, (name, settings) in enumerate(variants)]
        blocked, owned = model.owned_mask(m, None)
        candidate = np.zeros(n, dtype=bool)
        for vector in scores:
            if vector is not None:
                candidate[_top(vector, blocked)] = True
                candidate[_top(vector, owned)] = True
        cand = np.flatnonzero(candidate)
        held_items = np.unique(visits.item[held_rows[held_members == m]])
        rows.append((cand, np.stack([v[cand] if v is not None else np.zeros(len(cand)) for v in scores]),
                     np.isin(cand, held_items), np.isin(cand, blocked), np.isin(cand, owned)))
        if s_i % 50 == 49:
            report('validation: scoring members', (s_i + 1) / len(sample))
    return rows


def _padded(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], n_variants: int,
            n_sample: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The candidate rows padded to one width (at least K), so a blend's top K is one argpartition
    per row: (values [variant, member, slot], hit, present, durable, owned)."""
    width = max(max((len(r[0]) for r in rows), default=1), K)
    values = np.zeros((n_variants, n_sample, width), dtype=np.float32)
    hit = np.zeros((n_sample, width), dtype=np.float32)
    present = np.zeros((n_sample, width), dtype=bool)
    durable = np.zeros((n_sample, width), dtype=bool)
    owned_c = np.zeros((n_sample, width), dtype=bool)
    for s_i, (cand, vals, is_hit, is_blocked, is_owned) in enumerate(rows):
        values[:, s_i, :len(cand)] = vals
        hit[s_i, :len(cand)] = is_hit
        present[s_i, :len(cand)] = True
        durable[s_i, :len(cand)] = is_blocked
        owned_c[s_i, :len(cand)] = is_owned
    return values, hit, present, durable, owned_c
