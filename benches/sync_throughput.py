"""Sync benchmark: draining the outbox to the reference platform on loopback.

Starts `retailbot platform serve` (uvicorn, SQLite) on 127.0.0.1, fills an outbox with N
store-day events of ~300 bytes (as uploaded), then, in the same run:
- raw read: reading the whole outbox by cursor (`Outbox.read_batch`, no network) — the ceiling;
- naive: one event per plain-JSON POST, a single httpx client (the peer), on a sample of events;
- ours: `retailbot sync run --once` (gzip batches of 500, delete after ack) draining the full
  backlog as its own process: wall time (process start included), events/s, peak RSS (wait4).
Prints medians over --repeat runs and the ratios ours/naive and ours/raw read.

    .venv/bin/python benches/sync_throughput.py                 # 50 000 events, 3 repeats
    .venv/bin/python benches/sync_throughput.py --events 1000000 --repeat 1
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from retail_sync.outbox import Outbox, prepare_event

BIN = Path(sys.prefix) / 'bin'
TOKEN = 'bench-token'
ROBOT = 'robot-bench'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def event(i: int) -> dict:
    return {'type': ('greeting', 'dialogue_turn', 'recommendation', 'guide')[i % 4],
            'customer': f'p-{i % 997:05d}',
            'data': {'i': i, 'zone': 'phones', 'lang': 'zh', 'sku': 'HW-MATE60P',
                     'text': f'顾客询问 华为 Mate 60 Pro 的价格和以旧换新 #{i}', 'score': 0.87,
                     'source': 'dialogue/manager'}}


def fill(outbox: Outbox, count: int) -> None:
    for start in range(0, count, 20_000):
        outbox.append_rows([prepare_event(event(i), contract=False) for i in range(start, min(count, start + 20_000))])


def start_platform(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--db',
                             str(workdir / 'platform.sqlite3'), '--port', str(port), '--token', TOKEN,
                             '--event-contracts', 'generic'],   # the benches' free-form events
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + '/v1/health', headers={'Authorization': f'Bearer {TOKEN}'}).is_success:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit('platform did not start')


def raw_read_rate(outbox: Outbox) -> float:
    start, count, after = time.perf_counter(), 0, 0
    while batch := outbox.read_batch(500, after_seq=after):
        count += len(batch)
        after = batch[-1].seq
        ''.join(e.to_json() for e in batch)
    return count / (time.perf_counter() - start)


def naive_rate(url: str, count: int) -> float:
    with httpx.Client(headers={'Authorization': f'Bearer {TOKEN}'}) as client:
        start = time.perf_counter()
        for i in range(count):
            body = {'events': [{'event_id': str(uuid.uuid4()), 'seq': i + 1, 'time': time.time(),
                                **event(i)}]}
            client.post(f'{url}/v1/robots/naive/events', json=body).raise_for_status()
        return count / (time.perf_counter() - start)


def drain(outbox_path: Path, url: str) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of `retailbot sync run --once` draining the outbox."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / 'retailbot'), 'sync', 'run', '--outbox', str(outbox_path),
                             '--platform', url, '--token', TOKEN, '--robot-id', ROBOT, '--once'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f'sync run failed: {proc.stderr.read().decode()}')
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--events', type=int, default=50_000, help='backlog size (default 50000)')
    parser.add_argument('--naive-events', type=int, default=2000,
                        help='events the one-per-request peer sends (default 2000)')
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args()
    sizes, rates, naive, raw, rss = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix='sync-bench-') as tmp:
        workdir = Path(tmp)
        platform, url = start_platform(workdir)
        try:
            for run in range(args.repeat):
                outbox_path = workdir / f'outbox-{run}.sqlite3'
                outbox = Outbox(outbox_path, contract=False)
                fill(outbox, args.events)
                sizes.append(statistics.mean(len(e.to_json().encode()) for e in outbox.read_batch(200)))
                raw.append(raw_read_rate(outbox))
                seconds, peak = drain(outbox_path, url)
                assert outbox.pending() == 0
                outbox.close()
                rates.append(args.events / seconds)
                rss.append(peak)
                naive.append(naive_rate(url, args.naive_events))
                print(f'run {run + 1}: drained {args.events} events in {seconds:.2f} s '
                      f'({rates[-1]:.0f} ev/s, peak RSS {peak:.0f} MiB); naive {naive[-1]:.0f} ev/s; '
                      f'raw read {raw[-1]:.0f} ev/s', flush=True)
        finally:
            platform.terminate()
            platform.wait()
    ours = statistics.median(rates)
    print(json.dumps({
        'events': args.events, 'event_bytes': round(statistics.mean(sizes)),
        'drain_s_median': round(args.events / ours, 2), 'ours_events_per_s_median': round(ours),
        'naive_events_per_s_median': round(statistics.median(naive)),
        'raw_read_events_per_s_median': round(statistics.median(raw)),
        'ratio_ours_vs_naive': round(ours / statistics.median(naive), 1),
        'ratio_ours_vs_raw_read': round(ours / statistics.median(raw), 3),
        'uploader_peak_rss_mib_median': round(statistics.median(rss)),
        'goal_5000_events_per_s': ours >= 5000}, indent=1))


if __name__ == '__main__':
    main()
