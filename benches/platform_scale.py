"""Platform ingest at chain scale: many light robots on loopback, PostgreSQL and SQLite side by
side in one run, two scenarios per engine.

For each engine: a fresh database (PostgreSQL: a throwaway 15 cluster started here, as in the
tests; SQLite: a file), the stores and robots provisioned with their own tokens, then
`retailbot platform serve --workers W` and light asyncio clients (httpx, one connection pool)
sending gzip batches (level 1, as the robot's uploader) of declared events in a realistic mix
(dialogue turns, guide missions, greetings; ~250-400 bytes each as JSON), re-sending on 429/503
after Retry-After as the uploader does. The request bodies are built before the clock starts.

  throughput  R robots in S stores, each uploading B batches of N events back to back (a
              robot's uploader draining its outbox): events/s stored, p50/p99 ack latency.
  backlog     K stores (2 robots each) come back after D days offline with E events per robot
              per day and drain their backlog in batches of 500 (the uploader's batch_size),
              while L live robots in other stores each send a batch of `--live-batch` events
              every `--live-interval` s (open loop): drain time and rate, live p50/p99 ack.
              The drain time of the full-size backlog (50 stores, 7 days) is projected from the
              measured rate when the run is smaller (said so in the output). The live robots
              start `--live-alone` s (default 2 x --live-interval) before the drainers: their
              latency then, without a backlog, is printed beside the one during the drain (the
              same run), each robot's first batch (a new connection, its credential read)
              apart; with the API's own time of the same batches (the answer's Server-Timing
              `total`) and the load generator's event-loop lag, to tell where the time went.
              A 429/503 is waited as the robot's uploader waits (Retry-After plus jitter,
              retail_sync.uploader.busy_delay); the 429s to the drain are counted.

`--serve-arg` passes an argument to `serve` (e.g. `--serve-arg=--catch-up-rate --serve-arg=0`:
no catch-up pacing, the peer); `--no-throughput` runs the backlog scenario alone.

`--client-procs N` splits the robots over N forked load-generator processes (one start time;
their CPU is counted as the load generator's), so one Python process is not the cap. Server
CPU is read from /proc: the API processes (the server's session) and PostgreSQL (postmaster
and its backends); events per server CPU-second is printed beside events/s.

After each scenario the database is counted: every event stored exactly once (0 lost, 0 twice)
or the run fails. Prints both engines' figures and the ratios PostgreSQL/SQLite.

    .venv/bin/python benches/platform_scale.py                 # a few minutes on 2 shared cores
    .venv/bin/python benches/platform_scale.py --robots 2000 --stores 1000 --batches 5 \\
        --seconds 60 --backlog-stores 50 --backlog-days 7 --events-per-day 300 \\
        --live-robots 1900 --live-interval 30 --client-procs 2   # the issue's size, 60 s
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'platform'))
from pg_support import Cluster, free_port  # noqa: E402  (the tests' throwaway cluster)

from retail_platform.storage import Storage  # noqa: E402
from retail_sync.uploader import busy_delay, parse_retry_after  # noqa: E402

BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-admin'
UPLOADER_BATCH = 500          # retail_sync.uploader.UploaderConfig.batch_size
FULL_BACKLOG_STORES, FULL_BACKLOG_DAYS = 50, 7


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


def batch(robot: int, start: int, size: int, first_time: float, step_s: float = 0.001) -> bytes:
    events = []
    for seq in range(start, start + size):
        kind, data = payload(seq)
        events.append({'event_id': f'r{robot}-{seq}', 'seq': seq, 'type': kind, 'version': 1,
                       'customer': f'p-{seq % 997:05d}', 'time': first_time + seq * step_s,
                       'data': data})
    return gzip.compress(json.dumps({'events': events}, ensure_ascii=False).encode(),
                         compresslevel=1)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    acked: int = 0
    retries: int = 0
    refused: int = 0                 # of the retries: 429 answers
    # (time.time() the answered attempt started, its latency, the server's own time of it from
    # the answer's Server-Timing `total`, or -1; seconds), one per acknowledged batch
    records: list[tuple[float, float, float]] = field(default_factory=list)


def server_total_s(response: httpx.Response) -> float:
    """The `total` of the answer's Server-Timing header (in seconds), -1 without one."""
    for part in response.headers.get('server-timing', '').split(','):
        name, _, rest = part.strip().partition(';')
        if name == 'total' and rest.startswith('dur='):
            try:
                return float(rest[4:]) / 1000
            except ValueError:
                return -1.0
    return -1.0


async def send(clients: Clients, robot: int, token: str, body: bytes, tally: Tally) -> None:
    """Send one batch until it is acknowledged; on 429/503 wait as the robot's uploader waits
    (retail_sync.uploader.busy_delay: the Retry-After plus jitter, never earlier)."""
    headers = {'Authorization': f'Bearer {token}', 'Content-Encoding': 'gzip',
               'Content-Type': 'application/json'}
    while True:
        started = time.perf_counter()
        wall = time.time()
        try:
            response = await clients[robot].post(f'/v1/robots/robot-{robot}/events', content=body,
                                         headers=headers)
        except httpx.HTTPError:
            tally.retries += 1
            await asyncio.sleep(0.5)
            continue
        if response.status_code in (429, 503):
            tally.retries += 1
            tally.refused += response.status_code == 429
            asked = parse_retry_after(response.headers.get('retry-after')) or 1.0
            await asyncio.sleep(busy_delay(asked))
            continue
        response.raise_for_status()
        latency = time.perf_counter() - started
        tally.latencies.append(latency)
        tally.records.append((wall, latency, server_total_s(response)))
        tally.acked += response.json()['acked']
        return


TICK = os.sysconf('SC_CLK_TCK')


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    return text[text.rindex(')') + 2:].split()      # fields from 3 (state) on


def _all_stats() -> dict[int, list[str]]:
    stats = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            stats[int(entry)] = fields
    return stats


def cpu_seconds(session: int | None, postmaster: int | None) -> tuple[float, float]:
    """CPU seconds used so far by (the API processes: every process of `session`, the
    database: the postmaster, its live children and the children it reaped)."""
    api = db = 0.0
    for pid, f in _all_stats().items():
        used = (int(f[11]) + int(f[12])) / TICK                 # utime + stime
        if session is not None and int(f[3]) == session:         # session id
            api += used
        if postmaster is not None and (pid == postmaster or int(f[1]) == postmaster):
            db += used + ((int(f[13]) + int(f[14])) / TICK if pid == postmaster else 0)
    return api, db


ROBOTS_PER_CLIENT = 32


class Clients:
    """One small httpx pool per ROBOTS_PER_CLIENT robots (httpcore hands queued requests to
    connections in time quadratic in the queue: one pool for 4 000 robots spent the load
    generator's CPU there while the server idled)."""

    def __init__(self, url: str, robots: int) -> None:
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        self.pools = [httpx.AsyncClient(base_url=url, timeout=300, limits=limits)
                      for _ in range(max(1, -(-robots // ROBOTS_PER_CLIENT)))]

    def __getitem__(self, robot: int) -> httpx.AsyncClient:
        return self.pools[robot // ROBOTS_PER_CLIENT % len(self.pools)]

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *_) -> None:
        for pool in self.pools:
            await pool.aclose()


def client(url: str, robots: int) -> Clients:
    return Clients(url, robots)


async def throughput(url: str, tokens: list[str], bodies: list[list[bytes]],
                     seconds: float = 0, robots: list[int] | None = None,
                     start_at: float | None = None) -> tuple[float, Tally, list[int]]:
    """Every robot (of `robots`, default all) sends its batches back to back (with `seconds`,
    it starts no batch after that time: a bounded, sustained run); (wall time, tally, batches
    each robot sent). `start_at`: a time.time() to start at (several client processes)."""
    tally = Tally()
    sent = [0] * len(tokens)
    robots = list(range(len(tokens))) if robots is None else robots
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))

    async def robot(rank: int, index: int) -> None:
        await asyncio.sleep(rank * 0.5 / len(robots))       # robots do not start in lockstep
        for body in bodies[index]:
            if seconds and time.perf_counter() - started > seconds:
                return
            sent[index] += 1
            await send(http, index, tokens[index], body, tally)
    async with client(url, len(tokens)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(robot(rank, i) for rank, i in enumerate(robots)))
        return time.perf_counter() - started, tally, sent


async def loop_lag(samples: list[tuple[float, float]], every_s: float = 0.05) -> None:
    """How late this process's event loop wakes a sleeper (time.time(), seconds late): what the
    load generator adds to every latency it measures."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(every_s)
        samples.append((time.time(), time.perf_counter() - before - every_s))


async def backlog(url: str, tokens: list[str], backlog_bodies: dict[int, list[bytes]],
                  live: list[int], live_batch: int, interval: float,
                  start_at: float | None = None, drained_here=None, all_drained=None,
                  live_alone: float = 0.0) -> dict:
    """The backlog robots drain while the live ones send. The live robots start `live_alone`
    seconds before the drainers (their latencies then, without a backlog, are the peer of those
    during the drain). With several client processes: `drained_here()` is called when this
    process's drainers are done, and the live robots go on until `all_drained()` (every
    process's drainers done)."""
    drained, live_tally, first_tally = Tally(), Tally(), Tally()
    done = asyncio.Event()
    live_sent: dict[int, int] = {r: 0 for r in live}
    lags: list[tuple[float, float]] = []
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.time()))

    async def drainer(index: int) -> None:
        for body in backlog_bodies[index]:
            await send(http, index, tokens[index], body, drained)

    async def live_robot(rank: int, index: int) -> None:
        await asyncio.sleep(interval * (rank / max(1, len(live))))
        pending: set[asyncio.Task] = set()
        while not done.is_set() and not (all_drained is not None and all_drained()):
            start = live_sent[index]
            live_sent[index] += live_batch
            body = batch(index, start, live_batch, time.time() - 1)
            # a robot's first batch (a new connection, its credential read) is counted apart
            task = asyncio.create_task(send(http, index, tokens[index], body,
                                            live_tally if start else first_tally))
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(interval)
        await asyncio.gather(*pending)

    async with client(url, len(tokens)) as http:
        monitor = asyncio.create_task(loop_lag(lags))
        lives = [asyncio.create_task(live_robot(rank, r)) for rank, r in enumerate(live)]
        await asyncio.sleep(live_alone)
        drain_start = time.time()
        started = time.perf_counter()
        await asyncio.gather(*(drainer(r) for r in backlog_bodies))
        seconds = time.perf_counter() - started
        ended = time.time()
        if drained_here is not None:
            drained_here()
        else:
            done.set()
        await asyncio.gather(*lives)
        monitor.cancel()
    live_tally.acked += first_tally.acked
    live_tally.retries += first_tally.retries
    live_tally.refused += first_tally.refused
    return {'drain_s': seconds, 'drain_start': drain_start, 'drain_end': ended,
            'drained': drained, 'live': live_tally, 'first': first_tally,
            'live_sent': live_sent, 'lags': lags}


# --- several load-generator processes (--client-procs): forked after the bodies are built, each
# sends for its share of the robots; the parent adds their tallies up.
_SHARED: dict = {}


def _throughput_part(part: list[int], start_at: float) -> tuple:
    g = _SHARED
    seconds, tally, sent = asyncio.run(throughput(g['url'], g['tokens'], g['bodies'],
                                                  g['seconds'], part, start_at))
    return time.time(), tally.latencies, tally.acked, tally.retries, [sent[r] for r in part]


def _backlog_part(drain: list[int], live: list[int], start_at: float, drained) -> tuple:
    g = _SHARED

    def drained_here() -> None:
        with drained.get_lock():
            drained.value += 1

    def all_drained() -> bool:
        return drained.value >= g['procs']
    result = asyncio.run(backlog(g['url'], g['tokens'],
                                 {r: g['backlog_bodies'][r] for r in drain}, live,
                                 g['live_batch'], g['live_interval'], start_at,
                                 drained_here, all_drained, g['live_alone']))
    return (result['drain_end'] if drain else 0.0, result['drain_start'], result['drained'],
            result['live'], result['live_sent'], result['lags'], result['first'])


def _run_procs(function, parts: list[tuple]) -> list[tuple]:
    import multiprocessing
    context = multiprocessing.get_context('fork')
    with context.Pool(len(parts)) as pool:
        return pool.starmap(function, parts)


def throughput_procs(url: str, tokens: list[str], bodies: list[list[bytes]], seconds: float,
                     procs: int) -> tuple[float, Tally, list[int]]:
    if procs <= 1:
        return asyncio.run(throughput(url, tokens, bodies, seconds))
    _SHARED.update(url=url, tokens=tokens, bodies=bodies, seconds=seconds)
    start_at = time.time() + 3                     # every process forked and its loop running
    parts = [list(range(p, len(tokens), procs)) for p in range(procs)]
    results = _run_procs(_throughput_part, [(part, start_at) for part in parts])
    tally, sent = Tally(), [0] * len(tokens)
    for part, (_, latencies, acked, retries, part_sent) in zip(parts, results):
        tally.latencies += latencies
        tally.acked += acked
        tally.retries += retries
        for r, n in zip(part, part_sent):
            sent[r] = n
    return max(r[0] for r in results) - start_at, tally, sent


def _add(total: Tally, part: Tally) -> None:
    total.latencies += part.latencies
    total.records += part.records
    total.acked += part.acked
    total.retries += part.retries
    total.refused += part.refused


def backlog_procs(url: str, tokens: list[str], backlog_bodies: dict[int, list[bytes]],
                  live: list[int], live_batch: int, interval: float, procs: int,
                  live_alone: float = 0.0) -> dict:
    if procs <= 1:
        result = asyncio.run(backlog(url, tokens, backlog_bodies, live, live_batch, interval,
                                     live_alone=live_alone))
        result['drain_s'] = result['drain_end'] - result['drain_start']
        return result
    import multiprocessing
    drained = multiprocessing.get_context('fork').Value('i', 0)
    _SHARED.update(url=url, tokens=tokens, backlog_bodies=backlog_bodies, live_batch=live_batch,
                   live_interval=interval, procs=procs, live_alone=live_alone)
    start_at = time.time() + 3
    drainers = sorted(backlog_bodies)
    parts = [(drainers[p::procs], live[p::procs], start_at, drained) for p in range(procs)]
    results = _run_procs_shared(parts)
    drained_tally, live_tally, first_tally, live_sent, lags = Tally(), Tally(), Tally(), {}, []
    for _, _, part_drained, part_live, sent, part_lags, part_first in results:
        _add(drained_tally, part_drained)
        _add(live_tally, part_live)
        _add(first_tally, part_first)
        live_sent |= sent
        lags += part_lags
    drain_start = min(r[1] for r in results)
    drain_end = max(r[0] for r in results)
    return {'drain_s': drain_end - drain_start, 'drain_start': drain_start, 'drain_end': drain_end,
            'drained': drained_tally, 'live': live_tally, 'first': first_tally,
            'live_sent': live_sent, 'lags': lags}


def _run_procs_shared(parts: list[tuple]) -> list[tuple]:
    """Like _run_procs, with one process per part started directly (a Value cannot be passed
    through a Pool's queue; forked processes inherit it)."""
    import multiprocessing
    context = multiprocessing.get_context('fork')
    queue = context.Queue()

    def work(index: int, part: tuple) -> None:
        queue.put((index, _backlog_part(*part)))
    processes = [context.Process(target=work, args=(i, part)) for i, part in enumerate(parts)]
    for process in processes:
        process.start()
    results = dict(queue.get() for _ in processes)
    for process in processes:
        process.join()
    return [results[i] for i in range(len(parts))]


def serve(target: str, workers: int, name: str,
          extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([str(BIN / 'retailbot'), 'platform', 'serve', '--database', target,
                               '--port', str(port), '--token', ADMIN, '--workers', str(workers),
                               '--store-rate', '1000000', '--store-burst', '1000000',
                               *(extra or [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f'{name}: the platform did not start')
        time.sleep(0.2)


def count(target: str, expected: dict[str, int], name: str) -> None:
    """Every robot's events stored exactly once: rows == distinct ids == what was sent."""
    storage = Storage(target)
    try:
        with storage.engine.connect() as connection:
            rows = dict(connection.execute(sa.text(
                'SELECT robot_id, count(*) FROM events GROUP BY robot_id')).all())
            distinct = connection.execute(sa.text(
                'SELECT count(*) FROM (SELECT DISTINCT robot_id, event_id FROM events) AS d')).scalar()
    finally:
        storage.close()
    wrong = {r: (rows.get(r, 0), n) for r, n in expected.items() if rows.get(r, 0) != n}
    if wrong or distinct != sum(rows.values()) or set(rows) - set(expected):
        raise SystemExit(f'{name}: NOT exactly once: {len(wrong)} robots with rows != sent, '
                         f'e.g. {list(wrong.items())[:3]}; {sum(rows.values())} rows, '
                         f'{distinct} distinct')


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float('nan')


def run_engine(name: str, target: str, args, postmaster: int | None = None) -> dict:
    live_robots = args.live_robots
    backlog_robots = 2 * args.backlog_stores
    # robots 0..R-1: throughput; then the backlog robots (2 per store in their own stores),
    # then the live robots (other stores)
    total_stores = args.stores + args.backlog_stores + max(1, live_robots // 2)
    robots = args.robots + backlog_robots + live_robots
    from concurrent.futures import ThreadPoolExecutor

    from retail_platform.database import upgrade
    storage = Storage(target, pool_size=16)

    def store_of(r: int) -> int:
        if r < args.robots:
            return r % args.stores
        if r < args.robots + backlog_robots:
            return args.stores + (r - args.robots) // 2
        return args.stores + args.backlog_stores + (r - args.robots - backlog_robots) // 2
    try:                       # provisioning, 16 at a time (PostgreSQL commits them in groups)
        upgrade(storage.engine)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda s: storage.add_store(f'store-{s}', f'Store {s}'),
                          range(total_stores)))
            tokens = list(pool.map(lambda r: storage.issue_robot_token(
                f'robot-{r}', f'store-{store_of(r)}'), range(robots)))
    finally:
        storage.close()
    print(f'{name}: {total_stores} stores and {robots} robots provisioned', file=sys.stderr,
          flush=True)
    now = time.time()
    bodies = [[batch(r, b * args.size, args.size, now - 60)
               for b in range(args.batches)] for r in range(args.robots)]
    per_robot = args.backlog_days * args.events_per_day
    step = args.backlog_days * 86400 / max(1, per_robot)
    backlog_bodies = {r: [batch(r, start, min(UPLOADER_BATCH, per_robot - start),
                                now - args.backlog_days * 86400, step)
                          for start in range(0, per_robot, UPLOADER_BATCH)]
                      for r in range(args.robots, args.robots + backlog_robots)}
    server, url = serve(target, args.workers, name, args.serve_arg)
    try:
        api0, db0 = cpu_seconds(server.pid, postmaster)
        client0 = sum(os.times()[:4])              # this process and its waited children
        if args.no_throughput:
            seconds, tally, batches_sent = 1.0, Tally(), [0] * args.robots
        else:
            seconds, tally, batches_sent = throughput_procs(url, tokens[:args.robots], bodies,
                                                            args.seconds, args.client_procs)
        api1, db1 = cpu_seconds(server.pid, postmaster)
        client1 = sum(os.times()[:4])
        cpu = {'cpu_api_s': api1 - api0, 'cpu_db_s': db1 - db0, 'cpu_client_s': client1 - client0}
        live = list(range(args.robots + backlog_robots, robots))
        load_before = os.getloadavg()[0]
        drain = backlog_procs(url, tokens, backlog_bodies, live, args.live_batch,
                              args.live_interval, args.client_procs, args.live_alone)
        load_after = os.getloadavg()[0]
        api2, db2 = cpu_seconds(server.pid, postmaster)
        cpu |= {'drain_cpu_api_s': api2 - api1, 'drain_cpu_db_s': db2 - db1,
                'drain_cpu_client_s': sum(os.times()[:4]) - client1}
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    expected = {f'robot-{r}': batches_sent[r] * args.size for r in range(args.robots)
                if batches_sent[r]}
    expected |= {f'robot-{r}': per_robot for r in backlog_bodies}
    expected |= {f'robot-{r}': n for r, n in drain['live_sent'].items() if n}
    count(target, expected, name)
    sent = sum(batches_sent) * args.size
    if tally.acked != sent and not args.no_throughput:
        raise SystemExit(f'{name}: {sent} sent, {tally.acked} acked')
    backlog_events = per_robot * backlog_robots
    rate = backlog_events / drain['drain_s']
    full = FULL_BACKLOG_STORES * 2 * FULL_BACKLOG_DAYS * args.events_per_day
    live = drain['live']
    server_cpu = cpu['cpu_api_s'] + cpu['cpu_db_s']
    start, end = drain['drain_start'], drain['drain_end']
    # live batches by when they were sent: before the drainers started (no backlog: the peer,
    # same run, same processes) and while the backlog drained
    alone = [r for r in live.records if r[0] < start]
    during = [r for r in live.records if start <= r[0] <= end]
    lags = [lag for when, lag in drain['lags'] if start <= when <= end]
    lags_alone = [lag for when, lag in drain['lags'] if when < start]

    first = drain['first'].records

    def ms(records: list, q: float, column: int = 1) -> float:
        values = [r[column] for r in records if r[column] >= 0]
        return 1000 * percentile(values, q) if values else float('nan')
    return {'engine': name, 'events': sent, 'seconds': seconds, 'events_per_s': sent / seconds,
            **cpu, 'server_events_per_cpu_s': sent / max(server_cpu, 1e-9),
            'p50_ack_ms': 1000 * statistics.median(tally.latencies) if tally.latencies else 0,
            'p99_ack_ms': 1000 * percentile(tally.latencies, 0.99), 'retries': tally.retries,
            'backlog_events': backlog_events, 'drain_s': drain['drain_s'], 'drain_rate': rate,
            'drain_retries': drain['drained'].retries, 'drain_refused': drain['drained'].refused,
            'full_backlog_events': full, 'full_drain_min': full / rate / 60,
            'live_events': live.acked, 'live_refused': live.refused,
            'live_p50_ms': 1000 * statistics.median(live.latencies) if live.latencies else 0,
            'live_p99_ms': 1000 * percentile(live.latencies, 0.99),
            'live_alone_batches': len(alone), 'live_alone_p50_ms': ms(alone, 0.5),
            'live_alone_p99_ms': ms(alone, 0.99), 'live_drain_batches': len(during),
            'live_drain_p50_ms': ms(during, 0.5), 'live_drain_p99_ms': ms(during, 0.99),
            'live_drain_max_ms': ms(during, 1.0), 'live_first_batches': len(first),
            'live_first_p50_ms': ms(first, 0.5), 'live_first_p99_ms': ms(first, 0.99),
            'live_drain_server_p50_ms': ms(during, 0.5, 2),
            'live_drain_server_p99_ms': ms(during, 0.99, 2),
            'live_alone_server_p99_ms': ms(alone, 0.99, 2),
            'client_loop_lag_p99_ms': 1000 * percentile(lags, 0.99) if lags else float('nan'),
            'client_loop_lag_max_ms': 1000 * max(lags, default=float('nan')),
            'client_loop_lag_alone_p99_ms': (1000 * percentile(lags_alone, 0.99) if lags_alone
                                             else float('nan')),
            'load_before_drain': load_before, 'load_after_drain': load_after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--robots', type=int, default=100, help='throughput: robots')
    parser.add_argument('--stores', type=int, default=50, help='throughput: stores')
    parser.add_argument('--batches', type=int, default=3, help='throughput: batches per robot')
    parser.add_argument('--size', type=int, default=100, help='throughput: events per batch')
    parser.add_argument('--seconds', type=float, default=0,
                        help='throughput: start no batch after this many seconds (0: send all)')
    parser.add_argument('--backlog-stores', type=int, default=2)
    parser.add_argument('--backlog-days', type=int, default=7)
    parser.add_argument('--events-per-day', type=int, default=300,
                        help='events a robot makes in a day (backlog size)')
    parser.add_argument('--live-robots', type=int, default=40)
    parser.add_argument('--live-batch', type=int, default=10, help='events per live batch')
    parser.add_argument('--live-interval', type=float, default=2.0,
                        help='seconds between a live robot\'s batches')
    parser.add_argument('--live-alone', type=float, default=None,
                        help='seconds the live robots send before the backlog starts (their '
                             'latency without a backlog, the peer in the same run; default '
                             '2 x --live-interval: every live robot has sent twice)')
    parser.add_argument('--no-throughput', action='store_true',
                        help='skip the throughput scenario (the backlog one only)')
    parser.add_argument('--serve-arg', action='append', default=[], metavar='ARG',
                        help='an argument more for `retailbot platform serve` (repeatable, '
                             'e.g. --serve-arg=--catch-up-rate --serve-arg=2000)')
    parser.add_argument('--workers', type=int, default=2, help='API processes')
    parser.add_argument('--client-procs', type=int, default=1,
                        help='load-generator processes (the robots split among them)')
    parser.add_argument('--engines', default='postgresql,sqlite')
    parser.add_argument('--json', action='store_true', help='print the figures as JSON')
    args = parser.parse_args()
    if args.live_alone is None:
        args.live_alone = 2 * args.live_interval
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.engines.split(','):
            if name == 'postgresql':
                cluster = Cluster()
                try:
                    postmaster = int((cluster.data / 'postmaster.pid').read_text().split()[0])
                    results.append(run_engine(name, cluster.url(cluster.new_database()), args,
                                              postmaster))
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)
                finally:
                    cluster.remove()
            elif name == 'sqlite':
                results.append(run_engine(name, str(Path(folder) / 'platform.sqlite3'), args))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            else:
                raise SystemExit(f'--engines: {name!r} is not postgresql or sqlite')
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print(f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared); '
          f'{args.workers} API processes; {args.client_procs} load-generator process(es) on '
          'the same cores; every event stored exactly once (rows = distinct ids = sent)')
    print(f'throughput: {args.robots} robots in {args.stores} stores, {args.batches} gzip '
          f'batches of {args.size} events each, back to back'
          + (f', no batch started after {args.seconds:g} s' if args.seconds else ''))
    for r in results:
        print(f'{r["engine"]:>12}: {r["events"]} events in {r["seconds"]:.1f} s = '
              f'{r["events_per_s"]:.0f} events/s; ack p50 {r["p50_ack_ms"]:.0f} ms, '
              f'p99 {r["p99_ack_ms"]:.0f} ms')
        print(f'{"":>12}  CPU: API processes {r["cpu_api_s"]:.1f} s, database '
              f'{r["cpu_db_s"]:.1f} s, load generator {r["cpu_client_s"]:.1f} s; the server '
              f'(API + database) stores {r["server_events_per_cpu_s"]:.0f} events per CPU-second '
              f'(both cores to itself: ~{2 * r["server_events_per_cpu_s"]:.0f} events/s)')
    print(f'backlog: {args.backlog_stores} stores x 2 robots x {args.backlog_days} days x '
          f'{args.events_per_day} events/day, while {args.live_robots} live robots send '
          f'{args.live_batch} events every {args.live_interval:g} s')
    for r in results:
        projected = '' if (args.backlog_stores, args.backlog_days) == \
            (FULL_BACKLOG_STORES, FULL_BACKLOG_DAYS) else ' (projected from the rate)'
        print(f'{r["engine"]:>12}: {r["backlog_events"]} events drained in {r["drain_s"]:.1f} s '
              f'= {r["drain_rate"]:.0f} events/s; live ack p50 {r["live_p50_ms"]:.0f} ms, '
              f'p99 {r["live_p99_ms"]:.0f} ms ({r["live_events"]} live events); '
              f'{FULL_BACKLOG_STORES} stores x {FULL_BACKLOG_DAYS} days = '
              f'{r["full_backlog_events"]} events: {r["full_drain_min"]:.1f} min{projected}')
        print(f'{"":>12}  live ack, same run: each robot\'s first batch p50 '
              f'{r["live_first_p50_ms"]:.0f} ms, p99 {r["live_first_p99_ms"]:.0f} ms '
              f'({r["live_first_batches"]}, counted apart); without backlog (first '
              f'{args.live_alone:g} s) '
              f'p50 {r["live_alone_p50_ms"]:.0f} ms, p99 {r["live_alone_p99_ms"]:.0f} ms '
              f'({r["live_alone_batches"]} batches); during the drain p50 '
              f'{r["live_drain_p50_ms"]:.0f} ms, p99 {r["live_drain_p99_ms"]:.0f} ms, max '
              f'{r["live_drain_max_ms"]:.0f} ms ({r["live_drain_batches"]} batches; server\'s '
              f'own time p50 {r["live_drain_server_p50_ms"]:.0f} / p99 '
              f'{r["live_drain_server_p99_ms"]:.0f} ms); drain retries {r["drain_retries"]} '
              f'({r["drain_refused"]} of them 429), live 429s {r["live_refused"]}')
        print(f'{"":>12}  during the drain: CPU API {r["drain_cpu_api_s"]:.1f} s, database '
              f'{r["drain_cpu_db_s"]:.1f} s, load generator {r["drain_cpu_client_s"]:.1f} s '
              f'(the whole backlog scenario); load generator loop lag p99 '
              f'{r["client_loop_lag_p99_ms"]:.0f} ms, max {r["client_loop_lag_max_ms"]:.0f} ms '
              f'(without backlog p99 {r["client_loop_lag_alone_p99_ms"]:.0f} ms); load average '
              f'{r["load_before_drain"]:.1f} before, {r["load_after_drain"]:.1f} after')
    by = {r['engine']: r for r in results}
    if 'postgresql' in by and 'sqlite' in by:
        pg, lite = by['postgresql'], by['sqlite']
        print(f'PostgreSQL / SQLite: throughput {pg["events_per_s"] / lite["events_per_s"]:.2f}x, '
              f'events per server CPU-second '
              f'{pg["server_events_per_cpu_s"] / lite["server_events_per_cpu_s"]:.2f}x, '
              f'drain {pg["drain_rate"] / lite["drain_rate"]:.2f}x, live p99 '
              f'{pg["live_p99_ms"] / max(lite["live_p99_ms"], 1e-9):.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
