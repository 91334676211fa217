#!/usr/bin/env python3
"""Recommendation quality: HR@10 of the hybrid vs the best of its peers, three stores, one run.

Runs `retailbot recommend eval --json` (the command a technician runs) on:
  (a) the demo store's history (config/stores/demo), leave-last-out;
  (b) a synthetic store built unlike the demo (synthetic.zipf_store: Zipf popularity, hidden
      taste groups independent of categories, untagged staples, no brands), time split 60 days
      before its end;
  (c) real purchases: UCI Online Retail (CC BY 4.0, tests/data/retail), time split at 2011-07-01.
Peers measured in the same run on the same split: popularity by distinct buyers, cosine
item-kNN, EASE (best L2 strength of three on that split) and ALS (`implicit`). Goal: hybrid HR@10
at least 1.1x the best peer on each store.

    .venv/bin/python benches/recommendation_quality.py [--products 2000] [--members 8000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from retail_recommendation.history import History, format_ts, write_history
from retail_recommendation.synthetic import write_catalog, zipf_store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / 'config' / 'stores' / 'demo'
RETAIL = ROOT / 'tests' / 'data' / 'retail'
PEERS = ('popularity (distinct buyers)', 'item-kNN (cosine)', 'EASE', 'ALS (implicit)')
GOAL = 1.1


def evaluate(name: str, catalog: Path, history: Path, *split: str) -> bool:
    retailbot = Path(sys.executable).with_name('retailbot')
    command = [str(retailbot), 'recommend', 'eval', '--catalog', str(catalog), '--history', str(history),
               '--k', '10', *split]
    started = time.perf_counter()
    result = subprocess.run(command + ['--json'], capture_output=True, text=True, timeout=1800)
    if result.returncode:
        print(f'{name}: failed: {result.stderr.strip()}')
        return False
    rows = {r['method']: r for r in map(json.loads, result.stdout.splitlines())}
    hybrid = rows['hybrid']
    print(f'\n{name}: {hybrid["members"]} members asked ({time.perf_counter() - started:.0f} s)')
    print(f'  retailbot recommend eval --catalog {catalog.relative_to(ROOT) if catalog.is_relative_to(ROOT) else catalog.name} '
          f'... {" ".join(split)}')
    print(f'  {"method":<30}{"HR@10":>8}{"NDCG@10":>9}{"coverage":>10}')
    for method in (*PEERS, 'hybrid'):
        m = rows[method]
        print(f'  {method:<30}{m["hr"]:>8.3f}{m["ndcg"]:>9.3f}{m["coverage"]:>10.1%}')
    best = max(PEERS, key=lambda p: rows[p]['hr'] if rows[p]['hr'] == rows[p]['hr'] else -1)
    ratio = hybrid['hr'] / rows[best]['hr'] if rows[best]['hr'] else float('inf')
    ok = ratio >= GOAL
    print(f'  hybrid = {ratio:.2f}x {best} (goal >= {GOAL}x): {"met" if ok else "NOT met"}')
    print(f'  settings: {hybrid["settings"]}')
    print(f'  {hybrid["validation"]}; trained in {hybrid["train_s"]} s')
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--products', type=int, default=2000, help='synthetic store size')
    parser.add_argument('--members', type=int, default=8000, help='synthetic store members')
    args = parser.parse_args()
    results = [evaluate('(a) demo store', DEMO / 'catalog.csv', DEMO / 'history.csv', '--split', 'last')]
    with tempfile.TemporaryDirectory() as tmp:
        catalog, rows = zipf_store(args.products, args.members, seed=5)
        write_catalog(Path(tmp) / 'catalog.csv', catalog)
        write_history(Path(tmp) / 'history.csv', rows)
        cutoff = format_ts(History.from_purchases(rows).latest_ts - 60 * 86400)
        results.append(evaluate('(b) synthetic store: Zipf popularity, taste groups, no brands',
                                Path(tmp) / 'catalog.csv', Path(tmp) / 'history.csv', '--split', 'time',
                                '--cutoff', cutoff))
    cutoff = datetime(2011, 7, 1, tzinfo=timezone.utc).date().isoformat()
    results.append(evaluate('(c) UCI Online Retail (real purchases)', RETAIL / 'catalog.csv',
                            RETAIL / 'history.csv.gz', '--split', 'time', '--cutoff', cutoff))
    print(f'\nall goals met: {all(results)}')


if __name__ == '__main__':
    main()
