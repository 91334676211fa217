#!/usr/bin/env python3
"""Generate config/stores/demo/history.csv from the demo catalog (deterministic: same seed, same file).

A few thousand simulated members over a year (brand loyalty, follow-up accessories, consumables
bought again; see retail_recommendation.synthetic) plus the hand-written demo members below,
whose stories the demo and the tests rely on (documented in config/stores/demo/README.md).

    .venv/bin/python src/recommendation/scripts/make_demo_history.py [--members 3000]
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from retail_common.catalog import load_catalog
from retail_recommendation.history import Purchase, write_history
from retail_recommendation.synthetic import DEFAULT_END, simulate_purchases

DEMO = Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo'
FIRST_SIMULATED = 11  # m-000001 ... m-000010 are reserved for the demo members

# member -> [(date, sku, qty)]
DEMO_MEMBERS: dict[str, list[tuple[str, str, int]]] = {
    # Huawei fan: a Mate 60 Pro 1.5 years ago, then Huawei accessories, watch and tablet.
    'm-000001': [('2025-05-18', 'HW-MATE60P', 1), ('2025-05-18', 'HW-CHG66', 1),
                 ('2025-06-09', 'HW-FBP3', 1), ('2025-10-02', 'HW-WGT4', 1),
                 ('2026-03-14', 'HW-MP115', 1)],
    # Apple fan: iPhone 15, charger and AirPods; the demo asks for a laptop.
    'm-000002': [('2025-12-06', 'AP-IP15', 1), ('2025-12-06', 'AP-USBC20', 1),
                 ('2026-01-20', 'AP-APP2', 1)],
    # HP Smart Tank printer owner who buys the same ink every two months.
    'm-000003': [('2026-05-30', 'HP-ST518', 1), ('2026-05-30', 'HP-GT53', 2),
                 ('2026-08-01', 'HP-GT53', 2), ('2026-10-02', 'HP-GT53', 2)],
    # Nespresso Essenza Mini owner, capsules every month.
    'm-000004': [('2026-07-05', 'NS-ESSMINI', 1), ('2026-07-05', 'NS-ORIG50', 1),
                 ('2026-08-08', 'NS-ORIG50', 1), ('2026-09-10', 'NS-ORIG50', 1),
                 ('2026-10-12', 'NS-ORIG50', 1), ('2026-11-14', 'NS-ORIG50', 1)],
}


def demo_purchases(prices: dict[str, float]) -> list[Purchase]:
    out = []
    for member, rows in DEMO_MEMBERS.items():
        for day, sku, qty in rows:
            when = datetime.fromisoformat(day).replace(hour=11, tzinfo=timezone.utc).timestamp()
            out.append(Purchase(member, sku, when, qty, prices[sku]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--catalog', default=str(DEMO / 'catalog.csv'))
    parser.add_argument('--out', default=str(DEMO / 'history.csv'))
    parser.add_argument('--members', type=int, default=3000)
    parser.add_argument('--seed', type=int, default=2026)
    args = parser.parse_args()
    catalog = load_catalog(args.catalog)
    for issue in catalog.issues:
        print(f'catalog {issue}')
    prices = {p.sku: p.price_cny for p in catalog.products}
    missing = {sku for rows in DEMO_MEMBERS.values() for _, sku, _ in rows} - set(prices)
    if missing:
        raise SystemExit(f'demo members name skus the catalog lacks: {", ".join(sorted(missing))}')
    purchases = simulate_purchases(catalog, args.members, seed=args.seed, end=DEFAULT_END,
                                   first_id=FIRST_SIMULATED, trips_per_customer=2.2)
    purchases = sorted(purchases + demo_purchases(prices), key=lambda p: (p.ts, p.customer_id))
    write_history(args.out, purchases)
    members = len({p.customer_id for p in purchases})
    print(f'wrote {args.out}: {len(purchases)} purchases by {members} members')


if __name__ == '__main__':
    main()
