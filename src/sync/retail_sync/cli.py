"""`retailbot sync ...`: the robot side (the platform's commands are in retail_platform.cli).

Exit codes (the same for every sync/platform subcommand):
  0 done; 1 some input lines skipped (`sync emit`); 2 bad input or setup (missing or non-outbox
  file, no token, bad option, missing TLS file, ...); 3 uploads stopped by the platform (token
  refused, no events endpoint, untrusted certificate); 4 the outbox is locked by another
  process; 5 disk full; 6 platform unreachable (or busy) for `--give-up-after` seconds (`sync run --once`);
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
              '5 disk full, 6 platform unreachable or busy (run --once), 128+n stopped by signal n')


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


def _whole(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'must be a whole number, not {text!r}') from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f'must be from {low} to {high}, not {text}' if high is not None else
                f'must be at least {low}, not {text}')
        return value
    return parse


def _add_outbox(parser: argparse.ArgumentParser, creatable: bool) -> None:
    parser.add_argument('--outbox', required=True, help='outbox SQLite file (must exist'
                        + (' unless --create)' if creatable else ')'))
    if creatable:
        parser.add_argument('--create', action='store_true',
                            help='start a new outbox when --outbox does not exist')
    parser.add_argument('--lock-wait', type=_positive, default=30.0, metavar='S',
                        help='seconds to wait for another process holding the outbox '
                             '(default 30; then exit 4)')
    parser.add_argument('--max-events', type=_whole(1), default=1_000_000,
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
                                           'customer, event_id, time, version); the type and '
                                           'the data must be declared in retail_common/events.py '
                                           '(a line that is not is reported and skipped). A line '
                                           'without an '
                                           'event_id gets one made from the file\'s path, the '
                                           'line number and the line\'s content, so running '
                                           'emit again on the same file (after a crash) stores '
                                           'nothing twice; from stdin an event_id is required. '
                                           'Bad lines are reported and skipped. Exit 0: all '
                                           'stored (or already stored); 1: some lines skipped; '
                                           '2: file unreadable.')
    _add_outbox(emit, creatable=True)
    emit.add_argument('--robot-id', required=True, help='this robot\'s id')
    emit.add_argument('--from-file', required=True, help='events as JSON lines (- for stdin)')
    emit.add_argument('--event-contracts', choices=('strict', 'generic'), default='strict',
                      help='strict (default): each event must match its type declared in retail_common/events.py; '
                           'generic: only the generic rules (JSON, bounds, privacy), for tests and benches of '
                           'the outbox itself (as `platform serve --event-contracts`)')
    emit.add_argument('--json', action='store_true',
                      help='print the outcome as one JSON object on stdout: {"outbox", "stored", '
                           '"duplicates", "skipped"} (the skipped lines are still named on stderr)')
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
    run.add_argument('--batch-size', type=_whole(1, 10_000), default=500,
                     help='events per request, 1-10000 (default 500)')
    run.add_argument('--ca-file', default='', help='https: CA bundle to verify the platform with')
    run.add_argument('--timeout', type=_positive, default=10.0, metavar='S',
                     help='seconds to wait for the platform\'s answer (default 10)')
    run.add_argument('--backoff-max', type=_positive, default=60.0, metavar='S',
                     help='longest wait between retries (default 60 s)')
    run.add_argument('--stream-file', default='', metavar='FILE',
                     help='where the robot\'s sequence numbers are remembered across outbox '
                          'resets (default: sync-stream.<robot id>.json beside --token-file; '
                          'none without --token-file)')
    run.add_argument('--json', action='store_true',
                     help='print the outcome as one JSON object on stdout (also when it exits '
                          '3 or 6; no progress bar): {"uploaded", "pending", "quarantined", '
                          '"outcome": "done" | "refused" | "unreachable" | "busy" | "stopped", "alarm"}')
    run.set_defaults(func=_guarded('run', _run))

    status = commands.add_parser('status', help='how much is waiting in the outbox')
    _add_outbox(status, creatable=False)
    status.add_argument('--json', action='store_true', help='print one JSON object')
    status.set_defaults(func=_guarded('status', _status))

    requeue = commands.add_parser(
        'requeue', help='send quarantined events again (after what refused them is fixed)',
        description='Events the platform rejected wait in quarantine with its reason (`sync '
                    'status` lists the reasons); they are never sent again on their own. Once '
                    'the cause is fixed (the platform upgraded to know their type, a setting '
                    'corrected), this puts them back in the queue with their sequence numbers, '
                    'and the agent or `sync run` uploads them; one the platform still rejects '
                    'goes back to quarantine. ' + EXIT_CODES + '.')
    _add_outbox(requeue, creatable=False)
    requeue.add_argument('--reason', default='', metavar='TEXT',
                         help='only the events whose reason contains TEXT (default: all)')
    requeue.add_argument('--json', action='store_true',
                         help='print {"requeued", "pending", "quarantined"} on stdout')
    requeue.set_defaults(func=_guarded('requeue', _requeue))

    discard = commands.add_parser(
        'discard', help='delete quarantined events a technician has read and judged worthless',
        description='Deletes quarantined events (never waiting ones) whose reason contains '
                    '--reason, or all of them with --all; the count is kept (`sync status` '
                    '`discarded`). Read them first with `sync status`; `sync requeue` sends them '
                    'again instead. ' + EXIT_CODES + '.')
    _add_outbox(discard, creatable=False)
    which = discard.add_mutually_exclusive_group(required=True)
    which.add_argument('--reason', default='', metavar='TEXT',
                       help='the events whose reason contains TEXT')
    which.add_argument('--all', action='store_true', help='every quarantined event')
    discard.add_argument('--json', action='store_true',
                         help='print {"discarded", "pending", "quarantined"} on stdout')
    discard.set_defaults(func=_guarded('discard', _discard))


MAX_LINE_CHARS = 8 * 256 * 1024      # an event line (its data is at most 256 KiB; escapes make it longer)
MAX_SKIP_CHARS = 64 * MAX_LINE_CHARS  # an over-long line longer than this: the file is not read further


def bounded_lines(handle, limit: int = MAX_LINE_CHARS):
    """(number, line) of a text file, never holding more than `limit` characters: an over-long
    line is read past in pieces and given as (number, None); one that goes on beyond
    MAX_SKIP_CHARS (a device such as /dev/zero, a broken file) ends the reading as (number, '')."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith('\n'):
            skipped = len(line)
            while skipped <= MAX_SKIP_CHARS:
                rest = handle.readline(limit)
                skipped += len(rest)
                if not rest or rest.endswith('\n'):
                    break
            else:
                yield number, ''
                return
            yield number, None
            continue
        yield number, line


def line_event_id(source: str, number: int, line: str) -> str:
    """The event_id of a line that carries none: the same file, line number and content give
    the same id, so a re-run after a crash is recognised as a repeat."""
    import hashlib
    digest = hashlib.sha256(f'{source}\n{number}\n{line.strip()}'.encode('utf-8', 'surrogatepass'))
    return 'line-' + digest.hexdigest()[:40]


def _emit(args) -> int:
    from retail_sync.outbox import OutboxError, prepare_event
    from_stdin = args.from_file == '-'
    try:
        handle = sys.stdin if from_stdin else open(args.from_file, encoding='utf-8')
    except OSError as exc:
        raise CommandError(f'retailbot sync emit: cannot read {args.from_file}: '
                           f'{exc.strerror}') from None
    source = '' if from_stdin else os.path.realpath(args.from_file)
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
            for number, line in bounded_lines(handle):
                if line == '':
                    print(f'line {number}: over {MAX_SKIP_CHARS} characters without an end of line; '
                          'stopped reading there', file=sys.stderr)
                    skipped += 1
                    break
                if line is None:
                    print(f'line {number}: longer than {MAX_LINE_CHARS} characters; skipped', file=sys.stderr)
                    skipped += 1
                    continue
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                    if not isinstance(event, dict):
                        raise OutboxError('not a JSON object')
                    if event.get('event_id') in (None, ''):
                        if from_stdin:
                            raise OutboxError('no event_id (required when reading stdin, so '
                                              'that a re-run cannot store the event twice)')
                        event['event_id'] = line_event_id(source, number, line)
                    row = prepare_event(event, contract=args.event_contracts == 'strict')
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
    return _emitted(args, stored, duplicates, skipped)


def _emitted(args, stored: int, duplicates: int, skipped: int) -> int:
    """emit's outcome on stdout (one JSON object with --json) and its exit code."""
    if args.json:
        print(json.dumps({'outbox': args.outbox, 'stored': stored, 'duplicates': duplicates,
                          'skipped': skipped}, ensure_ascii=False))
    else:
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
    from retail_sync.uploader import DONE, Uploader, UploaderConfig
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
    from retail_sync.stream import link_stream, stream_file_for
    stream_file = args.stream_file or (str(stream_file_for(args.token_file, args.robot_id))
                                       if args.token_file else '')
    if stream_file:
        note = link_stream(outbox, stream_file)
        if note:
            print(note, file=sys.stderr, flush=True)
    config = UploaderConfig(platform_url=args.platform, token=token, robot_id=args.robot_id,
                            batch_size=args.batch_size, ca_file=args.ca_file,
                            backoff_max_s=args.backoff_max, timeout_s=args.timeout,
                            backoff_initial_s=min(0.5, args.backoff_max / 4),
                            stream_file=stream_file)
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
        if sys.stdout.isatty() and total and not args.json:
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
    return _uploaded(args, outbox.status(), uploader, outcome, signalled)


def _uploaded(args, status: dict, uploader, outcome: str, signalled: list[int]) -> int:
    """run's outcome on stdout (one JSON object with --json), a warning or the reason it gave
    up on stderr, and its exit code."""
    from retail_sync.uploader import DONE, REFUSED
    if args.json:
        result = 'stopped' if signalled else 'refused' if outcome == REFUSED else \
            'done' if outcome == DONE else 'busy' if uploader.last_busy else 'unreachable'
        print(json.dumps({'uploaded': uploader.sent, 'pending': status['pending'],
                          'quarantined': status['quarantined'], 'outcome': result,
                          'alarm': status['alarm']}, ensure_ascii=False), flush=True)
    else:
        print(f'{uploader.sent} events uploaded; {status["pending"]} pending, '
              f'{status["quarantined"]} quarantined')
    if status['alarm']:
        print(f'warning: {status["alarm"]}', file=sys.stderr)
    if signalled:
        return 128 + signalled[0]
    if outcome == REFUSED:
        return EXIT_AUTH
    if outcome != DONE:
        state = 'busy (it answered, but asks to wait longer than --give-up-after)' if uploader.last_busy \
            else 'unreachable'
        print(f'retailbot sync run: platform {args.platform} {state}: nothing delivered for '
              f'{args.give_up_after:g} s ({uploader.last_error}); {status["pending"]} events '
              'kept in the outbox', file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _requeue(args) -> int:
    outbox = _open_outbox(args, 'requeue')
    return _quarantine_changed(args, outbox, 'requeued', outbox.requeue(args.reason),
                               'events put back in the queue')


def _discard(args) -> int:
    if not args.all and not args.reason:
        raise CommandError('retailbot sync discard: --reason must not be empty (or say --all)')
    outbox = _open_outbox(args, 'discard')
    return _quarantine_changed(args, outbox, 'discarded',
                               outbox.discard_quarantined('' if args.all else args.reason),
                               'quarantined events deleted')


def _quarantine_changed(args, outbox, key: str, count: int, words: str) -> int:
    """requeue's and discard's answer: the count and what is pending and quarantined now."""
    status = outbox.status()
    if args.json:
        print(json.dumps({key: count, 'pending': status['pending'],
                          'quarantined': status['quarantined']}))
    else:
        print(f'{count} {words}; {status["pending"]} pending, {status["quarantined"]} quarantined')
    return 0


def _status(args) -> int:
    from retail_sync.outbox import Limits, Outbox, OutboxMissing, OutboxUnavailable
    try:       # read-only: works on a read-only filesystem and while the agent holds the lock
        outbox = Outbox(args.outbox, Limits(max_events=args.max_events,
                                            max_age_s=args.max_age_h * 3600.0),
                        busy_timeout_s=args.lock_wait, readonly=True)
    except OutboxMissing:
        raise CommandError(f'retailbot sync status: no outbox at {args.outbox}') from None
    except OutboxUnavailable as exc:
        raise _outbox_error('status', exc) from None
    status = outbox.status()
    reasons = outbox.quarantine_reasons() if status['quarantined'] else []
    last = local_time(status['last_success'])
    if args.json:
        print(json.dumps({'pending': status['pending'], 'quarantined': status['quarantined'],
                          'quarantine_reasons': [{'reason': r, 'events': n} for r, n in reasons],
                          'oldest_pending_s': status['oldest_pending_s'],
                          'last_success': last, 'dropped': status['dropped'],
                          'discarded': status['discarded'],
                          'seq_reused': status['seq_reused'], 'stream_id': status['stream_id'],
                          'alarm': status['alarm']}, ensure_ascii=False))
        return 0
    oldest = status['oldest_pending_s']
    print(f'pending: {status["pending"]}' + (f' (oldest {oldest:.0f} s)' if oldest else ''))
    print(f'quarantined: {status["quarantined"]}')
    for reason, count in reasons:
        print(f'  {count} x {reason[:300]}')
    print(f'last success: {last or "never"}')
    if status['seq_reused']:
        print(f'ERROR: {status["seq_reused"]} events refused as sequence numbers already used '
              f'({status["seq_reused_detail"]})')
    if status['alarm']:
        print(f'ALARM: {status["alarm"]}')
    return 0
