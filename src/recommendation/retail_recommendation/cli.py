"""`retailbot recommend`: recommendations for listed members, and `retailbot recommend eval`.

    retailbot recommend --catalog CSV --history CSV --customers ID[,ID...] --k K
                        [--category C] [--brand B] [--min-price N] [--max-price N] [--exclude-owned] [--json]
    retailbot recommend eval --catalog CSV --history CSV[.gz] --k 10 [--split last|time --cutoff DATE] [--json]

The optional positional `eval` turns the same parser into the evaluation: argparse cannot mix a
command's own options with sub-subparsers, and `recommend` must work without a sub-command.
Exit codes: 0 done, 2 unusable input (missing file, bad header, bad arguments).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

MAX_ISSUES_SHOWN = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'recommend', help='recommend products to members from the catalog and purchase history',
        description='Recommend products to the listed members (or evaluate the recommender with '
                    '`recommend eval`: HR@k, NDCG@k and catalog coverage of the hybrid next to '
                    'popularity by distinct buyers, cosine item-kNN, EASE and ALS on one split, '
                    'then discovery - the next product each member had never bought - of the '
                    'hybrid\'s discovery list next to EASE and popularity with owned products masked, '
                    'the owned durables the robot\'s list shows (must be 0), and the settings '
                    'validation chose).')
    parser.add_argument('action', nargs='?', choices=['eval'],
                        help='eval: offline evaluation instead of recommendations')
    parser.add_argument('--catalog', required=True, metavar='CSV', help='catalog CSV')
    parser.add_argument('--history', required=True, metavar='CSV',
                        help='purchase history CSV (.csv.gz is read too)')
    parser.add_argument('--customers', metavar='ID[,ID...]',
                        help='member ids (an unknown or empty id gets the anonymous suggestions)')
    parser.add_argument('--k', type=int, default=5, metavar='K', help='items per member (default 5; eval: 10)')
    parser.add_argument('--category', default='', help='only this catalog category (e.g. phone)')
    parser.add_argument('--brand', default='', help='only this brand (e.g. Huawei)')
    parser.add_argument('--min-price', type=float, default=0.0, metavar='N', help='lowest price, CNY')
    parser.add_argument('--max-price', type=float, default=0.0, metavar='N',
                        help='highest price, CNY (0: no limit)')
    parser.add_argument('--exclude-owned', action='store_true',
                        help='the discovery list: nothing the member already bought (by default '
                             'only consumables the data shows people re-buy come back)')
    parser.add_argument('--language', choices=['zh', 'en'], default='zh',
                        help='language of the `reason` field (both are always given too)')
    parser.add_argument('--split', choices=['last', 'time'], default='last',
                        help="eval: 'last' holds out each member's latest purchase (default); 'time' "
                             "trains on purchases before --cutoff and asks for each member's first one after")
    parser.add_argument('--cutoff', metavar='DATE', help='eval --split time: ISO date, e.g. 2011-07-01 (UTC)')
    parser.add_argument('--json', action='store_true', help='one JSON line per member (eval: per method)')
    parser.set_defaults(func=run)


def _load(args):
    from retail_common.catalog import CatalogError, load_catalog
    from retail_recommendation.history import HistoryError, load_history
    try:
        catalog = load_catalog(args.catalog)
        history = load_history(args.history, catalog.by_sku)
    except (CatalogError, HistoryError) as exc:
        print(f'retailbot recommend: {exc}', file=sys.stderr)
        return None
    for path, issues in ((args.catalog, catalog.issues), (args.history, history.issues)):
        for issue in issues[:MAX_ISSUES_SHOWN]:
            print(f'{path}: {issue} (skipped)', file=sys.stderr)
        if len(issues) > MAX_ISSUES_SHOWN:
            print(f'{path}: {len(issues) - MAX_ISSUES_SHOWN} more bad rows skipped', file=sys.stderr)
    return catalog, history


def run(args) -> int:
    if args.k <= 0:
        print('retailbot recommend: --k must be at least 1', file=sys.stderr)
        return 2
    if args.action == 'eval':
        return _evaluate(args)
    if args.customers is None:
        print('retailbot recommend: --customers is required (or use `recommend eval`)', file=sys.stderr)
        return 2
    loaded = _load(args)
    if loaded is None:
        return 2
    from retail_common.cli_output import print_json
    from retail_recommendation.recommender import Constraints
    from retail_recommendation.training import train
    catalog, history = loaded
    with _progress() as step:
        model = train(catalog, history, progress=step)
    constraints = Constraints(category=args.category, brand=args.brand, min_price=args.min_price,
                              max_price=args.max_price)
    for customer in [c.strip() for c in args.customers.split(',')]:
        items = model.recommend(customer, constraints, args.k, exclude_owned=args.exclude_owned)
        if args.json:
            print_json({'customer_id': customer, 'items': [
                {'sku': r.sku, 'score': r.score, 'reason': r.reason(args.language),
                 'reason_zh': r.reason_zh, 'reason_en': r.reason_en, 'name_zh': r.product.name_zh,
                 'name_en': r.product.name_en, 'price_cny': r.product.price_cny} for r in items]})
            continue
        known = 'new customer' if customer not in model.customer_index else \
            f'{len(model.purchases_of(customer)[0])} products bought'
        print(f'{customer or "(anonymous)"} ({known})')
        if not items:
            print('  nothing in stock matches')
        for rank, r in enumerate(items, 1):
            print(f'  {rank}. {r.sku:<12} {r.product.name_zh} / {r.product.name_en}  '
                  f'¥{r.product.price_cny:,.0f}  score {r.score:.3f}')
            print(f'     {r.reason_zh} / {r.reason_en}')
    return 0


@contextmanager
def _progress():
    """A progress bar on stderr (when it is a terminal); yields step(what, fraction done)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    console = Console(stderr=True)
    with Progress(TextColumn('{task.description}'), BarColumn(), TimeElapsedColumn(), console=console,
                  transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task('training', total=1.0)
        yield lambda what, done: progress.update(task, description=what, completed=done)


def _split(args, catalog, history):
    """The evaluation split the arguments ask for, or an error line."""
    from retail_recommendation.evaluation import leave_last_out, time_split
    from retail_recommendation.history import parse_ts
    if args.split == 'last':
        if args.cutoff:
            return None, '--cutoff needs --split time'
        return leave_last_out(history, catalog.by_sku), ''
    if not args.cutoff:
        return None, '--split time needs --cutoff DATE'
    try:
        cutoff = parse_ts(args.cutoff)
    except ValueError:
        return None, f'--cutoff {args.cutoff!r} is not an ISO 8601 date'
    split = time_split(history, cutoff, catalog.by_sku)
    if not len(split.train) or not split.held_out:
        return None, f'--cutoff {args.cutoff}: no member bought both before and after it'
    return split, ''


def _results_table(title: str, methods: list, peer, k: int):
    """A rich table of HR@k, NDCG@k, coverage and the hit rate against `peer` (n/a: not measured)."""
    from rich.table import Table
    table = Table(title=title)
    for column in ('method', f'HR@{k}', f'NDCG@{k}', 'coverage', f'HR vs {peer.method}'):
        table.add_column(column, justify='left' if column == 'method' else 'right', no_wrap=column == 'method')
    for m in methods:
        ratio = f'{m.hit_rate / peer.hit_rate:.2f}x' if peer.hit_rate and m.hit_rate == m.hit_rate else '-'
        hr = f'{m.hit_rate:.3f}' if m.hit_rate == m.hit_rate else 'n/a'
        table.add_row(m.method, hr, f'{m.ndcg:.3f}' if m.ndcg == m.ndcg else 'n/a', f'{m.coverage:.1%}', ratio)
    return table


def _evaluate(args) -> int:
    loaded = _load(args)
    if loaded is None:
        return 2
    catalog, history = loaded
    split, problem = _split(args, catalog, history)
    if split is None:
        print(f'retailbot recommend eval: {problem}', file=sys.stderr)
        return 2
    from rich.console import Console
    from retail_common.cli_output import print_json
    from retail_recommendation.evaluation import (BASELINES, DISCOVERY_BASELINES, HYBRID, HYBRID_DISCOVERY,
                                                  best_baseline, evaluate_all)
    with _progress() as step:
        results = evaluate_all(catalog, split, args.k, progress=step)
    hybrid = next(m for m in results if m.method == HYBRID)
    discovery = next(m for m in results if m.method == HYBRID_DISCOVERY)
    if args.json:
        for metrics in results:
            print_json({'question': 'next purchase'} | metrics.as_dict() | {'k': args.k, 'split': split.name})
        return 0
    what = ('each member\'s latest purchase held out' if args.split == 'last'
            else f'trained before {args.cutoff}, first purchase after it')
    out = Console()
    for title, methods, peers in (
            (f'{split.name} ({what}): {len(split.held_out)} members', (*BASELINES, HYBRID), BASELINES),
            (f'discovery: the next product never bought before, {len(split.discovery)} members',
             (*DISCOVERY_BASELINES, HYBRID_DISCOVERY), DISCOVERY_BASELINES)):
        out.print(_results_table(f'{title}; {len(history)} purchases, {len(catalog)} products',
                                 [m for m in results if m.method in methods], best_baseline(results, peers), args.k))
    for m in results:
        if 'note' in m.extra:
            out.print(f'{m.method}: {m.extra["note"]}')
    out.print(f'robot\'s list: {hybrid.extra["owned_durables"]} owned durable(s) and {hybrid.extra["owned_slots"]} '
              f'owned product(s) in {hybrid.extra["slots"]} slots; discovery list: '
              f'{discovery.extra["owned_slots"]} owned product(s)')
    out.print(f'hybrid settings chosen by validation: {hybrid.extra["settings"]}', soft_wrap=True)
    out.print(f'discovery settings chosen by validation: {discovery.extra["settings"]}', soft_wrap=True)
    out.print(f'{hybrid.extra["validation"]}; trained in {hybrid.extra["train_s"]:.1f} s', soft_wrap=True)
    return 0
