"""Downlink at chain scale: one price change in a P-product master reaches R robots in S stores
as deltas, against the whole snapshot each robot would otherwise fetch; PostgreSQL and SQLite in
one run.

For each engine: a fresh database (PostgreSQL: a throwaway 15 cluster started here, as in the
tests; SQLite: a file), S stores, R robots with their own tokens, a master of P products (each
store with its own price for 20 products), then `retailbot platform serve --workers W`.
Every robot holds version V. One master price change is made over the API; then all R robots ask
`GET /v1/robots/{id}/downlink?since=V` at once (C at a time, asyncio httpx clients, gzip as the
robot's client asks): wire bytes and wall time. The peer: whole snapshots (`GET ...downlink`
without since) measured in the same run for a sample of robots (a snapshot of every robot
costs R x the sample's median, as every store's snapshot holds the same P products); printed
as bytes per robot, the total for R robots (sample median x R) and the ratio.

    .venv/bin/python benches/platform_downlink.py                  # 20,000 products, 2,000 robots
    .venv/bin/python benches/platform_downlink.py --products 2000 --robots 200 --stores 100
"""
from __future__ import annotations

import argparse
import asyncio
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

from retail_platform.chain import Chain, store_products  # noqa: E402
from retail_platform.storage import Storage  # noqa: E402

BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-admin'


def product(i: int) -> dict:
    return dict(sku=f'SKU-{i:06d}', name_zh=f'商品 {i} 号', name_en=f'Product number {i}',
                aliases=f'p{i}|item {i}', category=('snacks', 'drinks', 'kitchen', 'phones')[i % 4],
                category_zh=('零食', '饮料', '厨房', '手机')[i % 4], brand=f'Brand{i % 90}',
                brand_zh=f'品牌{i % 90}', price_cny=f'{5 + (i * 37) % 2000}.90',
                zone=f'aisle-{i % 40}', stock=str(i % 60), tags='consumable' if i % 3 else '',
                promotion='第二件半价' if i % 11 == 0 else '', promotion_en='')


def provision(target: str, args) -> list[str]:
    storage = Storage(target)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    for s in range(args.stores):
        storage.add_store(f'store-{s}', f'Store {s}')
    tokens = [storage.issue_robot_token(f'robot-{r}', f'store-{r % args.stores}')
              for r in range(args.robots)]
    chain = Chain(storage.engine)
    chain.put_products([product(i) for i in range(args.products)])
    with storage.engine.begin() as c:        # store-level prices: 20 products of each store
        skus = {(s, (s * 7 + k * 997) % args.products) for s in range(args.stores) for k in range(20)}
        rows = [dict(store_id=f'store-{s}', sku=f'SKU-{i:06d}', price_cny=1.0 + s % 7, stock=None,
                     zone=None, promotion=None, promotion_en=None) for s, i in sorted(skus)]
        for start in range(0, len(rows), 5000):
            c.execute(store_products.insert(), rows[start:start + 5000])
    storage.close()
    return tokens


async def fetch_all(url: str, tokens: list[int], robot_ids: list[int], since: int | None,
                    concurrency: int) -> tuple[float, list[int], list[int], list[float]]:
    wire: list[int] = []
    plain: list[int] = []
    latencies: list[float] = []
    retries: list[str] = []
    gate = asyncio.Semaphore(concurrency)
    # an idle connection is dropped before the server's keep-alive (5 s) can close it under us
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one(r: int) -> None:
            async with gate:
                started = time.perf_counter()
                for attempt in range(3):      # a connection closed under a request: once more
                    try:
                        response = await client.get(
                            f'/v1/robots/robot-{r}/downlink', params={} if since is None else {'since': since},
                            headers={'Authorization': f'Bearer {tokens[r]}', 'Accept-Encoding': 'gzip'})
                        break
                    except httpx.TransportError as exc:
                        retries.append(f'robot-{r}: {type(exc).__name__}')
                        if attempt == 2:
                            raise
                if response.status_code != 200:
                    raise SystemExit(f'robot-{r}: HTTP {response.status_code} {response.text[:200]}')
                latencies.append(time.perf_counter() - started)
                wire.append(response.num_bytes_downloaded)
                plain.append(len(response.content))
                answer = response.json()
                if since is not None and len(answer['products']) != 1:
                    raise SystemExit(f'robot-{r}: a delta of {len(answer["products"])} products')
        started = time.perf_counter()
        await asyncio.gather(*(one(r) for r in robot_ids))
        if retries:
            print(f'{len(retries)} request(s) sent again after a transport error: {retries[:3]}',
                  file=sys.stderr)
        return time.perf_counter() - started, wire, plain, latencies


def run_engine(name: str, target: str, args) -> dict:
    began = time.perf_counter()
    tokens = provision(target, args)
    setup_s = time.perf_counter() - began
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f'platform_downlink_{name}.log', 'wb')   # the server's errors
    server = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--database', target,
                               '--port', str(port), '--token', ADMIN, '--workers', str(args.workers)],
                              stdout=subprocess.DEVNULL, stderr=log)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 300     # a loaded machine: the workers take a while
        while True:
            try:
                if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f'{name}: the platform did not start')
            time.sleep(0.2)
        admin = {'Authorization': f'Bearer {ADMIN}'}
        held = httpx.get(f'{url}/v1/robots/robot-0/downlink', headers=admin, timeout=600).json()['version']
        changed = product(args.products // 2)
        changed['price_cny'] = '1234.50'
        put = httpx.put(f'{url}/v1/products', headers=admin, json={'products': [changed]}, timeout=60)
        assert put.status_code == 200 and put.json()['version'] == held + 1, put.text
        sample = list(range(0, args.robots, max(1, args.robots // args.snapshot_sample)))[:args.snapshot_sample]
        snap_s, snap_wire, snap_plain, snap_lat = asyncio.run(
            fetch_all(url, tokens, sample, None, args.workers))   # SQLite: one writer, 30 s busy wait
        delta_s, delta_wire, delta_plain, delta_lat = asyncio.run(
            fetch_all(url, tokens, list(range(args.robots)), held, args.concurrency))
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    storage = Storage(target)
    with storage.engine.connect() as c:
        versions = c.execute(sa.text('SELECT count(*) FROM changes')).scalar()
    storage.close()
    delta_lat.sort()
    return {'engine': name, 'setup_s': setup_s, 'changes_rows': versions,
            'delta_total_s': delta_s, 'delta_wire': sum(delta_wire), 'delta_plain': sum(delta_plain),
            'delta_p50_ms': 1000 * statistics.median(delta_lat),
            'delta_p99_ms': 1000 * delta_lat[min(len(delta_lat) - 1, int(0.99 * len(delta_lat)))],
            'snap_wire_each': statistics.median(snap_wire), 'snap_plain_each': statistics.median(snap_plain),
            'snap_s_each': statistics.median(snap_lat), 'snap_sample': len(sample),
            'snap_sample_s': snap_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--products', type=int, default=20000)
    parser.add_argument('--robots', type=int, default=2000)
    parser.add_argument('--stores', type=int, default=1000)
    parser.add_argument('--workers', type=int, default=2, help='API processes')
    parser.add_argument('--concurrency', type=int, default=64, help='requests in flight')
    parser.add_argument('--snapshot-sample', type=int, default=20, help='robots fetching a snapshot')
    parser.add_argument('--engines', default='postgresql,sqlite')
    args = parser.parse_args()
    print(f'one master price change, {args.products} products, {args.robots} robots in {args.stores} '
          f'stores, {args.workers} API processes, {args.concurrency} requests in flight, gzip', flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.engines.split(','):
            if name == 'postgresql':
                cluster = Cluster()
                try:
                    report(run_engine(name, cluster.url(cluster.new_database()), args), args)
                finally:
                    cluster.remove()
            else:
                report(run_engine(name, str(Path(folder) / 'platform.sqlite3'), args), args)
    return 0


def report(r: dict, args) -> None:
    snap_total = r['snap_wire_each'] * args.robots
    print(f'{r["engine"]:>10}: deltas: {r["delta_wire"] / args.robots:.0f} B on the wire per robot '
          f'({r["delta_plain"] / args.robots:.0f} B JSON), {r["delta_wire"] / 1e6:.3f} MB for all '
          f'{args.robots} in {r["delta_total_s"]:.1f} s ({args.robots / r["delta_total_s"]:.0f} robots/s), '
          f'p50 {r["delta_p50_ms"]:.0f} ms p99 {r["delta_p99_ms"]:.0f} ms per answer')
    print(f'{"":>10}  snapshots: {r["snap_wire_each"] / 1e3:.0f} kB on the wire per robot '
          f'({r["snap_plain_each"] / 1e3:.0f} kB JSON), {1000 * r["snap_s_each"]:.0f} ms per answer '
          f'(median of {r["snap_sample"]}); for {args.robots} robots {snap_total / 1e6:.0f} MB')
    print(f'{"":>10}  snapshot/delta bytes: {snap_total / max(1, r["delta_wire"]):.0f}x '
          f'(setup {r["setup_s"]:.0f} s)', flush=True)


if __name__ == '__main__':
    sys.exit(main())
