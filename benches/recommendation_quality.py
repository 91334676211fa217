#!/usr/bin/env python3
"""Recommendation quality: leave-last-out HR@10 / NDCG@10 / coverage, hybrid vs its peers.

Peers measured in the same run on the same split: the store's best sellers (goal: hybrid HR@10
at least 2x) and plain ALS from `implicit` (goal: hybrid above). Two stores: the committed demo
history (config/stores/demo) and a larger synthetic store with planted structure.

    .venv/bin/python benches/recommendation_quality.py [--products 2000] [--members 20000]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from retail_common.catalog import Catalog, load_catalog
from retail_recommendation.evaluation import evaluate_all
from retail_recommendation.history import History, load_history
from retail_recommendation.synthetic import make_catalog, simulate_purchases

DEMO = Path(__file__).resolve().parent.parent / 'config' / 'stores' / 'demo'


def report(name: str, catalog: Catalog, history: History, k: int) -> bool:
    started = time.perf_counter()
    results = {m.method: m for m in evaluate_all(catalog, history, k)}
    hybrid, best, als = results['hybrid'], results['best sellers'], results['ALS (implicit)']
    print(f'\n{name}: {len(catalog)} products, {len(history)} purchases, {hybrid.members} members '
          f'evaluated ({time.perf_counter() - started:.1f} s)')
    print(f'  {"method":<16}{"HR@" + str(k):>8}{"NDCG@" + str(k):>10}{"coverage":>10}')
    for m in results.values():
        print(f'  {m.method:<16}{m.hit_rate:>8.3f}{m.ndcg:>10.3f}{m.coverage:>10.1%}')
    vs_best = hybrid.hit_rate / best.hit_rate if best.hit_rate else float('inf')
    vs_als = hybrid.hit_rate / als.hit_rate if als.hit_rate else float('inf')
    ok = vs_best >= 2.0 and vs_als > 1.0
    print(f'  hybrid HR@{k} = {vs_best:.2f}x best sellers (goal >= 2x), {vs_als:.2f}x ALS (goal > 1x): '
          f'{"met" if ok else "NOT met"}')
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--products', type=int, default=2000)
    parser.add_argument('--members', type=int, default=20000)
    parser.add_argument('--k', type=int, default=10)
    args = parser.parse_args()

    catalog = load_catalog(DEMO / 'catalog.csv')
    results = [report('demo store', catalog, load_history(DEMO / 'history.csv', catalog.by_sku), args.k)]
    synthetic = make_catalog(args.products, seed=5)
    history = History.from_purchases(simulate_purchases(synthetic, args.members, seed=6))
    results.append(report('synthetic planted store', synthetic, history, args.k))
    print(f'\nall goals met: {all(results)}')


if __name__ == '__main__':
    main()
