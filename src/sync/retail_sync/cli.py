"""`retailbot sync ...` (the robot side) and `retailbot platform ...` (the reference platform).

Exit codes (the same for every sync/platform subcommand):
  0 done; 1 some input lines skipped (`sync emit`); 2 bad input or setup (missing or non-outbox
  file, no token, bad option, missing TLS file, ...); 3 uploads stopped by the platform (token
  refused, no events endpoint, untrusted certificate); 4 the outbox is locked by another
  process; 5 disk full; 6 platform unreachable for `--give-up-after` seconds (`sync run --once`);
  128+n stopped by signal n (130 Ctrl-C, 143 SIGTERM).
Every error is one line on stderr naming the file or option, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

EXIT_SKIPPED = 1
EXIT_INPUT = 2
EXIT_AUTH = 3
EXIT_LOCKED = 4
EXIT_FULL = 5
EXIT_UNREACHABLE = 6
SYNC_TOKEN_ENV = 'RETAILBOT_SYNC_TOKEN'
PLATFORM_TOKEN_ENV = 'RETAILBOT_PLATFORM_TOKEN'
EXIT_CODES = ('exit codes: 0 done, 1 some lines skipped (emit), 2 bad input or setup, '
              '3 uploads stopped by the platform, 4 outbox locked by another process, '
              '5 disk full, 6 platform unreachable (run --once), 128+n stopped by signal n')


class CommandError(Exception):
    """One line for stderr and the exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def local_time(epoch: float | None) -> str | None:
    """`epoch` as a local ISO 8601 time with its UTC offset (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec='seconds')


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be more than 0, not {text}')
    return value


def _add_outbox(parser: argparse.ArgumentParser, creatable: bool) -> None:
    parser.add_argument('--outbox', required=True, help='outbox SQLite file (must exist'
                        + (' unless --create)' if creatable else ')'))
    if creatable:
        parser.add_argument('--create', action='store_true',
                            help='start a new outbox when --outbox does not exist')
    parser.add_argument('--lock-wait', type=_positive, default=30.0, metavar='S',
                        help='seconds to wait for another process holding the outbox '
                             '(default 30; then exit 4)')
    parser.add_argument('--max-events', type=int, default=1_000_000,
                        help='outbox limit: oldest events beyond it are dropped (default 1000000)')
    parser.add_argument('--max-age-h', type=_positive, default=720.0,
                        help='outbox limit: events waiting longer than this (robot running time, '
                             'not the wall clock) are dropped (default 720 h)')


def _open_outbox(args, command: str):
    from retail_sync.outbox import Limits, Outbox, OutboxMissing, OutboxUnavailable
    try:
        return Outbox(args.outbox, Limits(max_events=args.max_events,
                                          max_age_s=args.max_age_h * 3600.0),
                      create=getattr(args, 'create', False), busy_timeout_s=args.lock_wait)
    except OutboxMissing:
        hint = ' (add --create to start a new one)' if hasattr(args, 'create') else ''
        raise CommandError(f'retailbot sync {command}: no outbox at {args.outbox}{hint}') from None
    except OutboxUnavailable as exc:
        raise _outbox_error(command, exc) from None


def _outbox_error(command: str, exc: Exception) -> CommandError:
    from retail_sync.outbox import OutboxFull, OutboxLocked
    code = EXIT_LOCKED if isinstance(exc, OutboxLocked) else \
        EXIT_FULL if isinstance(exc, OutboxFull) else EXIT_INPUT
    return CommandError(f'retailbot sync {command}: {exc}', code)


def _guarded(command: str, func):
    """Run a subcommand: CommandError and outbox failures become one line and an exit code."""
    def run(args) -> int:
        from retail_sync.outbox import OutboxUnavailable
        try:
            return func(args)
        except CommandError as exc:
            print(str(exc), file=sys.stderr)
            return exc.code
        except OutboxUnavailable as exc:
            error = _outbox_error(command, exc)
            print(str(error), file=sys.stderr)
            return error.code
    return run


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'sync', help='the robot\'s outbox and uploads to the online platform',
        description='Store-and-forward of interaction events: append, upload, inspect. '
                    + EXIT_CODES + '.')
    commands = parser.add_subparsers(dest='sync_command', metavar='SUBCOMMAND', required=True)

    emit = commands.add_parser('emit', help='append events from a JSON-lines file to the outbox',
                               description='Each line: {"type": ..., "data": {...}} (optional '
                                           'customer, event_id, time). Bad lines are reported '
                                           'and skipped. Exit 0: all stored (or already stored); '
                                           '1: some lines skipped; 2: file unreadable.')
    _add_outbox(emit, creatable=True)
    emit.add_argument('--robot-id', required=True, help='this robot\'s id')
    emit.add_argument('--from-file', required=True, help='events as JSON lines (- for stdin)')
    emit.set_defaults(func=_guarded('emit', _emit))

    run = commands.add_parser('run', help='upload the outbox to the platform',
                              description='Upload pending events in batches; retries with '
                                          'backoff. The token comes from --token-file, '
                                          f'${SYNC_TOKEN_ENV} or --token. ' + EXIT_CODES + '.')
    _add_outbox(run, creatable=True)
    run.add_argument('--platform', required=True, help='platform base URL (http:// or https://)')
    run.add_argument('--token-file', default='', help='read the bearer token from this file '
                     '(preferred: a token on the command line shows in `ps`)')
    run.add_argument('--token', default='', help=f'bearer token (else ${SYNC_TOKEN_ENV})')
    run.add_argument('--robot-id', required=True, help='this robot\'s id')
    run.add_argument('--once', action='store_true',
                     help='upload until the outbox is empty, then exit 0')
    run.add_argument('--give-up-after', type=_positive, default=60.0, metavar='S',
                     help='with --once: exit 6 when nothing could be delivered for S seconds '
                          '(default 60)')
    run.add_argument('--batch-size', type=int, default=500, help='events per request (default 500)')
    run.add_argument('--ca-file', default='', help='https: CA bundle to verify the platform with')
    run.add_argument('--timeout', type=_positive, default=10.0, metavar='S',
                     help='seconds to wait for the platform\'s answer (default 10)')
    run.add_argument('--backoff-max', type=_positive, default=60.0, metavar='S',
                     help='longest wait between retries (default 60 s)')
    run.set_defaults(func=_guarded('run', _run))

    status = commands.add_parser('status', help='how much is waiting in the outbox')
    _add_outbox(status, creatable=False)
    status.add_argument('--json', action='store_true', help='print one JSON object')
    status.set_defaults(func=_guarded('status', _status))


def _emit(args) -> int:
    from retail_sync.outbox import OutboxError, prepare_event
    try:
        handle = sys.stdin if args.from_file == '-' else open(args.from_file, encoding='utf-8')
    except OSError as exc:
        raise CommandError(f'retailbot sync emit: cannot read {args.from_file}: '
                           f'{exc.strerror}') from None
    outbox = _open_outbox(args, 'emit')
    stored = duplicates = skipped = 0
    rows: list[tuple] = []
    lines: dict[str, int] = {}

    def commit() -> None:
        nonlocal stored, duplicates, skipped
        result = outbox.append_rows(rows)
        stored += len(result.stored)
        duplicates += len(result.duplicates)
        for event_id in result.conflicts:
            print(f'line {lines.get(event_id, "?")}: event_id {event_id} already stored with '
                  'other content; skipped', file=sys.stderr)
            skipped += 1
        rows.clear()
        lines.clear()

    try:
        with handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        raise OutboxError('not a JSON object')
                    row = prepare_event(event)   # generic checks; the agent checks contracts
                except RecursionError:
                    print(f'line {number}: nested too deeply; skipped', file=sys.stderr)
                    skipped += 1
                    continue
                except (ValueError, OutboxError) as exc:
                    print(f'line {number}: {exc}; skipped', file=sys.stderr)
                    skipped += 1
                    continue
                rows.append(row)
                lines[row[0]] = number          # a conflict is the later line
                if len(rows) >= 5000:
                    commit()
    except UnicodeDecodeError as exc:
        commit()
        print(f'{args.from_file}: not UTF-8 text ({exc.reason} at byte {exc.start}); '
              'stopped reading there', file=sys.stderr)
        skipped += 1
    commit()
    alarm = outbox.alarm()
    if alarm:
        print(f'warning: {alarm}', file=sys.stderr)
    parts = [f'{stored} events added to {args.outbox}']
    if duplicates:
        parts.append(f'{duplicates} already stored (same event_id and content)')
    if skipped:
        parts.append(f'{skipped} lines skipped')
    print(', '.join(parts))
    return 0 if not skipped else EXIT_SKIPPED


def read_secret(path: str, what: str, command: str) -> str:
    """The stripped content of a token file; CommandError when unreadable or empty."""
    try:
        token = Path(path).read_text(encoding='utf-8').strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, 'strerror', None) or 'not text'
        raise CommandError(f'{command}: cannot read {what} file {path}: {reason}') from None
    if not token:
        raise CommandError(f'{command}: {what} file {path} is empty')
    return token


def _token(args) -> str:
    command = 'retailbot sync run'
    if args.token_file:
        token = read_secret(args.token_file, 'token', command)
    else:
        token = (args.token or os.environ.get(SYNC_TOKEN_ENV, '')).strip()
    if not token:
        raise CommandError(f'{command}: no platform token: give --token-file FILE (or set '
                           f'${SYNC_TOKEN_ENV})')
    if not (token.isascii() and token.isprintable()):
        raise CommandError(f'{command}: the token has characters a bearer token cannot have')
    return token


def _run(args) -> int:
    from retail_sync.uploader import DONE, REFUSED, Uploader, UploaderConfig
    if not args.platform.startswith(('http://', 'https://')):
        raise CommandError(f'retailbot sync run: --platform must be an http:// or https:// URL, '
                           f'not {args.platform!r}')
    if args.ca_file and not Path(args.ca_file).is_file():
        raise CommandError(f'retailbot sync run: --ca-file {args.ca_file} does not exist')
    from retail_sync.transport import valid_robot_id
    if not valid_robot_id(args.robot_id):
        raise CommandError(f'retailbot sync run: robot id {args.robot_id!r} is not valid '
                           '(letters, digits, . _ -; at most 64)')
    token = _token(args)
    outbox = _open_outbox(args, 'run')
    config = UploaderConfig(platform_url=args.platform, token=token, robot_id=args.robot_id,
                            batch_size=args.batch_size, ca_file=args.ca_file,
                            backoff_max_s=args.backoff_max, timeout_s=args.timeout,
                            backoff_initial_s=min(0.5, args.backoff_max / 4))
    stop = threading.Event()
    signalled: list[int] = []

    def on_signal(number, _frame) -> None:
        signalled.append(number)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    uploader = Uploader(outbox, config, log=lambda message: print(message, file=sys.stderr, flush=True))
    give_up = args.give_up_after if args.once else None
    total = outbox.pending()
    try:
        if sys.stdout.isatty() and total:
            from rich.progress import Progress
            with Progress() as progress:
                task = progress.add_task('uploading', total=total)
                outcome = uploader.run(stop, until_empty=args.once, give_up_s=give_up,
                                       progress=lambda n: progress.advance(task, n))
        else:
            outcome = uploader.run(stop, until_empty=args.once, give_up_s=give_up)
    except KeyboardInterrupt:
        outcome, signalled = DONE, [signal.SIGINT]
    finally:
        uploader.close()
    status = outbox.status()
    print(f'{uploader.sent} events uploaded; {status["pending"]} pending, '
          f'{status["quarantined"]} quarantined')
    if status['alarm']:
        print(f'warning: {status["alarm"]}', file=sys.stderr)
    if signalled:
        return 128 + signalled[0]
    if outcome == REFUSED:
        return EXIT_AUTH
    if outcome != DONE:
        print(f'retailbot sync run: platform {args.platform} unreachable for '
              f'{args.give_up_after:g} s ({uploader.last_error}); {status["pending"]} events '
              'kept in the outbox', file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _status(args) -> int:
    status = _open_outbox(args, 'status').status()
    last = local_time(status['last_success'])
    if args.json:
        print(json.dumps({'pending': status['pending'], 'quarantined': status['quarantined'],
                          'oldest_pending_s': status['oldest_pending_s'],
                          'last_success': last, 'dropped': status['dropped'],
                          'alarm': status['alarm']}, ensure_ascii=False))
        return 0
    oldest = status['oldest_pending_s']
    print(f'pending: {status["pending"]}' + (f' (oldest {oldest:.0f} s)' if oldest else ''))
    print(f'quarantined: {status["quarantined"]}')
    print(f'last success: {last or "never"}')
    if status['alarm']:
        print(f'ALARM: {status["alarm"]}')
    return 0


# --- the reference platform -------------------------------------------------------------------
def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--db', required=True, help='the platform\'s SQLite file')


def register_platform(subparsers) -> None:
    parser = subparsers.add_parser('platform', help='the reference online platform',
                                   description='Run or inspect the reference platform; issue '
                                               'and revoke robots\' credentials. ' + EXIT_CODES + '.')
    commands = parser.add_subparsers(dest='platform_command', metavar='SUBCOMMAND', required=True)
    serve = commands.add_parser(
        'serve', help='run the platform HTTP service',
        description='The admin credential comes from --token-file, '
                    f'${PLATFORM_TOKEN_ENV} or --token (never empty); robots use their own '
                    'tokens (`retailbot platform token issue`).')
    serve.add_argument('--db', required=True, help='SQLite file (created in an existing folder)')
    serve.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    serve.add_argument('--port', type=int, default=8080, help='TCP port 1-65535 (default 8080)')
    serve.add_argument('--token-file', default='', help='file holding the admin token')
    serve.add_argument('--token', default='', help=f'admin token (else ${PLATFORM_TOKEN_ENV}); '
                       'shows in `ps`, prefer --token-file')
    serve.add_argument('--tls-cert', default='', help='serve https with this certificate (PEM)')
    serve.add_argument('--tls-key', default='', help='private key of --tls-cert (PEM)')
    serve.set_defaults(func=_guarded('serve', _serve))
    export = commands.add_parser('export', help='print a robot\'s stored events as JSON lines')
    _add_db(export)
    export.add_argument('--robot-id', required=True, help='the robot whose events to print')
    export.set_defaults(func=_guarded('export', _export))

    token = commands.add_parser('token', help='issue, revoke and list robots\' credentials')
    actions = token.add_subparsers(dest='token_command', metavar='ACTION', required=True)
    issue = actions.add_parser('issue', help='issue a new token bound to one robot id',
                               description='Prints the token once (only its hash is kept); it '
                                           'lets that robot write its own events and read its '
                                           'store\'s data, nothing else.')
    _add_db(issue)
    issue.add_argument('--robot-id', required=True, help='the robot the token belongs to')
    issue.add_argument('--out', default='', help='write the token to this file (mode 600) '
                       'instead of printing it, e.g. the robot\'s <data_dir>/sync/token')
    issue.set_defaults(func=_guarded('token issue', _token_issue))
    revoke = actions.add_parser('revoke', help='revoke every token of one robot (at once)')
    _add_db(revoke)
    revoke.add_argument('--robot-id', required=True, help='the robot whose tokens to revoke')
    revoke.set_defaults(func=_guarded('token revoke', _token_revoke))
    listing = actions.add_parser('list', help='list robots\' tokens (fingerprints only)')
    _add_db(listing)
    listing.add_argument('--json', action='store_true', help='print JSON lines')
    listing.set_defaults(func=_guarded('token list', _token_list))


def _platform_db(path: str, command: str, must_exist: bool) -> Path:
    db = Path(path)
    if db.is_dir():
        raise CommandError(f'retailbot platform {command}: --db {db} is a folder, not a file')
    if not db.parent.is_dir():
        raise CommandError(f'retailbot platform {command}: folder {db.parent} does not exist')
    if must_exist and not db.exists():
        raise CommandError(f'retailbot platform {command}: no database at {db}')
    return db


def _on_db(command: str, db: Path, work):
    """`work()`, with an SQLite error (not a database, another program's) as one line."""
    import sqlite3
    try:
        return work()
    except sqlite3.Error as exc:
        raise CommandError(f'retailbot platform {command}: {db} is not a platform database '
                           f'({exc})') from None


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


def _serve(args) -> int:
    import socket

    if not 1 <= args.port <= 65535:
        raise CommandError(f'retailbot platform serve: --port {args.port} is not a TCP port '
                           '(1-65535)')
    token = _admin_token(args)
    db = _platform_db(args.db, 'serve', must_exist=False)
    _check_tls(args)
    try:
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as exc:
        raise CommandError(f'retailbot platform serve: cannot listen on {args.host}:{args.port}: '
                           f'{exc.strerror or exc}') from None
    import uvicorn

    from retail_sync.platform_app import create_app
    app = _on_db('serve', db, lambda: create_app(db, token))
    scheme = 'https' if args.tls_cert else 'http'
    print(f'platform on {scheme}://{args.host}:{args.port} (db {db})', flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level='warning',
                ssl_certfile=args.tls_cert or None, ssl_keyfile=args.tls_key or None)
    return 0


def _export(args) -> int:
    from retail_sync.platform_app import export_events
    db = _platform_db(args.db, 'export', must_exist=True)

    def export() -> None:
        for event in export_events(db, args.robot_id):
            print(json.dumps(event, ensure_ascii=False))
    _on_db('export', db, export)
    return 0


def _token_issue(args) -> int:
    from retail_sync.platform_app import issue_token
    db = _platform_db(args.db, 'token issue', must_exist=False)
    try:
        token = _on_db('token issue', db, lambda: issue_token(db, args.robot_id))
    except ValueError as exc:
        raise CommandError(f'retailbot platform token issue: {exc}') from None
    if args.out:
        out = Path(args.out)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, 'w') as handle:
                handle.write(token + '\n')
            os.chmod(out, 0o600)
        except OSError as exc:
            raise CommandError(f'retailbot platform token issue: cannot write {out}: '
                               f'{exc.strerror}') from None
        print(f'token for robot {args.robot_id} written to {out} (mode 600)')
    else:
        print(token)
    return 0


def _token_revoke(args) -> int:
    from retail_sync.platform_app import revoke_tokens
    db = _platform_db(args.db, 'token revoke', must_exist=True)
    count = _on_db('token revoke', db, lambda: revoke_tokens(db, args.robot_id))
    print(f'{count} tokens of robot {args.robot_id} revoked')
    return 0


def _token_list(args) -> int:
    from retail_sync.platform_app import list_tokens
    db = _platform_db(args.db, 'token list', must_exist=True)
    for token in _on_db('token list', db, lambda: list_tokens(db)):
        token = dict(token, issued_at=local_time(token['issued_at']),
                     revoked_at=local_time(token['revoked_at']))
        if args.json:
            print(json.dumps(token))
        else:
            state = f'revoked {token["revoked_at"]}' if token['revoked_at'] else 'active'
            print(f'{token["robot_id"]}  {token["fingerprint"]}  issued {token["issued_at"]}  {state}')
    return 0
