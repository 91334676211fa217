"""`retailbot recommend`: recommendations for listed members, and `retailbot recommend eval`.

    retailbot recommend --catalog CSV --history CSV --customers ID[,ID...] --k K
                        [--category C] [--brand B] [--min-price N] [--max-price N] [--json]
    retailbot recommend eval --catalog CSV --history CSV --k 10 [--json]

The optional positional `eval` turns the same parser into the evaluation: argparse cannot mix a
command's own options with sub-subparsers, and `recommend` must work without a sub-command.
Exit codes: 0 done, 2 unusable input (missing file, bad header, bad arguments).
"""
from __future__ import annotations

import sys

MAX_ISSUES_SHOWN = 20


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'recommend', help='recommend products to members from the catalog and purchase history',
        description='Recommend products to the listed members (or evaluate the recommender with '
                    '`recommend eval`: each member\'s last purchase held out; HR@k, NDCG@k and '
                    'catalog coverage next to best sellers and plain ALS).')
    parser.add_argument('action', nargs='?', choices=['eval'],
                        help='eval: offline evaluation instead of recommendations')
    parser.add_argument('--catalog', required=True, metavar='CSV', help='catalog CSV')
    parser.add_argument('--history', required=True, metavar='CSV', help='purchase history CSV')
    parser.add_argument('--customers', metavar='ID[,ID...]',
                        help='member ids (an unknown or empty id gets the anonymous suggestions)')
    parser.add_argument('--k', type=int, default=5, metavar='K', help='items per member (default 5; eval: 10)')
    parser.add_argument('--category', default='', help='only this catalog category (e.g. phone)')
    parser.add_argument('--brand', default='', help='only this brand (e.g. Huawei)')
    parser.add_argument('--min-price', type=float, default=0.0, metavar='N', help='lowest price, CNY')
    parser.add_argument('--max-price', type=float, default=0.0, metavar='N',
                        help='highest price, CNY (0: no limit)')
    parser.add_argument('--language', choices=['zh', 'en'], default='zh',
                        help='language of the `reason` field (both are always given too)')
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
    from retail_recommendation.recommender import Constraints, Recommender
    catalog, history = loaded
    model = Recommender(catalog, history)
    constraints = Constraints(category=args.category, brand=args.brand, min_price=args.min_price,
                              max_price=args.max_price)
    for customer in [c.strip() for c in args.customers.split(',')]:
        items = model.recommend(customer, constraints, args.k)
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


def _evaluate(args) -> int:
    loaded = _load(args)
    if loaded is None:
        return 2
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table
    from retail_common.cli_output import print_json
    from retail_recommendation.evaluation import evaluate_all, leave_last_out
    catalog, history = loaded
    console = Console(stderr=True)
    members = len(leave_last_out(history, catalog.by_sku).held_out)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task('evaluating (hybrid, best sellers, ALS)', total=2 * members)
        results = evaluate_all(catalog, history, args.k, progress=lambda n: progress.advance(task, n))
    if args.json:
        for metrics in results:
            print_json(metrics.as_dict() | {'k': args.k})
        return 0
    table = Table(title=f'Leave-last-out on {members} members, {len(history)} purchases, '
                        f'{len(catalog)} products')
    for column in ('method', f'HR@{args.k}', f'NDCG@{args.k}', 'coverage', f'HR vs best sellers'):
        table.add_column(column, justify='left' if column == 'method' else 'right')
    baseline = next(m for m in results if m.method == 'best sellers').hit_rate
    for m in results:
        ratio = f'{m.hit_rate / baseline:.2f}x' if baseline else '-'
        table.add_row(m.method, f'{m.hit_rate:.3f}', f'{m.ndcg:.3f}', f'{m.coverage:.1%}', ratio)
    Console().print(table)
    return 0
