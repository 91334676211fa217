"""`retailbot sync ...` (the robot side) and `retailbot platform ...` (the reference platform)."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

EXIT_AUTH = 3
EXIT_INPUT = 2


def _add_outbox_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--max-events', type=int, default=1_000_000,
                        help='outbox limit: oldest events beyond it are dropped (default 1000000)')
    parser.add_argument('--max-age-h', type=float, default=720.0,
                        help='outbox limit: events older than this are dropped (default 720 h)')


def _open_outbox(args):
    from retail_sync.outbox import Limits, Outbox
    return Outbox(args.outbox, Limits(max_events=args.max_events,
                                      max_age_s=args.max_age_h * 3600.0))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'sync', help='the robot\'s outbox and uploads to the online platform',
        description='Store-and-forward of interaction events: append, upload, inspect.')
    commands = parser.add_subparsers(dest='sync_command', metavar='SUBCOMMAND', required=True)

    emit = commands.add_parser('emit', help='append events from a JSON-lines file to the outbox',
                               description='Each line: {"type": ..., "data": {...}} (optional '
                                           'customer, event_id, time). Bad lines are reported '
                                           'and skipped. Exit 0: all stored; 1: some lines '
                                           'skipped; 2: file unreadable.')
    emit.add_argument('--outbox', required=True, help='outbox SQLite file')
    emit.add_argument('--robot-id', required=True, help='this robot\'s id')
    emit.add_argument('--from-file', required=True, help='events as JSON lines (- for stdin)')
    _add_outbox_limits(emit)
    emit.set_defaults(func=_emit)

    run = commands.add_parser('run', help='upload the outbox to the platform',
                              description='Upload pending events in batches; retries with '
                                          'backoff; exit 3 when the platform refuses the token.')
    run.add_argument('--outbox', required=True, help='outbox SQLite file')
    run.add_argument('--platform', required=True, help='platform base URL (http:// or https://)')
    run.add_argument('--token', default='', help='bearer token')
    run.add_argument('--token-file', default='', help='read the bearer token from this file')
    run.add_argument('--robot-id', required=True, help='this robot\'s id')
    run.add_argument('--once', action='store_true', help='upload until the outbox is empty, then exit 0')
    run.add_argument('--batch-size', type=int, default=500, help='events per request (default 500)')
    run.add_argument('--ca-file', default='', help='https: CA bundle to verify the platform with')
    run.add_argument('--timeout', type=float, default=10.0, metavar='S',
                     help='seconds to wait for the platform\'s answer (default 10)')
    run.add_argument('--backoff-max', type=float, default=60.0, metavar='S',
                     help='longest wait between retries (default 60 s)')
    _add_outbox_limits(run)
    run.set_defaults(func=_run)

    status = commands.add_parser('status', help='how much is waiting in the outbox')
    status.add_argument('--outbox', required=True, help='outbox SQLite file')
    status.add_argument('--json', action='store_true', help='print one JSON object')
    _add_outbox_limits(status)
    status.set_defaults(func=_status)


def _emit(args) -> int:
    from retail_sync.outbox import OutboxError, prepare_event
    try:
        handle = sys.stdin if args.from_file == '-' else open(args.from_file, encoding='utf-8')
    except OSError as exc:
        print(f'retailbot sync emit: cannot read {args.from_file}: {exc.strerror}', file=sys.stderr)
        return EXIT_INPUT
    outbox = _open_outbox(args)
    stored = skipped = 0
    rows: list[tuple] = []
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict):
                    raise OutboxError('not a JSON object')
                rows.append(prepare_event(event))
            except (ValueError, OutboxError) as exc:
                print(f'line {number}: {exc}; skipped', file=sys.stderr)
                skipped += 1
                continue
            if len(rows) >= 5000:
                stored += len(outbox.append_rows(rows))
                rows.clear()
    stored += len(outbox.append_rows(rows))
    alarm = outbox.alarm()
    if alarm:
        print(f'warning: {alarm}', file=sys.stderr)
    print(f'{stored} events added to {args.outbox}' + (f', {skipped} lines skipped' if skipped else ''))
    return 0 if not skipped else 1


def _token(args) -> str:
    if args.token_file:
        return Path(args.token_file).read_text().strip()
    return args.token


def _run(args) -> int:
    from retail_sync.uploader import Uploader, UploaderConfig
    if not args.platform.startswith(('http://', 'https://')):
        print(f'retailbot sync run: --platform must be an http:// or https:// URL, not '
              f'{args.platform!r}', file=sys.stderr)
        return EXIT_INPUT
    outbox = _open_outbox(args)
    try:
        token = _token(args)
    except OSError as exc:
        print(f'retailbot sync run: cannot read token file: {exc.strerror}', file=sys.stderr)
        return EXIT_INPUT
    config = UploaderConfig(platform_url=args.platform, token=token, robot_id=args.robot_id,
                            batch_size=args.batch_size, ca_file=args.ca_file,
                            backoff_max_s=args.backoff_max, timeout_s=args.timeout,
                            backoff_initial_s=min(0.5, args.backoff_max / 4))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    uploader = Uploader(outbox, config, log=lambda message: print(message, file=sys.stderr, flush=True))
    total = outbox.pending()
    try:
        if sys.stdout.isatty() and total:
            from rich.progress import Progress
            with Progress() as progress:
                task = progress.add_task('uploading', total=total)
                ok = uploader.run(stop, until_empty=args.once,
                                  progress=lambda n: progress.advance(task, n))
        else:
            ok = uploader.run(stop, until_empty=args.once)
    except KeyboardInterrupt:
        ok = True
    finally:
        uploader.close()
    status = outbox.status()
    print(f'{uploader.sent} events uploaded; {status["pending"]} pending, '
          f'{status["quarantined"]} quarantined')
    if status['alarm']:
        print(f'warning: {status["alarm"]}', file=sys.stderr)
    return 0 if ok else EXIT_AUTH


def _status(args) -> int:
    if not Path(args.outbox).exists():
        print(f'retailbot sync status: no outbox at {args.outbox}', file=sys.stderr)
        return EXIT_INPUT
    status = _open_outbox(args).status()
    if args.json:
        print(json.dumps({key: status[key] for key in
                          ('pending', 'quarantined', 'oldest_pending_s', 'last_success')}))
        return 0
    oldest = status['oldest_pending_s']
    print(f'pending: {status["pending"]}' + (f' (oldest {oldest:.0f} s)' if oldest else ''))
    print(f'quarantined: {status["quarantined"]}')
    print(f'last success: {status["last_success"] or "never"}')
    if status['alarm']:
        print(f'ALARM: {status["alarm"]}')
    return 0


def register_platform(subparsers) -> None:
    parser = subparsers.add_parser('platform', help='the reference online platform',
                                   description='Run or inspect the reference platform.')
    commands = parser.add_subparsers(dest='platform_command', metavar='SUBCOMMAND', required=True)
    serve = commands.add_parser('serve', help='run the platform HTTP service')
    serve.add_argument('--db', required=True, help='SQLite file')
    serve.add_argument('--host', default='127.0.0.1', help='address to listen on (default 127.0.0.1)')
    serve.add_argument('--port', type=int, default=8080, help='TCP port to listen on (default 8080)')
    serve.add_argument('--token', required=True, help='bearer token every request must carry')
    serve.add_argument('--tls-cert', default='', help='serve https with this certificate (PEM)')
    serve.add_argument('--tls-key', default='', help='private key of --tls-cert (PEM)')
    serve.set_defaults(func=_serve)
    export = commands.add_parser('export', help='print a robot\'s stored events as JSON lines')
    export.add_argument('--db', required=True, help='SQLite file')
    export.add_argument('--robot-id', required=True, help='the robot whose events to export')
    export.set_defaults(func=_export)


def _serve(args) -> int:
    import uvicorn

    from retail_sync.platform_app import create_app
    scheme = 'https' if args.tls_cert else 'http'
    print(f'platform on {scheme}://{args.host}:{args.port} (db {args.db})', flush=True)
    uvicorn.run(create_app(args.db, args.token), host=args.host, port=args.port,
                log_level='warning', ssl_certfile=args.tls_cert or None,
                ssl_keyfile=args.tls_key or None)
    return 0


def _export(args) -> int:
    from retail_sync.platform_app import export_events
    if not Path(args.db).exists():
        print(f'retailbot platform export: no database at {args.db}', file=sys.stderr)
        return EXIT_INPUT
    for event in export_events(args.db, args.robot_id):
        print(json.dumps(event, ensure_ascii=False))
    return 0
