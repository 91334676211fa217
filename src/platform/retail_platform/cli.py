"""`retailbot platform ...`: run and administer the chain platform (serve, export, tokens).

Every subcommand takes `--database URL` (a postgresql:// URL or an SQLite file; `--db FILE` is its
alias). Exit codes: 0 done; 2 bad input or setup (a bad option, a missing folder or TLS file, a
port outside 1-65535, a database that is not the platform's, unreachable or behind the schema,
a refused request such as a second token for a robot); 128+n stopped by signal n.
Every error is one line on stderr naming the file or option, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

# The sync CLI's one-line errors, time format and token-file reader serve the platform's commands too.
from retail_sync.cli import CommandError, local_time, read_secret

EXIT_INPUT = 2
PLATFORM_TOKEN_ENV = 'RETAILBOT_PLATFORM_TOKEN'
EXIT_CODES = 'exit codes: 0 done, 2 bad input or setup, 128+n stopped by signal n'


def _guarded(command: str, func):
    """Run a subcommand: CommandError becomes one line on stderr and an exit code."""
    def run(args) -> int:
        try:
            return func(args)
        except CommandError as exc:
            print(str(exc), file=sys.stderr)
            return exc.code
    return run


# --- options and databases --------------------------------------------------------------------
DATABASE_ENV = 'RETAILBOT_PLATFORM_DATABASE'
ID_HELP = 'letters, digits, . _ -; at most 64'


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--database', '--db', dest='database', required=True, metavar='URL',
                        help='postgresql://user@host:port/db, or an SQLite file (created in an '
                             'existing folder); --db is an alias')


def _add_ledger(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--forget-ledger', default=None, metavar='FILE',
                        help='the file every forget is also written to, outside the database, so '
                             'a database restored from a backup forgets those members again when '
                             'served (default: $RETAILBOT_FORGET_LEDGER, else FILE.forgotten.jsonl '
                             'beside an SQLite file; PostgreSQL: none, with a warning)')


def _ledger(args, command: str):
    """The forget ledger of --forget-ledger / $RETAILBOT_FORGET_LEDGER / the SQLite default,
    checked writable (one line when not); None, with a warning line, when there is none."""
    from retail_platform.forget_ledger import LEDGER_ENV, ForgetLedger, LedgerError, default_for
    path = args.forget_ledger or os.environ.get(LEDGER_ENV) or default_for(args.database)
    if not path:
        print(f'retailbot platform {command}: warning: no --forget-ledger (or ${LEDGER_ENV}): a '
              'database restored from a backup would bring forgotten members back', file=sys.stderr)
        return None
    ledger = ForgetLedger(path)
    try:
        ledger.check_writable()
    except LedgerError as exc:
        raise CommandError(f'retailbot platform {command}: {exc}') from None
    return ledger


def _reapply_ledger(args, ledger) -> None:
    """serve, before its API processes start: the ledger's forgets the database lacks."""
    from retail_platform.chain import Chain
    from retail_platform.forget_ledger import LedgerError
    storage = _storage(args, 'serve')
    try:
        again, problems = _on_db('serve', storage, lambda: Chain(storage.engine, ledger=ledger).reapply_ledger())
    except LedgerError as exc:
        raise CommandError(f'retailbot platform serve: {exc}') from None
    for line in problems:
        print(f'retailbot platform serve: warning: {line}', file=sys.stderr)
    if again:
        print(f'forget ledger {ledger.path}: {len(again)} member(s) forgotten again (the database '
              'did not list them: restored from a backup?)', flush=True)


def _add_json(parser: argparse.ArgumentParser, keys: str) -> None:
    parser.add_argument('--json', action='store_true',
                        help=f'print the result as one JSON object on stdout: {keys}')


def _done(args, text: str, result: dict) -> int:
    """The result of a command that changed something: one JSON object with --json, else text."""
    print(json.dumps(result, ensure_ascii=False) if args.json else text)
    return 0


def _valid_id(value: str, what: str, command: str) -> str:
    from retail_sync.transport import valid_robot_id
    if not valid_robot_id(value):
        raise CommandError(f'retailbot platform {command}: {what} {value!r} is not valid ({ID_HELP})')
    return value


def _storage(args, command: str, must_exist: bool = True, schema: str = 'check'):
    """The platform's storage at --database (one line on any trouble). `schema`: 'check' refuses
    a database not at this software's schema head (behind: run `migrate`; newer: upgrade the
    software) and never changes it; 'fresh' (a command that writes) also sets up a fresh, empty
    database (no schema, no tables) but never upgrades an existing one; 'upgrade' (`serve`)
    migrates to the head; 'none' (`migrate`, `serve --no-migrate`) only connects."""
    import sqlalchemy as sa

    from retail_platform.database import (DatabaseError, connect_problem, describe, is_postgresql,
                                          revision_state, upgrade)
    from retail_platform.storage import Storage
    target = args.database
    if not is_postgresql(target) and '://' in target:
        from retail_platform.database import not_a_target
        raise CommandError(f'retailbot platform {command}: --database {not_a_target(target)}')
    if not is_postgresql(target):
        path = Path(target)
        if path.is_dir():
            raise CommandError(f'retailbot platform {command}: --database {path} is a folder, not a file')
        if not path.parent.is_dir():
            raise CommandError(f'retailbot platform {command}: folder {path.parent} does not exist')
        if must_exist and not path.exists():
            raise CommandError(f'retailbot platform {command}: no database at {path}')
    try:
        storage = Storage(target, pool_size=2)
    except DatabaseError as exc:
        raise CommandError(f'retailbot platform {command}: {exc}') from None
    try:
        if schema == 'upgrade':
            upgrade(storage.engine)
        elif schema in ('check', 'fresh'):
            state = revision_state(storage.engine)
            if schema == 'fresh' and state.fresh:
                upgrade(storage.engine)
            elif state.problem():
                raise DatabaseError(state.problem())
        elif is_postgresql(target):
            with storage.engine.connect():      # reachable, logged in: or one line now
                pass
    except DatabaseError as exc:
        storage.close()
        raise CommandError(f'retailbot platform {command}: {describe(target)}: {exc}') from None
    except sa.exc.SQLAlchemyError as exc:
        storage.close()
        if is_postgresql(target):
            raise CommandError(f'retailbot platform {command}: '
                               f'{connect_problem(target, exc)}') from None
        raise CommandError(f'retailbot platform {command}: {describe(target)} is not a platform '
                           f'database: {_first_line(exc)}') from None
    return storage


def _first_line(exc: Exception) -> str:
    lines = str(getattr(exc, 'orig', None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _on_db(command: str, storage, work):
    """`work()`, with a database error or a refusal as one line; the storage closed after."""
    import sqlalchemy as sa

    from retail_platform.storage import Refused
    try:
        return work()
    except Refused as exc:
        raise CommandError(f'retailbot platform {command}: {exc}') from None
    except sa.exc.SQLAlchemyError as exc:
        raise CommandError(f'retailbot platform {command}: {_first_line(exc)}') from None
    finally:
        storage.close()


def _unknown_first(base: type[argparse.ArgumentParser]) -> type[argparse.ArgumentParser]:
    """`base` whose error for a missing required option names an unknown option given instead
    first (`serve --databse X` says `unrecognized arguments: --databse X`, not that --database
    is required), as argparse does for a command with nothing required."""
    class Parser(base):  # type: ignore[valid-type,misc]
        def parse_known_args(self, args=None, namespace=None):
            self._given = list(sys.argv[1:] if args is None else args)
            return super().parse_known_args(args, namespace)

        def error(self, message):
            if message.startswith('the following arguments are required'):
                unknown = self._unknown_options(getattr(self, '_given', []))
                if unknown:
                    message = f'unrecognized arguments: {" ".join(unknown)}'
            super().error(message)

        def _unknown_options(self, given: list[str]) -> list[str]:
            known = list(self._option_string_actions)
            unknown = []
            for token in given:
                if token == '--':
                    break
                name = token.split('=', 1)[0]
                if not name.startswith('-') or name == '-' or name in known \
                        or re.fullmatch(r'-\d+(\.\d*)?', name):
                    continue
                if self.allow_abbrev and name.startswith('--') and \
                        sum(option.startswith(name) for option in known) == 1:
                    continue
                unknown.append(token)
            return unknown
    return Parser


def register(subparsers) -> None:
    parser = subparsers.add_parser('platform', help='the chain\'s online platform',
                                   description='Run or administer the platform (SQLite or '
                                               'PostgreSQL): serve, migrate, stores, robots\' '
                                               'and staff credentials, export. ' + EXIT_CODES + '.')
    commands = parser.add_subparsers(dest='platform_command', metavar='SUBCOMMAND', required=True,
                                     parser_class=_unknown_first(type(parser)))
    serve = commands.add_parser(
        'serve', help='run the platform HTTP service',
        description='The admin credential comes from --token-file, '
                    f'${PLATFORM_TOKEN_ENV} or --token (never empty); robots and staff use their '
                    'own tokens (`retailbot platform token issue`). The database is migrated to '
                    'the schema head first (--no-migrate: refuse a database behind it).')
    _add_db(serve)
    serve.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    serve.add_argument('--port', type=int, default=8080, help='TCP port 1-65535 (default 8080)')
    serve.add_argument('--workers', type=int, default=1, help='API processes (default 1)')
    serve.add_argument('--keep-alive-s', type=float, default=75.0, metavar='S',
                       help='how long an idle client connection stays open (default 75 s: longer '
                       'than a load balancer\'s or client pool\'s idle timeout, so the server never '
                       'closes a connection a client is about to reuse)')
    serve.add_argument('--token-file', default='', help='file holding the admin token')
    serve.add_argument('--token', default='', help=f'admin token (else ${PLATFORM_TOKEN_ENV}); '
                       'shows in `ps`, prefer --token-file')
    serve.add_argument('--tls-cert', default='', help='serve https with this certificate (PEM)')
    serve.add_argument('--tls-key', default='', help='private key of --tls-cert (PEM)')
    serve.add_argument('--store-rate', type=float, default=5000.0, metavar='EV_PER_S',
                       help='per-store ingest budget: events per second (default 5000)')
    serve.add_argument('--store-burst', type=float, default=50000.0, metavar='EVENTS',
                       help='per-store ingest budget: burst (default 50000)')
    serve.add_argument('--catch-up-rate', type=float, default=2000.0, metavar='EV_PER_S',
                       help='the platform\'s budget for catching up, every store and API process '
                            'together: events per second of backlog batches (decoded body over '
                            '64 KiB); over it such a batch is answered 429 + Retry-After and live '
                            'uploads go first (default 2000; 0: no limit)')
    serve.add_argument('--catch-up-burst', type=float, default=5000.0, metavar='EVENTS',
                       help='the catch-up budget\'s burst (default 5000)')
    serve.add_argument('--event-contracts', choices=('strict', 'generic'), default='strict',
                       help='strict (default): each event must be a declared type at its version '
                            '(retail_common.events); generic: only the outbox\'s generic rules, '
                            'for tools and tests that send free-form events')
    serve.add_argument('--member-window-days', type=float, default=30.0, metavar='DAYS',
                       help='a robot receives members who visited its store within this many '
                            'days (besides home store and appointments; default 30)')
    serve.add_argument('--funnel-refresh-s', type=float, default=10.0, metavar='SECONDS',
                       help='recompute the funnel\'s dirty store-days in the background every '
                            'SECONDS (default 10), and never sooner than 4x the last run\'s '
                            'duration after it ended; 0: not in this process, run `retailbot '
                            'platform refresh-funnel` from a timer instead')
    serve.add_argument('--change-log-days', type=float, default=30.0, metavar='DAYS',
                       help='keep the downlink change log this many days (a robot further behind '
                            'gets a full snapshot; default 30); pruned every --prune-every '
                            'minutes with flags older than a year')
    serve.add_argument('--prune-every', type=float, default=60.0, metavar='MINUTES',
                       help='minutes between two pruning passes of each API process (default '
                            '60; 0: never)')
    _add_ledger(serve)
    serve.add_argument('--no-migrate', action='store_true',
                       help='refuse a database behind the schema head instead of upgrading it')
    serve.set_defaults(func=_guarded('serve', _serve))

    migrate = commands.add_parser('migrate', help='upgrade the database schema to this version')
    _add_db(migrate)
    _add_json(migrate, '{"database", "before", "after", "changed"} (before: null on a fresh '
                       'database)')
    migrate.set_defaults(func=_guarded('migrate', _migrate))

    export = commands.add_parser('export', help='print a robot\'s stored events as JSON lines')
    _add_db(export)
    export.add_argument('--robot-id', required=True, help='the robot whose events to print')
    export.set_defaults(func=_guarded('export', _export))

    purchases = commands.add_parser(
        'import-purchases', help='import till receipts (CSV or JSON lines), idempotent by '
        'receipt id', description='CSV (.csv): one row per receipt line, header '
        'receipt_id,store_id,time,member_id,code,sku,qty,price_cny. JSON lines (.jsonl, .ndjson, '
        '.json): one receipt a line, {"receipt_id", "store_id", "time", "member_id", "code", '
        '"lines": [{"sku", "qty", "price_cny"}]}. A bad row is reported as FILE:LINE and '
        'skipped; the funnel of the days the receipts touch is recomputed. ' + EXIT_CODES
        + ' (1: some rows were skipped).')
    _add_db(purchases)
    purchases.add_argument('file', help='the receipts file')
    purchases.add_argument('--json', action='store_true', help='print the outcome as JSON')
    purchases.add_argument('--progress', action='store_true',
                           help='show progress (bytes read of the file) on stderr even when it '
                                'is not a terminal (a terminal always gets it), one line each')
    purchases.set_defaults(func=_guarded('import-purchases', _import_purchases))

    funnel_cmd = commands.add_parser('funnel', help='recompute and print the funnel '
                                     '(docs/metrics.md)')
    _add_db(funnel_cmd)
    funnel_cmd.add_argument('--store', default='', help='one store (default: every store)')
    funnel_cmd.add_argument('--from', dest='first', default=None, help='first day YYYY-MM-DD')
    funnel_cmd.add_argument('--to', dest='last', default=None, help='last day YYYY-MM-DD')
    funnel_cmd.add_argument('--json', action='store_true', help='print JSON')
    funnel_cmd.set_defaults(func=_guarded('funnel', _funnel))

    refresh_cmd = commands.add_parser(
        'refresh-funnel', help='recompute the funnel\'s dirty store-days (for a timer)',
        description='Recomputes the store-days whose events or receipts changed since the last '
                    'refresh (and rollups of an older definitions version); the API and the '
                    'pages only read the rollups. With --every, repeats until stopped. '
                    + EXIT_CODES + '.')
    _add_db(refresh_cmd)
    refresh_cmd.add_argument('--every', type=float, default=0.0, metavar='SECONDS',
                             help='repeat every SECONDS (default: once)')
    refresh_cmd.add_argument('--json', action='store_true', help='print each run as JSON')
    refresh_cmd.set_defaults(func=_guarded('refresh-funnel', _refresh_funnel))

    store = commands.add_parser('store', help='add and list stores')
    store_actions = store.add_subparsers(dest='store_command', metavar='ACTION', required=True)
    add = store_actions.add_parser('add', help='add a store')
    _add_db(add)
    add.add_argument('--id', required=True, help=f'store id ({ID_HELP})')
    add.add_argument('--name', required=True, help='the store\'s name')
    add.add_argument('--region', default='', help='its region id (add the region first)')
    _add_json(add, '{"id", "name", "region_id"} (region_id: null without --region)')
    add.set_defaults(func=_guarded('store add', _store_add))
    listing = store_actions.add_parser('list', help='list stores')
    _add_db(listing)
    listing.add_argument('--json', action='store_true', help='print JSON lines')
    listing.set_defaults(func=_guarded('store list', _store_list))

    region = commands.add_parser('region', help='add and list regions')
    region_actions = region.add_subparsers(dest='region_command', metavar='ACTION', required=True)
    radd = region_actions.add_parser('add', help='add a region')
    _add_db(radd)
    radd.add_argument('--id', required=True, help=f'region id ({ID_HELP})')
    radd.add_argument('--name', required=True, help='the region\'s name')
    _add_json(radd, '{"id", "name"}')
    radd.set_defaults(func=_guarded('region add', _region_add))
    rlist = region_actions.add_parser('list', help='list regions and how many stores each has')
    _add_db(rlist)
    rlist.add_argument('--json', action='store_true',
                       help='print JSON lines, one {"id", "name", "stores"} a region')
    rlist.set_defaults(func=_guarded('region list', _region_list))

    robot = commands.add_parser('robot', help='move a robot to another store')
    robot_actions = robot.add_subparsers(dest='robot_command', metavar='ACTION', required=True)
    move = robot_actions.add_parser('move', help='move a robot to another store (its events so '
                                    'far keep the store they happened in)')
    _add_db(move)
    move.add_argument('--robot-id', required=True, help='the robot to move')
    move.add_argument('--store', required=True, help='the store it works in from now on')
    _add_json(move, '{"robot_id", "store_id"}')
    move.set_defaults(func=_guarded('robot move', _robot_move))

    token = commands.add_parser('token', help='issue, revoke and list credentials')
    actions = token.add_subparsers(dest='token_command', metavar='ACTION', required=True)
    issue = actions.add_parser(
        'issue', help='issue a robot token (--robot-id R --store S) or a staff token (--role)',
        description='Prints the token once (only its hash is kept). A robot token lets that robot '
                    'write its own events and read its store\'s data; it is refused while the '
                    'robot has an active token unless --replace. Staff roles: store_manager '
                    '(--store, repeatable), region (--region), analyst, admin.')
    _add_db(issue)
    issue.add_argument('--robot-id', default='', help='the robot the token belongs to')
    issue.add_argument('--store', action='append', default=[],
                       help='the robot\'s store (registers or moves it); a store manager\'s '
                            'store (repeatable)')
    issue.add_argument('--role', default='robot',
                       choices=('robot', 'store_manager', 'region', 'analyst', 'admin'),
                       help='what the token may do (default: robot)')
    issue.add_argument('--region', default='', help='a region credential\'s region')
    issue.add_argument('--name', default='', help='who holds a staff token (for the list)')
    issue.add_argument('--replace', '--rotate', action='store_true',
                       help='revoke the robot\'s active token(s) and issue a new one')
    issue.add_argument('--out', default='', help='write the token to this file (mode 600) '
                       'instead of printing it, e.g. the robot\'s <data_dir>/sync/token')
    issue.set_defaults(func=_guarded('token issue', _token_issue))
    revoke = actions.add_parser('revoke', help='revoke every token of one robot, or one staff '
                                'credential by its fingerprint (at once; its page sessions end)')
    _add_db(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument('--robot-id', help='the robot whose tokens to revoke')
    which.add_argument('--fingerprint', help='the credential\'s fingerprint as `token list` '
                       'shows it (12 hex digits), e.g. a store manager who left')
    _add_json(revoke, '{"robot_id", "revoked"} or {"fingerprint", "revoked"} (revoked: how many '
                      'tokens)')
    revoke.set_defaults(func=_guarded('token revoke', _token_revoke))
    tlist = actions.add_parser('list', help='list credentials (fingerprints only)')
    _add_db(tlist)
    tlist.add_argument('--json', action='store_true', help='print JSON lines')
    tlist.set_defaults(func=_guarded('token list', _token_list))

    forget = commands.add_parser(
        'forget-member', help='forget a member on the platform and on every robot',
        description='Removes the member\'s data on the platform and sends every robot a '
                    'tombstone (robots offline get it when they return); each robot deletes its '
                    'cached data and gallery entry and confirms. Run again (or with --status) '
                    'to see which robots have confirmed. ' + EXIT_CODES + '.')
    _add_db(forget)
    forget.add_argument('--member-id', required=True, help='the pseudonymous member id')
    forget.add_argument('--status', action='store_true',
                        help='only show which robots have confirmed an earlier request')
    forget.add_argument('--json', action='store_true', help='print the status as JSON')
    forget.add_argument('--unknown-ok', action='store_true',
                        help='forget an id the platform has never seen (no member record, '
                             'receipt, profile or event), e.g. one known only to a robot\'s '
                             'gallery: every robot gets its tombstone')
    _add_ledger(forget)
    forget.set_defaults(func=_guarded('forget-member', _forget_member))

    members = commands.add_parser(
        'member-import', help='add or replace members and their purchases from a history CSV',
        description='Reads customer_id,sku,ts,qty,price_cny rows (the robot\'s history.csv '
                    'columns) and stores one member per customer_id with those purchases (the '
                    'last 500), in one transaction: a bad row refuses the whole file, naming its '
                    'line. Members are downlinked only with --consent and only to the robots of '
                    'stores with a reason to know them (home store, appointment, recent visit). '
                    + EXIT_CODES + '.')
    _add_db(members)
    members.add_argument('--history', required=True, metavar='FILE',
                         help='CSV with the header customer_id,sku,ts,qty,price_cny (at most 64 MiB)')
    members.add_argument('--home-store', metavar='STORE', help='the members\' home store')
    members.add_argument('--consent', action='store_true',
                         help='these members agreed to be served with their data (without it they '
                              'are kept but never sent to a robot)')
    _add_json(members, '{"members", "consent", "version"} (version: the downlink\'s)')
    members.set_defaults(func=_guarded('member-import', _member_import))


MAX_IMPORT_BYTES = 64 * 1024 * 1024
HISTORY_HEADER = ['customer_id', 'sku', 'ts', 'qty', 'price_cny']


def read_history(path: str, command: str) -> list[tuple[str, list[dict]]]:
    """(member id, purchases) per customer of a history CSV; CommandError naming the file and
    line of the first bad row."""
    import csv
    import io
    import math
    where = f'retailbot platform {command}: {path}'
    try:
        if Path(path).stat().st_size > MAX_IMPORT_BYTES:
            raise CommandError(f'{where}: larger than {MAX_IMPORT_BYTES} bytes')
        text = Path(path).read_text(encoding='utf-8-sig')
    except OSError as exc:
        raise CommandError(f'{where}: {exc.strerror or exc}') from None
    except UnicodeDecodeError:
        raise CommandError(f'{where}: not UTF-8 text') from None
    reader = csv.reader(io.StringIO(text, newline=''))
    header = next(reader, None)
    if header != HISTORY_HEADER:
        raise CommandError(f'{where}: line 1 must be {",".join(HISTORY_HEADER)}')
    members: dict[str, list[dict]] = {}
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            member, sku, ts, qty, price = row
            if not (0 < len(member) <= 128 and 0 < len(sku) <= 64 and len(ts) <= 64) \
                    or '/' in member or '\x00' in member + sku + ts:
                raise ValueError('customer_id (1-128 characters, no /), sku (1-64) or ts (<= 64)')
            number, amount = int(qty), float(price)
            if not (0 <= number <= 1_000_000 and math.isfinite(amount) and 0 <= amount <= 1e9):
                raise ValueError('qty 0-1000000 and price_cny 0-1e9')
        except ValueError as exc:
            detail = 'must have 5 fields' if 'unpack' in str(exc) else str(exc)
            raise CommandError(f'{where}: line {line}: {detail}') from None
        members.setdefault(member, []).append(
            {'sku': sku, 'ts': ts, 'qty': number, 'price_cny': amount})
    return list(members.items())


def _member_import(args) -> int:
    from retail_platform.chain import Chain, ChainError, NoSuchThing
    command = 'member-import'
    if args.home_store is not None:
        _valid_id(args.home_store, '--home-store', command)
    found = read_history(args.history, command)
    storage = _storage(args, command, schema='fresh')
    chain = Chain(storage.engine)

    def work() -> int:
        try:
            return chain.put_members([(m, args.consent, args.home_store, h) for m, h in found])
        except (ChainError, NoSuchThing) as exc:
            raise CommandError(f'retailbot platform {command}: {exc}') from None
    version = _on_db(command, storage, work)
    return _done(args, f'{len(found)} member(s) stored'
                       f'{" with consent" if args.consent else " (no consent: not sent to robots)"}'
                       f'; downlink version {version}',
                 {'members': len(found), 'consent': args.consent, 'version': version})


def _forget_member(args) -> int:
    from retail_platform.chain import Chain, NoSuchThing, valid_member_id
    from retail_platform.forget_ledger import LedgerError
    command = 'forget-member'
    member_id = args.member_id
    if not valid_member_id(member_id):
        raise CommandError(f'retailbot platform {command}: --member-id must be 1-128 characters, no /, white space or NUL')
    storage = _storage(args, command)
    chain = Chain(storage.engine)

    def work() -> dict:
        try:
            if args.status:
                return chain.forget_status(member_id)
            if not args.unknown_ok and not chain.member_seen(member_id):
                raise CommandError(f'retailbot platform {command}: the platform has never seen '
                                   f'member {member_id!r} (no member record, receipt, profile or '
                                   'event): check the id, or add --unknown-ok to send every robot '
                                   'its tombstone anyway')
            chain.ledger = _ledger(args, command)
            return chain.forget_member(member_id, 'cli')
        except (NoSuchThing, LedgerError) as exc:
            raise CommandError(f'retailbot platform {command}: {exc}') from None
    status = _on_db(command, storage, work)
    if args.json:
        print(json.dumps(status, ensure_ascii=False))
        return 0
    print(f'member {member_id}: forget requested {local_time(status["requested_at"])}; '
          f'{"every robot that may hold it confirmed" if status["complete"] else str(len(status["pending"])) + " robot(s) to confirm"}')
    for robot in status['robots']:
        state = f'confirmed {local_time(robot["confirmed_at"])} ({robot["detail"]})' \
            if robot['confirmed'] else 'not yet confirmed'
        print(f'  {robot["robot_id"]}: {state}{"" if robot["expected"] else " (was not expected to hold it)"}')
    return 0


def _admin_token(args) -> str:
    command = 'retailbot platform serve'
    if args.token_file:
        return read_secret(args.token_file, 'admin token', command)
    token = (args.token or os.environ.get(PLATFORM_TOKEN_ENV, '')).strip()
    if not token:
        raise CommandError(f'{command}: an admin token is required and must not be empty: '
                           f'--token-file FILE, ${PLATFORM_TOKEN_ENV} or --token T')
    return token


def _check_tls(args) -> None:
    import ssl
    if not args.tls_cert and not args.tls_key:
        return
    if not (args.tls_cert and args.tls_key):
        raise CommandError('retailbot platform serve: --tls-cert and --tls-key go together')
    for option, path in (('--tls-cert', args.tls_cert), ('--tls-key', args.tls_key)):
        if not Path(path).is_file():
            raise CommandError(f'retailbot platform serve: {option} {path} does not exist')
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.tls_cert, args.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise CommandError(f'retailbot platform serve: cannot use {args.tls_cert} with '
                           f'{args.tls_key}: {exc}') from None


def app_from_environment():
    """The app of one API process of `serve --workers N` (uvicorn's factory): the settings come
    from the environment `serve` set before starting the workers."""
    from retail_platform.app import create_app
    from retail_platform.forget_ledger import LEDGER_ENV
    from retail_platform.retention import Retention
    from retail_platform.storage import Budget
    budget = Budget(float(os.environ['RETAILBOT_PLATFORM_STORE_RATE']),
                    float(os.environ['RETAILBOT_PLATFORM_STORE_BURST']),
                    float(os.environ.get('RETAILBOT_PLATFORM_CATCH_UP_RATE', Budget.catch_up_rate)),
                    float(os.environ.get('RETAILBOT_PLATFORM_CATCH_UP_BURST',
                                         Budget.catch_up_burst)))
    return create_app(os.environ[DATABASE_ENV], os.environ[PLATFORM_TOKEN_ENV], budget=budget,
                      migrate=False,
                      contracts=os.environ.get('RETAILBOT_PLATFORM_EVENT_CONTRACTS') != 'generic',
                      member_window_s=float(os.environ.get('RETAILBOT_PLATFORM_MEMBER_WINDOW_S',
                                                           30 * 86400.0)),
                      funnel_refresh_s=float(os.environ.get('RETAILBOT_PLATFORM_FUNNEL_REFRESH_S',
                                                            10.0)),
                      forget_ledger=os.environ.get(LEDGER_ENV, ''),
                      retention=Retention(
                          change_log_s=float(os.environ.get('RETAILBOT_PLATFORM_CHANGE_LOG_S',
                                                            30 * 86400.0)),
                          every_s=float(os.environ.get('RETAILBOT_PLATFORM_PRUNE_EVERY_S', 3600.0))))


def _check_serve_numbers(args) -> None:
    """serve's numeric options, each refused with one line naming it."""
    if not 1 <= args.port <= 65535:
        raise CommandError(f'retailbot platform serve: --port {args.port} is not a TCP port '
                           '(1-65535)')
    if not 1 <= args.workers <= 64:
        raise CommandError(f'retailbot platform serve: --workers {args.workers} must be 1-64')
    if not 1 <= args.keep_alive_s <= 3600:      # also refuses nan
        raise CommandError(f'retailbot platform serve: --keep-alive-s {args.keep_alive_s} must be '
                           '1-3600 seconds')
    if not 0 < args.member_window_days <= 3650:
        raise CommandError('retailbot platform serve: --member-window-days must be more than 0 '
                           'and at most 3650')
    if not (0 < args.change_log_days <= 3650 and 0 <= args.prune_every <= 10080):
        raise CommandError('retailbot platform serve: --change-log-days must be more than 0 and at '
                           'most 3650, --prune-every 0-10080 minutes')
    if not (args.store_rate > 0 and args.store_burst >= 1):
        raise CommandError('retailbot platform serve: --store-rate must be > 0 and --store-burst >= 1')
    if not 0 <= args.catch_up_rate <= 1e9:
        raise CommandError(f'retailbot platform serve: --catch-up-rate {args.catch_up_rate:g}: must be 0 '
                           '(no limit) to 1e9 events/s')
    if not 1 <= args.catch_up_burst <= 1e9:
        raise CommandError(f'retailbot platform serve: --catch-up-burst {args.catch_up_burst:g}: must be 1 '
                           'to 1e9 events')
    if not 0 <= args.funnel_refresh_s <= 86400:
        raise CommandError('retailbot platform serve: --funnel-refresh-s must be 0-86400 seconds')


def _serve(args) -> int:
    import socket

    from retail_platform.database import describe, revision_state
    _check_serve_numbers(args)
    token = _admin_token(args)
    _check_tls(args)
    storage = _storage(args, 'serve', must_exist=False,
                       schema='none' if args.no_migrate else 'upgrade')
    try:
        state = revision_state(storage.engine)
    finally:
        storage.close()
    if state.problem():
        behind = state.known and not state.foreign
        raise CommandError(f'retailbot platform serve: {describe(args.database)}: '
                           f'{state.problem()}{" (or serve without --no-migrate)" if behind else ""}')
    from retail_platform.forget_ledger import LEDGER_ENV
    ledger = _ledger(args, 'serve')
    if ledger is not None:
        _reapply_ledger(args, ledger)
    os.environ[LEDGER_ENV] = '' if ledger is None else str(ledger.path.resolve())
    # The listening socket is bound here and handed to uvicorn (as uvicorn.run does with its own):
    # of two `serve` started at once on one port the loser gets this one line, never uvicorn's
    # "[Errno 98]" log and exit 3.
    family = socket.AF_INET6 if ':' in args.host else socket.AF_INET
    try:
        sock = socket.create_server((args.host, args.port), family=family, backlog=2048)
        sock.set_inheritable(True)      # the API processes of --workers N share it
    except OSError as exc:
        raise CommandError(f'retailbot platform serve: cannot listen on {args.host}:{args.port}: '
                           f'{exc.strerror or exc}') from None
    import uvicorn
    from uvicorn.supervisors import Multiprocess
    os.environ[DATABASE_ENV] = args.database
    os.environ[PLATFORM_TOKEN_ENV] = token
    os.environ['RETAILBOT_PLATFORM_STORE_RATE'] = repr(args.store_rate)
    os.environ['RETAILBOT_PLATFORM_STORE_BURST'] = repr(args.store_burst)
    os.environ['RETAILBOT_PLATFORM_CATCH_UP_RATE'] = repr(args.catch_up_rate)
    os.environ['RETAILBOT_PLATFORM_CATCH_UP_BURST'] = repr(args.catch_up_burst)
    os.environ['RETAILBOT_PLATFORM_EVENT_CONTRACTS'] = args.event_contracts
    os.environ['RETAILBOT_PLATFORM_MEMBER_WINDOW_S'] = repr(args.member_window_days * 86400.0)
    os.environ['RETAILBOT_PLATFORM_FUNNEL_REFRESH_S'] = repr(args.funnel_refresh_s)
    os.environ['RETAILBOT_PLATFORM_CHANGE_LOG_S'] = repr(args.change_log_days * 86400.0)
    os.environ['RETAILBOT_PLATFORM_PRUNE_EVERY_S'] = repr(args.prune_every * 60.0)
    scheme = 'https' if args.tls_cert else 'http'
    print(f'platform on {scheme}://{args.host}:{args.port} (database {describe(args.database)}, '
          f'{args.workers} API process{"es" if args.workers > 1 else ""})', flush=True)
    from retail_common.http_limits import http_protocol     # a request's head bounded
    config = uvicorn.Config('retail_platform.cli:app_from_environment', factory=True,
                            host=args.host, port=args.port, workers=args.workers,
                            log_level='warning', http=http_protocol(),
                            timeout_keep_alive=max(1, round(args.keep_alive_s)),
                            ssl_certfile=args.tls_cert or None, ssl_keyfile=args.tls_key or None)
    server = uvicorn.Server(config)
    try:
        if args.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    if args.workers == 1 and not server.started:
        return 3                    # uvicorn's STARTUP_FAILURE: it logged why
    return 0


def _migrate(args) -> int:
    from retail_platform.database import DatabaseError, describe, upgrade
    storage = _storage(args, 'migrate', must_exist=False, schema='none')

    def work():
        try:
            return upgrade(storage.engine)
        except DatabaseError as exc:
            raise CommandError(f'retailbot platform migrate: {describe(args.database)}: {exc}') from None
    before, after = _on_db('migrate', storage, work)
    where = describe(args.database)
    return _done(args, f'{where}: schema {before or "none"} -> {after}' if before != after
                 else f'{where}: schema already at {after}',
                 {'database': where, 'before': before or None, 'after': after,
                  'changed': before != after})


def _export(args) -> int:
    storage = _storage(args, 'export')

    def export() -> None:
        printed = 0
        for event in storage.export(args.robot_id):
            print(json.dumps(event, ensure_ascii=False))
            printed += 1
        if not printed:
            _require_robot(storage, args.robot_id)
    _on_db('export', storage, export)
    return 0


def _require_robot(storage, robot_id: str) -> None:
    """Refused (one line) when the database knows no robot `robot_id` (no token issued, no event
    stored): a typo must not look like a robot with nothing to show."""
    from retail_platform.storage import Refused
    if storage.robot_store(robot_id) is None:
        raise Refused(f'no robot {robot_id!r} (see `retailbot platform token list`)')


def _require_store(storage, store_id: str) -> None:
    from retail_platform.storage import Refused
    if not storage.store_region(store_id)[0]:
        raise Refused(f'no store {store_id!r} (see `retailbot platform store list`)')


def _import_purchases(args) -> int:
    from retail_platform import funnel, purchases
    path = Path(args.file)
    if not path.exists():
        raise CommandError(f'retailbot platform import-purchases: {path} does not exist')
    if not path.is_file():
        raise CommandError(f'retailbot platform import-purchases: {path} is not a file (a folder?)')
    try:
        problem = purchases.not_utf8(path)
    except OSError as exc:
        raise CommandError(f'retailbot platform import-purchases: {path}: '
                           f'{exc.strerror or exc}') from None
    if problem:
        raise CommandError(f'retailbot platform import-purchases: {problem}')
    storage = _storage(args, 'import-purchases', schema='fresh')
    bar = _progress_bar(path, args.progress)

    def work():
        try:
            result = purchases.store_receipts(storage.engine, purchases.read_file(
                path, funnel.CHAIN_ZONE, None if bar is None else lambda done: bar.update(done - bar.n)))
        except UnicodeDecodeError as exc:
            raise CommandError(f'retailbot platform import-purchases: {path}: not UTF-8 '
                               f'(byte {exc.start})') from None
        except OSError as exc:
            raise CommandError(f'retailbot platform import-purchases: {path}: '
                               f'{exc.strerror or exc}') from None
        finally:
            if bar is not None:
                bar.close()
        funnel.refresh(storage.engine)
        return result
    result = _on_db('import-purchases', storage, work)
    for bad in result.bad:          # each problem once, in file order (purchases.in_file_order)
        print(str(bad), file=sys.stderr)
    if result.bad_count > len(result.bad):
        print(f'{path.name}: ... and {result.bad_count - len(result.bad)} more rows skipped (the '
              f'first {len(result.bad)} are listed)', file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        print(f'{path}: {result.stored} receipts stored, {result.duplicate} already there, '
              f'{result.bad_count} rows skipped')
    return 1 if result.bad_count else 0


class _Lines:
    """tqdm's output for a log or a pipe: each refresh one line (no carriage returns)."""

    def write(self, text: str) -> None:
        line = text.replace('\r', '').strip()
        if line:
            sys.stderr.write(line + '\n')

    def flush(self) -> None:
        sys.stderr.flush()


def _progress_bar(path: Path, asked: bool):
    """A tqdm bar of bytes read of `path` on stderr (never stdout, which --json scripts read):
    on a terminal always, elsewhere only when --progress asked for it (one line per refresh)."""
    terminal = sys.stderr.isatty()
    if not (terminal or asked):
        return None
    from tqdm import tqdm
    return tqdm(total=path.stat().st_size, unit='B', unit_scale=True, desc=path.name,
                file=sys.stderr if terminal else _Lines(), mininterval=0.5 if terminal else 5.0,
                dynamic_ncols=terminal, ncols=None if terminal else 100)


def _funnel(args) -> int:
    from retail_platform import funnel
    try:
        first, last = funnel.check_range(args.first, args.last, names=('--from', '--to'))
    except ValueError as exc:
        raise CommandError(f'retailbot platform funnel: {exc}') from None
    storage = _storage(args, 'funnel')

    def work():
        if args.store:
            _require_store(storage, args.store)
        funnel.refresh(storage.engine)
        return funnel.read(storage.engine, [args.store] if args.store else None, first, last)
    rows = _on_db('funnel', storage, work)
    if args.json:
        print(json.dumps({'from': first, 'to': last, 'days': rows, 'total': funnel.total(rows)},
                         ensure_ascii=False))
        return 0
    for row in rows:
        rate = row['conversion']
        print(f'{row["store_id"]}  {row["day"]}  appeared {row["appeared"]}  engaged '
              f'{row["engaged"]}  need {row["need_captured"]}  recommended {row["recommended"]}  '
              f'guided {row["guided"]}  purchased {row["purchased"]}  conversion '
              f'{"-" if rate is None else f"{rate:.1%}"}')
    return 0


def _refresh_funnel(args) -> int:
    from retail_platform import funnel
    if args.every < 0 or args.every > 86400:
        raise CommandError('retailbot platform refresh-funnel: --every must be 0-86400 seconds')
    storage = _storage(args, 'refresh-funnel')
    while True:
        started = time.monotonic()
        done = _on_db('refresh-funnel', storage, lambda: funnel.refresh_once(storage.engine))
        took = time.monotonic() - started
        if args.json:
            print(json.dumps({'recomputed': done, 'skipped': done is None,
                              'seconds': round(took, 3)}), flush=True)
        elif done is None:
            print('another process is refreshing the funnel; skipped', flush=True)
        else:
            print(f'{done} store-days recomputed in {took:.2f} s', flush=True)
        if args.every <= 0:
            return 0
        time.sleep(max(0.0, args.every - took))


def _store_add(args) -> int:
    _valid_id(args.id, 'store id', 'store add')
    if args.region:
        _valid_id(args.region, 'region id', 'store add')
    if not args.name.strip() or len(args.name) > 200:
        raise CommandError('retailbot platform store add: --name must be 1-200 characters')
    storage = _storage(args, 'store add', must_exist=False, schema='fresh')
    _on_db('store add', storage, lambda: storage.add_store(args.id, args.name, args.region or None))
    return _done(args, f'store {args.id} added',
                 {'id': args.id, 'name': args.name, 'region_id': args.region or None})


def _store_list(args) -> int:
    storage = _storage(args, 'store list')
    for store in _on_db('store list', storage, storage.stores):
        print(json.dumps(store, ensure_ascii=False) if args.json else
              f'{store["id"]}  {store["name"]}  region {store["region_id"] or "-"}')
    return 0


def _region_add(args) -> int:
    _valid_id(args.id, 'region id', 'region add')
    if not args.name.strip() or len(args.name) > 200:
        raise CommandError('retailbot platform region add: --name must be 1-200 characters')
    storage = _storage(args, 'region add', must_exist=False, schema='fresh')
    _on_db('region add', storage, lambda: storage.add_region(args.id, args.name))
    return _done(args, f'region {args.id} added', {'id': args.id, 'name': args.name})


def _region_list(args) -> int:
    storage = _storage(args, 'region list')
    for region in _on_db('region list', storage, storage.regions):
        print(json.dumps(region, ensure_ascii=False) if args.json else
              f'{region["id"]}  {region["name"]}  {region["stores"]} '
              f'store{"" if region["stores"] == 1 else "s"}')
    return 0


def _robot_move(args) -> int:
    _valid_id(args.robot_id, 'robot id', 'robot move')
    _valid_id(args.store, 'store id', 'robot move')
    storage = _storage(args, 'robot move')
    _on_db('robot move', storage, lambda: storage.move_robot(args.robot_id, args.store))
    return _done(args, f'robot {args.robot_id} moved to store {args.store}',
                 {'robot_id': args.robot_id, 'store_id': args.store})


def _token_issue(args) -> int:
    command = 'token issue'
    out = _token_out(args.out) if args.out else None      # writable, checked before issuing
    try:
        token, holder, storage = _issue_token(args, command)
    except BaseException:
        if out is not None:
            out.abandon()
        raise
    if out is None:
        print(token)
        return 0
    try:
        out.write(token + '\n')
    except OSError as exc:          # a full disk: the token nobody holds is revoked at once
        from retail_platform.storage import token_hash
        storage.revoke_fingerprint(token_hash(token)[:12])
        raise CommandError(f'retailbot platform token issue: cannot write {out.path}: '
                           f'{exc.strerror}; the new token was revoked (nothing issued)') from None
    print(f'token for {holder} written to {out.path} (mode 600)')
    return 0


class _TokenFile:
    """The --out file, opened (created if need be, mode 600) before a token is issued, so a
    path that cannot be written refuses the command before anything is in the database; its
    old content is replaced only once the new token exists."""

    def __init__(self, path: Path, fd: int, created: bool) -> None:
        self.path, self.fd, self.created = path, fd, created

    def write(self, text: str) -> None:
        try:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, text.encode())
            os.fsync(self.fd)
            os.fchmod(self.fd, 0o600)
        finally:
            os.close(self.fd)

    def abandon(self) -> None:
        os.close(self.fd)
        if self.created:
            self.path.unlink(missing_ok=True)


def _token_out(name: str) -> _TokenFile:
    out = Path(name)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        created = not out.exists()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CommandError(f'retailbot platform token issue: cannot write {out}: '
                           f'{exc.strerror}; nothing issued') from None
    return _TokenFile(out, fd, created)


def _issue_token(args, command: str):
    if args.role == 'robot':
        if not args.robot_id or len(args.store) != 1:
            raise CommandError('retailbot platform token issue: a robot token needs --robot-id R '
                               'and one --store S')
        _valid_id(args.robot_id, 'robot id', command)
        _valid_id(args.store[0], 'store id', command)
        storage = _storage(args, command, must_exist=False, schema='fresh')
        token = _on_db(command, storage, lambda: storage.issue_robot_token(
            args.robot_id, args.store[0], replace=args.replace))
        return token, f'robot {args.robot_id}', storage
    if args.robot_id:
        raise CommandError(f'retailbot platform token issue: --robot-id is for robot tokens, '
                           f'not --role {args.role}')
    for store in args.store:
        _valid_id(store, 'store id', command)
    storage = _storage(args, command, must_exist=False, schema='fresh')
    token = _on_db(command, storage, lambda: storage.issue_staff_token(
        args.role, args.name or args.role, args.store, args.region or None))
    return token, f'{args.role} {args.name}'.strip(), storage


def _token_revoke(args) -> int:
    storage = _storage(args, 'token revoke')
    if args.fingerprint is not None:
        if not re.fullmatch(r'[0-9a-f]{12}', args.fingerprint):
            raise CommandError('retailbot platform token revoke: --fingerprint must be the 12 hex '
                               'digits `token list` shows')
        count = _on_db('token revoke', storage,
                       lambda: storage.revoke_fingerprint(args.fingerprint))
        if not count:
            raise CommandError(f'retailbot platform token revoke: no active credential with '
                               f'fingerprint {args.fingerprint} (see `token list`)')
        return _done(args, f'credential {args.fingerprint} revoked',
                     {'fingerprint': args.fingerprint, 'revoked': count})
    def revoke() -> int:
        count = storage.revoke_robot(args.robot_id)
        if not count:
            _require_robot(storage, args.robot_id)
        return count
    count = _on_db('token revoke', storage, revoke)
    return _done(args, f'{count} tokens of robot {args.robot_id} revoked',
                 {'robot_id': args.robot_id, 'revoked': count})


def _token_list(args) -> int:
    storage = _storage(args, 'token list')
    for token in _on_db('token list', storage, storage.list_tokens):
        token = dict(token, issued_at=local_time(token['issued_at']),
                     revoked_at=local_time(token['revoked_at']))
        if args.json:
            print(json.dumps(token))
        else:
            state = f'revoked {token["revoked_at"]}' if token['revoked_at'] else 'active'
            who = token['robot_id'] or token['name']
            print(f'{token["role"]}  {who}  {token["fingerprint"]}  issued {token["issued_at"]}  {state}')
    return 0
