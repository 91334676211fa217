#!/usr/bin/env python3
"""Recommendation quality: HR@10 of the hybrid vs the best of its peers, and discovery, three stores.

Runs `retailbot recommend eval --json` (the command a technician runs) on:
  (a) the demo store's history (config/stores/demo), leave-last-out;
  (b) a synthetic store built unlike the demo (synthetic.zipf_store: Zipf popularity, hidden
      taste groups independent of categories, untagged staples, no brands), time split 60 days
      before its end;
  (c) real purchases: UCI Online Retail (CC BY 4.0, tests/data/retail), time split at 2011-07-01.
Peers measured in the same run on the same split: popularity by distinct buyers, cosine
item-kNN, EASE (best L2 strength of four on that split) and ALS (`implicit`). Goal: hybrid HR@10
at least 1.1x the best peer on each store.

Discovery, the same run and split: each member's next product that they had never bought before;
the hybrid's discovery list (`recommend --exclude-owned`) next to EASE and popularity with owned
products masked. Goals: discovery HR@10 at least 1.1x the better of the two on the real purchases
(c), 0 owned durables in the hybrid's lists on every store.

    .venv/bin/python benches/recommendation_quality.py [--stores demo,synthetic,uci] [--products 2000] [--members 8000]
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
DISCOVERY_PEERS = ('popularity, owned masked', 'EASE, owned masked')
GOAL = 1.1


def _best(rows: dict, peers: tuple[str, ...]) -> str:
    return max(peers, key=lambda p: rows[p]['hr'] if rows[p]['hr'] == rows[p]['hr'] else -1)


def evaluate(name: str, catalog: Path, history: Path, *split: str, discovery_goal: bool = False) -> bool:
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
    best = _best(rows, PEERS)
    ratio = hybrid['hr'] / rows[best]['hr'] if rows[best]['hr'] else float('inf')
    ok = ratio >= GOAL
    print(f'  hybrid = {ratio:.2f}x {best} (goal >= {GOAL}x): {"met" if ok else "NOT met"}')
    discovery = rows['hybrid discovery']
    print(f'  discovery, the next product never bought before ({discovery["members"]} members):')
    for method in (*DISCOVERY_PEERS, 'hybrid discovery'):
        m = rows[method]
        print(f'  {method:<30}{m["hr"]:>8.3f}{m["ndcg"]:>9.3f}{m["coverage"]:>10.1%}')
    best = _best(rows, DISCOVERY_PEERS)
    ratio = discovery['hr'] / rows[best]['hr'] if rows[best]['hr'] else float('inf')
    met = ratio >= GOAL
    print(f'  hybrid discovery = {ratio:.2f}x {best}' + (f' (goal >= {GOAL}x): {"met" if met else "NOT met"}'
                                                        if discovery_goal else ''))
    durables = hybrid['owned_durables'] + discovery['owned_slots']
    print(f"  robot's list: {hybrid['owned_durables']} owned durable(s), {hybrid['owned_slots']} of "
          f"{hybrid['slots']} slots owned (learned consumables); discovery list: {discovery['owned_slots']} owned")
    print(f'  settings: {hybrid["settings"]}')
    print(f'  discovery settings: {discovery["settings"]}')
    print(f'  {hybrid["validation"]}; trained in {hybrid["train_s"]} s')
    return ok and durables == 0 and (met or not discovery_goal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--products', type=int, default=2000, help='synthetic store size')
    parser.add_argument('--members', type=int, default=8000, help='synthetic store members')
    parser.add_argument('--stores', default='demo,synthetic,uci', help='which stores (comma-separated)')
    args = parser.parse_args()
    stores = set(args.stores.split(','))
    results = []
    if 'demo' in stores:
        results.append(evaluate('(a) demo store', DEMO / 'catalog.csv', DEMO / 'history.csv', '--split', 'last'))
    if 'synthetic' in stores:
        with tempfile.TemporaryDirectory() as tmp:
            catalog, rows = zipf_store(args.products, args.members, seed=5)
            write_catalog(Path(tmp) / 'catalog.csv', catalog)
            write_history(Path(tmp) / 'history.csv', rows)
            cutoff = format_ts(History.from_purchases(rows).latest_ts - 60 * 86400)
            results.append(evaluate('(b) synthetic store: Zipf popularity, taste groups, no brands',
                                    Path(tmp) / 'catalog.csv', Path(tmp) / 'history.csv', '--split', 'time',
                                    '--cutoff', cutoff))
    if 'uci' in stores:
        cutoff = datetime(2011, 7, 1, tzinfo=timezone.utc).date().isoformat()
        results.append(evaluate('(c) UCI Online Retail (real purchases)', RETAIL / 'catalog.csv',
                                RETAIL / 'history.csv.gz', '--split', 'time', '--cutoff', cutoff,
                                discovery_goal=True))
    print(f'\nall goals met: {all(results)}')


if __name__ == '__main__':
    main()
