"""`retailbot nlu` (understand texts against a catalog) and `retailbot chat` (type as a customer)."""
from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_STORE = Path(__file__).resolve().parents[3] / 'config' / 'stores' / 'demo'


def register(subparsers) -> None:
    nlu = subparsers.add_parser('nlu', help='intent and slots of customer utterances, from a catalog',
                                description='Parse each TEXT against the catalog: language, intent, slots.')
    nlu.add_argument('--catalog', required=True, help='catalog CSV of the store')
    nlu.add_argument('--json', action='store_true', help='one JSON object per line')
    nlu.add_argument('texts', nargs='+', metavar='TEXT', help='utterances to analyse, one per argument')
    nlu.set_defaults(func=_nlu)
    chat = subparsers.add_parser('chat', help='type as a customer and see what the robot answers',
                                 description='Talk to the dialogue manager by typing. Standalone by default '
                                             '(the store directory\'s catalog, zones, tours and appointments; '
                                             'guiding arrives at once, a tour moves one stop per line, a line '
                                             '"---" brings the next customer), or against the running robot '
                                             'with --ros.')
    chat.add_argument('--store', default=str(DEFAULT_STORE), help='store directory (default: the demo store)')
    chat.add_argument('--ros', action='store_true', help="talk to the running robot's /dialogue topics")
    chat.add_argument('--member', default='', metavar='ID:NAME[:vip]',
                      help='pretend to be an identified member, e.g. c042:王丽:vip')
    chat.add_argument('--say', action='append', metavar='TEXT',
                      help='with --ros: say TEXT (repeatable) instead of reading lines typed in, then leave')
    chat.add_argument('--timeout', type=float, default=15.0, metavar='S',
                      help='with --ros: how long to wait for the robot and for each answer (default 15)')
    chat.add_argument('--json', action='store_true',
                      help='one JSON object per customer line: said, reply, lang, intent, slots, products '
                           '(sku, price_cny, zone), guide_to, tour, staff_called')
    chat.set_defaults(func=_chat)


def _load_catalog(path: str):
    from retail_common.catalog import CatalogError, load_catalog
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        print(f'retailbot: {exc}', file=sys.stderr)
        return None
    for issue in catalog.issues:
        print(f'retailbot: catalog {path} {issue} (skipped)', file=sys.stderr)
    return catalog


def _nlu(args) -> int:
    catalog = _load_catalog(args.catalog)
    if catalog is None:
        return 2
    from retail_common.cli_output import print_json
    from .nlu import Nlu
    nlu = Nlu(catalog)
    for text in args.texts:
        result = nlu.parse(text)
        if args.json:
            print_json(result.as_dict())
        else:
            slots = ' '.join(f'{k}={v}' for k, v in result.slots.items()) or '-'
            print(f'{result.intent:<14} {result.lang}  {result.confidence:.2f}  {slots}  | {text}')
    return 0


def _chat(args) -> int:
    if args.ros:
        from .chat_ros import run_ros_chat
        return run_ros_chat(args.member, args.say, args.timeout, json_out=args.json)
    if args.say:
        print('retailbot chat: --say needs --ros (the standalone chat reads what you type)', file=sys.stderr)
        return 2
    from retail_common.store import StoreError, load_store
    store_dir = Path(args.store)
    try:
        store = load_store(store_dir)
    except StoreError as exc:
        print(f'retailbot chat: {exc}', file=sys.stderr)
        return 2
    from .chat import run_standalone_chat
    return run_standalone_chat(store, store_dir, args.member, json_out=args.json)
