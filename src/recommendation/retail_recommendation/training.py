"""Choosing the recommender's settings by validation on the store's own history, at training time.

Split (time-based, per member): each member with at least two visits (a visit = their purchases
at one time) gives up their latest visit; the model is fitted on everything else and asked, for a
sample of those members, for its top 10. The score is recall@10 of the held-out visit's products
(for a one-product visit that is HR@10; for a basket it is the HR@10 of a product drawn from it,
which is what `recommend eval` measures, with less noise).

Search, all on that one fit:
  1. each component's own variants (EASE lambda or kNN, profile, repeat and popularity
     half-lives, brand tilt) are scored alone and the best variant of each is kept;
  2. the blend starts from the best single component and coordinate ascent over the others'
     weights keeps a change only when validation improves, so a component that does not help
     (brands in a store without brands, categories that carry no signal) stays off; the ascent
     runs with the "owned products come back only with re-buying evidence" mask and without it,
     and the mask is dropped only when validation shows members' own products coming back (a
     store of re-buyers whose history is too short to show it product by product).
The search works on each member's candidate products (the union of every variant's top 50), so
its cost grows with members x variants, not with the catalog; the sample is smaller for large
catalogs (`MAX_SCORED`) to keep training with validation under a minute at 100 000 products.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from retail_common.catalog import Catalog
from retail_recommendation import components as comp
from retail_recommendation.history import History
from retail_recommendation.recommender import (COMPONENTS, INF, Progress, Recommender, Settings,
                                               Validation)

K = 10
MIN_MEMBERS = 30            # fewer validation members than this: the uninformed defaults
MAX_MEMBERS = 1500          # validation sample
MAX_SCORED = 250_000_000    # members x products x variants scored during the search
CANDIDATES = 50             # per variant and member
WEIGHT_GRID = (0.0, 0.05, 0.15, 0.4, 1.0, 2.5)
REPEAT_HALF_LIVES = (INF, 90.0, 30.0)
POPULARITY_HALF_LIVES = (INF, 60.0, 14.0)
BRAND_TILTS = (0.0, 1.0, 4.0)
OTHER_FITS = (1.0, 0.2)


def _variants(model: Recommender) -> list[tuple[str, Settings]]:
    """(component, settings that select one variant of it)."""
    base = Settings()
    out: list[tuple[str, Settings]] = []
    for kind, lam in model.cf_matrices:
        out.append(('cf', replace(base, cf=kind, ease_lambda=lam)))
    out.append(('seq', base))
    out += [('repeat', replace(base, repeat_half_life_days=h, rebuy_evidence=False)) for h in REPEAT_HALF_LIVES]
    out += [('pop', replace(base, popularity_half_life_days=h)) for h in POPULARITY_HALF_LIVES]
    if len(model.brands) > 1 or len(model.categories) > 1:
        tilts = BRAND_TILTS if len(model.brands) > 1 else (0.0,)
        fits = OTHER_FITS if model._compatible.nnz else (1.0,)
        out += [('affinity', replace(base, brand_tilt=t, other_fit=f)) for t in tilts for f in fits]
    if model._compatible.nnz:
        out.append(('fits', base))
    return out


def _recall(score: np.ndarray, target: np.ndarray, basket: np.ndarray) -> float:
    """Mean over members (rows) of (held-out products in their top K) / (held-out products)."""
    top = np.argpartition(-score, K - 1, axis=1)[:, :K]
    hits = np.take_along_axis(target * np.isfinite(score), top, axis=1).sum(axis=1)
    return float(np.mean(hits / basket))


def choose_settings(catalog: Catalog, history: History, now: float,
                    progress: Progress | None = None) -> tuple[Settings, Validation]:
    """The settings that score best on held-out latest visits of `history`, and the scores."""
    started = time.perf_counter()
    report = lambda what, done: progress and progress(what, done)  # noqa: E731
    model = Recommender(catalog, History(), settings=Settings(), now=now)  # catalog arrays only
    item, member, ts, qty, members = model.encode(history)
    n = len(model.products)
    visits = comp.Visits.build(item, member, ts, qty, n, len(members))
    last_visit = np.full(len(members), -1, np.int64)
    np.maximum.at(last_visit, visits.member, visits.visit)
    first_visit = np.full(len(members), np.iinfo(np.int64).max)
    np.minimum.at(first_visit, visits.member, visits.visit)
    eligible = np.flatnonzero((last_visit > first_visit) & (last_visit >= 0))
    if len(eligible) < MIN_MEMBERS:
        note = f'{len(eligible)} members with two visits; at least {MIN_MEMBERS} needed'
        return Settings(), Validation(note=note)
    held = visits.visit == last_visit[visits.member]
    held &= np.isin(visits.member, eligible)
    train = ~held
    report('validation: fitting', 0.0)
    model.customer_index = members
    model.now = float(visits.ts[train].max())
    model.settings = Settings()
    model._popularity_cache = {}
    x = comp.Visits.build(visits.item[train], visits.member[train], visits.ts[train], visits.qty[train],
                          n, len(members))
    sold = int((np.bincount(x.item, minlength=n) > 0).sum())
    cf_variants = ([('ease', lam) for lam in comp.ease_lambdas(x.matrix())]
                   if sold <= comp.EASE_MAX_ITEMS else []) + [('knn', 0.0)]
    model.fit_statistics(x, cf_variants)
    variants = _variants(model)
    budget = max(MIN_MEMBERS, MAX_SCORED // max(n * len(variants), 1))
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(eligible, size=min(len(eligible), MAX_MEMBERS, budget), replace=False))
    basket = np.zeros(len(sample))

    # candidates: per member, the union of each variant's top products (with a flag on the owned
    # ones the re-buying mask keeps away), padded to one width so a blend's top K is one
    # argpartition per row
    held_rows = np.flatnonzero(held)
    held_members = visits.member[held_rows]
    shared = {i: model.component_scores(None, None, settings)['pop']
              for i, (name, settings) in enumerate(variants) if name == 'pop'}
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for s_i, m in enumerate(sample):
        m = int(m)
        scores = [shared[i] if i in shared else
                  model.component_scores(m, None, settings, frozenset((name,))).get(name)
                  for i, (name, settings) in enumerate(variants)]
        blocked, _ = model.owned_mask(m, None)
        candidate = np.zeros(n, dtype=bool)
        for vector in scores:
            if vector is not None:
                top = np.argpartition(-vector, CANDIDATES)[:CANDIDATES] if n > CANDIDATES else np.arange(n)
                candidate[top[vector[top] > 0]] = True
        cand = np.flatnonzero(candidate)
        held_items = np.unique(visits.item[held_rows[held_members == m]])
        rows.append((cand, np.stack([v[cand] if v is not None else np.zeros(len(cand)) for v in scores]),
                     np.isin(cand, held_items), np.isin(cand, blocked)))
        basket[s_i] = max(len(held_items), 1)
        if s_i % 50 == 49:
            report('validation: scoring members', (s_i + 1) / len(sample))
    width = max(max((len(r[0]) for r in rows), default=1), K)
    values = np.full((len(variants), len(sample), width), 0.0)
    target = np.zeros((len(sample), width))
    present = np.zeros((len(sample), width), dtype=bool)
    allowed = np.zeros((len(sample), width), dtype=bool)  # present and not an owned product kept away
    for s_i, (cand, vals, hit, kept_away) in enumerate(rows):
        values[:, s_i, :len(cand)] = vals
        target[s_i, :len(cand)] = hit
        present[s_i, :len(cand)] = True
        allowed[s_i, :len(cand)] = ~kept_away
    tie = values[[i for i, (c, _) in enumerate(variants) if c == 'pop'][0]] * 1e-6

    evidence = True  # the mask of owned products without re-buying evidence; tried off below

    def recall(vector: np.ndarray) -> float:
        return _recall(np.where(allowed if evidence else present, vector + tie, -np.inf), target, basket)

    # 1. each component's best variant
    best_variant: dict[str, int] = {}
    alone: dict[str, float] = {}
    for i, (name, _) in enumerate(variants):
        r = recall(values[i])
        if name not in alone or r > alone[name] + 1e-9:
            alone[name], best_variant[name] = r, i
    # 2. coordinate ascent on the weights, from the best component alone; with the owned-product
    #    mask and without it (a store where members re-buy what they own)
    order = sorted(alone, key=lambda c: -alone[c])

    def blended(w: dict[str, float]) -> float:
        return recall(sum(w[c] * values[best_variant[c]] for c in best_variant if w[c] > 0))

    def ascend() -> tuple[float, dict[str, float]]:
        weights = {c: 0.0 for c in COMPONENTS} | {order[0]: 1.0}
        current = blended(weights)
        for sweep in range(2):
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
        return current, weights

    report('validation: choosing the blend', 0.0)
    current, weights = ascend()
    evidence = False
    unmasked, unmasked_weights = ascend()
    report('validation: choosing the blend', 1.0)
    if unmasked > current + 1e-3:
        current, weights = unmasked, unmasked_weights
    else:
        evidence = True
    chosen = replace(Settings().with_weights(**weights), rebuy_evidence=evidence)
    picked = {c: variants[i][1] for c, i in best_variant.items()}
    if 'cf' in picked:
        chosen = replace(chosen, cf=picked['cf'].cf, ease_lambda=picked['cf'].ease_lambda,
                         profile_half_life_days=picked['cf'].profile_half_life_days)
    if 'repeat' in picked:
        chosen = replace(chosen, repeat_half_life_days=picked['repeat'].repeat_half_life_days)
    if 'pop' in picked:
        chosen = replace(chosen, popularity_half_life_days=picked['pop'].popularity_half_life_days)
    if 'affinity' in picked:
        chosen = replace(chosen, brand_tilt=picked['affinity'].brand_tilt, other_fit=picked['affinity'].other_fit)
    if not math.isfinite(current):
        current = 0.0
    return chosen, Validation(members=len(sample), metric=f'recall@{K}', blend=current, alone=alone,
                              seconds=time.perf_counter() - started)
