"""Sync fault bench: `sync emit` and `sync run` killed with SIGKILL together, many times.

Starts `retailbot platform serve` on 127.0.0.1 and writes a JSON-lines day of N events that
carry neither an event id nor a time (the worst case for idempotency). In the same run:
- peer: one `sync emit` then one `sync run --once`, uninterrupted: wall time to drain;
- ours under faults: --kills rounds, each starting emit and run together and SIGKILLing both
  once the run has stored something more (at a random moment after that); then one more emit
  and run --once. Counted: lines, events on the platform, duplicates, missing lines,
  quarantined, sequence holes; wall time and its ratio to the peer.
Repeats --repeat times and prints medians; exits 1 if any event was lost, duplicated or
quarantined, or the platform's sequence has a hole.

    .venv/bin/python benches/sync_crash.py                    # 50 kills, 12 000 lines
    .venv/bin/python benches/sync_crash.py --kills 20 --lines 5000 --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.prefix) / 'bin'
TOKEN = 'bench-token'
ROBOT = 'robot-bench'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def start_platform(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--db', str(db),
                             '--port', str(port), '--token', TOKEN,
                             '--event-contracts', 'generic'],   # the benches' free-form events
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f'{url}/v1/health', headers={'Authorization': f'Bearer {TOKEN}'},
                         timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit('the platform did not start')


def stored(db: Path) -> list[tuple[int, int]]:
    """(line index, seq) of every event on the platform."""
    try:
        connection = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=5)
    except sqlite3.Error:
        return []
    try:
        return [(json.loads(data)['i'], seq) for data, seq in
                connection.execute('SELECT data, seq FROM events')]
    except sqlite3.Error:
        return []
    finally:
        connection.close()


def sync(*args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / 'retailbot'), 'sync', *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def emit_args(outbox: Path, source: Path) -> list[str]:
    return ['emit', '--event-contracts', 'generic', '--outbox', str(outbox), '--create', '--robot-id', ROBOT,
            '--from-file', str(source)]


def run_args(outbox: Path, url: str) -> list[str]:
    return ['run', '--outbox', str(outbox), '--platform', url, '--token', TOKEN, '--robot-id',
            ROBOT, '--once', '--batch-size', '200', '--backoff-max', '0.5']


def one_round(workdir: Path, lines: int, kills: int, seed: int) -> dict:
    source = workdir / 'day.jsonl'
    source.write_text(''.join(json.dumps({'type': 'dialogue_turn', 'customer': f'p-{i % 13}',
                                          'data': {'i': i, 'text': f'顾客问价格 #{i}',
                                                   'score': i / 7}}, ensure_ascii=False) + '\n'
                              for i in range(lines)), encoding='utf-8')
    results = {}
    for name in ('peer', 'faults'):
        db, outbox = workdir / f'{name}-platform.sqlite3', workdir / f'{name}-outbox.sqlite3'
        platform, url = start_platform(db)
        try:
            started = time.monotonic()
            killed = 0
            if name == 'faults':
                rng = random.Random(seed)
                while killed < kills:
                    before = len(stored(db))
                    emit = sync(*emit_args(outbox, source))
                    time.sleep(rng.uniform(0.0, 0.5))
                    run = sync(*run_args(outbox, url))
                    deadline = time.monotonic() + 60
                    while (len(stored(db)) <= before and run.poll() is None
                           and time.monotonic() < deadline):
                        time.sleep(0.05)
                    time.sleep(rng.uniform(0.0, 0.3))
                    for proc in (emit, run):
                        if proc.poll() is None:
                            os.kill(proc.pid, signal.SIGKILL)
                            killed += 1
                        proc.wait()
            for args in (emit_args(outbox, source), run_args(outbox, url)):
                if sync(*args).wait() != 0:
                    raise SystemExit(f'{args[0]} failed after the faults')
            elapsed = time.monotonic() - started
        finally:
            platform.terminate()
            platform.wait(timeout=30)
        events = stored(db)
        indexes = [i for i, _ in events]
        seqs = sorted(seq for _, seq in events)
        quarantined = sqlite3.connect(outbox).execute('SELECT COUNT(*) FROM quarantine').fetchone()[0]
        results[name] = {'seconds': elapsed, 'killed': killed, 'stored': len(events),
                         'duplicates': len(indexes) - len(set(indexes)),
                         'missing': lines - len(set(indexes)), 'quarantined': quarantined,
                         'seq_holes': (seqs[-1] - len(seqs)) if seqs else 0}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--lines', type=int, default=12_000)
    parser.add_argument('--kills', type=int, default=50, help='processes killed per repeat')
    parser.add_argument('--repeat', type=int, default=1)
    args = parser.parse_args()
    runs = []
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix='sync-crash-') as folder:
            runs.append(one_round(Path(folder), args.lines, args.kills, seed=repeat))
    bad = False
    for name in ('peer', 'faults'):
        numbers = {key: statistics.median(run[name][key] for run in runs)
                   for key in runs[0][name]}
        print(f'{name:7s} ' + ', '.join(f'{key} {value:g}' for key, value in numbers.items()))
        bad |= any(run[name][key] for run in runs
                   for key in ('duplicates', 'missing', 'quarantined', 'seq_holes'))
    ratio = statistics.median(run['faults']['seconds'] / run['peer']['seconds'] for run in runs)
    print(f'time to a drained outbox under faults / uninterrupted: {ratio:.2f}x (median)')
    print('RESULT: ' + ('events lost, duplicated, quarantined or holes' if bad else
                        'every line stored exactly once, in sequence, nothing quarantined'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
