"""Platform ingest at chain scale: many light robots on loopback, PostgreSQL and SQLite side by
side in one run.

For each engine: a fresh database (PostgreSQL: a throwaway 15 cluster started here, as in the
tests; SQLite: a file), S stores and R robots provisioned with their own tokens, then
`retailbot platform serve --workers W` and R asyncio clients (httpx), each uploading B gzip
batches of N declared events (dialogue turns, guide missions, greetings; ~300-400 bytes each as
JSON) one after the other as the robot's uploader does, re-sending on 429/503. Measured: events/s
stored (from the first request to the last answer), p50/p99 acknowledgement latency, and then
the database is counted: every event stored exactly once (0 lost, 0 twice) or the run fails.
Prints the figures of both engines and the ratio PostgreSQL/SQLite.

    .venv/bin/python benches/platform_scale.py                      # 200 robots, 100 stores
    .venv/bin/python benches/platform_scale.py --robots 2000 --stores 1000 --batches 5 --workers 2
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'platform'))
from pg_support import Cluster, free_port  # noqa: E402  (the tests' throwaway cluster)

from retail_platform.storage import Storage  # noqa: E402

BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-admin'


def payload(i: int) -> tuple[str, dict]:
    kind = i % 3
    if kind == 0:
        return 'dialogue_turn', {'intent': 'find_product', 'language': 'zh', 'confidence': 0.82,
                                 'text': f'有没有华为 Mate 60 Pro，五千左右的 #{i}',
                                 'products': [{'sku': 'HW-MATE60P', 'price_cny': 5999.0,
                                               'zone': 'phones'}]}
    if kind == 1:
        return 'guide', {'zone': 'kitchen', 'status': 'ended', 'reason': 'arrived',
                         'success': True, 'distance_m': 23.5, 'duration_s': 41.0}
    return 'greeting', {'member': i % 5 == 0, 'vip': False, 'appointment': False}


def batch(robot: int, start: int, size: int) -> bytes:
    events = []
    now = time.time()
    for seq in range(start, start + size):
        kind, data = payload(seq)
        events.append({'event_id': f'r{robot}-{seq}', 'seq': seq, 'type': kind, 'version': 1,
                       'customer': f'p-{seq % 997:05d}', 'time': now - 60 + seq * 0.001,
                       'data': data})
    return gzip.compress(json.dumps({'events': events}, ensure_ascii=False).encode())


async def robot_client(client: httpx.AsyncClient, robot: int, token: str, batches: int,
                       size: int, latencies: list[float], acked: list[int]) -> None:
    headers = {'Authorization': f'Bearer {token}', 'Content-Encoding': 'gzip',
               'Content-Type': 'application/json'}
    await asyncio.sleep(random.random())              # robots do not start in lockstep
    for number in range(batches):
        body = batch(robot, number * size, size)
        while True:
            started = time.perf_counter()
            try:
                response = await client.post(f'/v1/robots/robot-{robot}/events', content=body,
                                             headers=headers)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            if response.status_code in (429, 503):
                await asyncio.sleep(float(response.headers.get('retry-after', '1')))
                continue
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)
            acked.append(response.json()['acked'])
            break


async def load(url: str, tokens: list[str], batches: int, size: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    acked: list[int] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(robot_client(client, i, token, batches, size, latencies, acked)
                               for i, token in enumerate(tokens)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, sum(acked)


def run_engine(name: str, target: str, args) -> dict:
    storage = Storage(target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    for s in range(args.stores):
        storage.add_store(f'store-{s}', f'Store {s}')
    tokens = [storage.issue_robot_token(f'robot-{r}', f'store-{r % args.stores}')
              for r in range(args.robots)]
    storage.close()
    port = free_port()
    server = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--database', target,
                               '--port', str(port), '--token', ADMIN, '--workers',
                               str(args.workers), '--store-rate', '1000000',
                               '--store-burst', '1000000'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f'{name}: the platform did not start')
            time.sleep(0.2)
        elapsed, latencies, acked = asyncio.run(load(url, tokens, args.batches, args.size))
    finally:
        server.terminate()
        server.wait(timeout=30)
    expected = args.robots * args.batches * args.size
    storage = Storage(target)
    with storage.engine.connect() as connection:
        rows = connection.execute(sa.text('SELECT count(*) FROM events')).scalar()
        distinct = connection.execute(sa.text(
            'SELECT count(*) FROM (SELECT DISTINCT robot_id, event_id FROM events) AS d')).scalar()
    storage.close()
    if not (rows == distinct == expected == acked):
        raise SystemExit(f'{name}: {expected} sent, {acked} acked, {rows} rows, {distinct} '
                         'distinct: NOT exactly once')
    latencies.sort()
    return {'engine': name, 'events': expected, 'seconds': elapsed,
            'events_per_s': expected / elapsed,
            'p50_ack_ms': 1000 * statistics.median(latencies),
            'p99_ack_ms': 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--robots', type=int, default=200)
    parser.add_argument('--stores', type=int, default=100)
    parser.add_argument('--batches', type=int, default=5, help='batches per robot')
    parser.add_argument('--size', type=int, default=100, help='events per batch')
    parser.add_argument('--workers', type=int, default=2, help='API processes')
    parser.add_argument('--engines', default='postgresql,sqlite')
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.engines.split(','):
            if name == 'postgresql':
                cluster = Cluster()
                try:
                    results.append(run_engine(name, cluster.url(cluster.new_database()), args))
                finally:
                    cluster.remove()
            else:
                results.append(run_engine(name, str(Path(folder) / 'platform.sqlite3'), args))
    print(f'{args.robots} robots in {args.stores} stores, {args.batches} gzip batches of '
          f'{args.size} events each, {args.workers} API processes; every event stored exactly once')
    for r in results:
        print(f'{r["engine"]:>10}: {r["events"]} events in {r["seconds"]:.1f} s = '
              f'{r["events_per_s"]:.0f} events/s; ack p50 {r["p50_ack_ms"]:.0f} ms, '
              f'p99 {r["p99_ack_ms"]:.0f} ms')
    by = {r['engine']: r for r in results}
    if 'postgresql' in by and 'sqlite' in by:
        print(f'PostgreSQL / SQLite events/s: '
              f'{by["postgresql"]["events_per_s"] / by["sqlite"]["events_per_s"]:.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
