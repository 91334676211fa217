"""The funnel's cost at chain scale and the HQ pages' latency, PostgreSQL and SQLite side by side.

For each engine: a fresh platform database (PostgreSQL: a throwaway 15 cluster started here, as
in the tests; SQLite: a file) with S stores, one robot each, D days of events (E events per
store-day: conversations of customer_appeared, greeting, dialogue_turn, recommendation, guide,
session_end, some tours and staff calls) and receipts (a share of the members buy what they were
recommended). Events go in with the engine's bulk path — this measures the funnel, not ingest
(benches/platform_scale.py does that). On PostgreSQL the load is a restore's (pg_restore: rows
first, indexes after): the events table's key and indexes dropped, each store's month written as
COPY text (built from per-kind templates: the same rows, draw for draw, as the dicts SQLite
gets), then the key and indexes built again from their own definitions and ANALYZE; reported
as `copy_s` and `index_s`. `--keep` leaves the cluster running; `--database URL` measures again
on a database so loaded (its rollups cleared; `--pages-only`: the pages alone), so a 50 M-event
month is loaded once. Measured:

* the whole month recomputed (`funnel.refresh` with every store-day dirty): set-based
  (`funnel_sets`: a few statements over all the dirty store-days), and its peer on the same data in
  the same run, the per-store path (`method='stores'`: each store-day computed by
  `compute_store_day` from its rows); the two must give the same rollups (checked); seconds,
  store-days/s and the ratio (`--no-peer`: the set-based run only, for the largest sizes);
* one dirty store-day: set-based (`funnel_sets.recompute` of that one, forced) and per day
  (`funnel.recompute`): medians of 9 different store-days (store i, day i), and the pure
  `compute_store_day` on the same day's rows already in memory;
* late data for one store-day (an event of a day a month old arrives): `funnel.refresh` as the
  serve process's background refresher runs it — finding the dirty store-days among all of them
  and recomputing only that one: milliseconds, and how many store-days it recomputed (1);
* the pages: a real `retailbot platform serve` (its background refresher running), signed in as
  the analyst, each page of PAGES (overview/ranking, region drill-down, store with its robots,
  silent robots, CSV and Parquet export; the ranking and silent robots are paged 50 a page, and
  `page 2` is the ranking's second page), `--requests` GETs each: p50 / p95 ms to the first byte
  of the body, PostgreSQL and SQLite side by side, and for the exports also the time to the last
  byte (the whole file). The pages read the HQ summaries the refresh writes (retail_platform.hq),
  never raw events in bulk.

    .venv/bin/python benches/loop_funnel.py                               # 20 stores x 30 days x 300
    .venv/bin/python benches/loop_funnel.py --stores 1000 --days 30 --events 1667   # issue 23's scale
    .venv/bin/python benches/loop_funnel.py --stores 10 --days 30 --events 1667 --rollup-stores 1000
    # issue 23's 50 M events on PostgreSQL, loaded once, then measured again on the same data:
    nice -n 10 .venv/bin/python benches/loop_funnel.py --stores 1000 --days 30 --events 1667 \
        --engines postgresql --no-peer --keep \
        --pg-options "-c shared_buffers=2GB -c max_wal_size=8GB -c checkpoint_timeout=30min"
    nice -n 10 .venv/bin/python benches/loop_funnel.py --database postgresql://...kept... \
        --stores 1000 --days 30 --events 1667 --engines postgresql --no-peer
"""
from __future__ import annotations

import argparse
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

from retail_platform import funnel  # noqa: E402
from retail_platform import funnel_sets  # noqa: E402
from retail_platform import loop_schema as lt  # noqa: E402
from retail_platform import schema as t  # noqa: E402
from retail_platform.database import upgrade  # noqa: E402
from retail_platform.storage import Storage  # noqa: E402

BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-admin'
FIRST_DAY = '2026-09-01'
NOW = time.time()          # when the bench's events and receipts arrived


def conversation(rng: random.Random, robot: str, at: float, member: str, seq: list[int]) -> list[dict]:
    sku = f'SKU-{rng.randrange(500):04d}'
    kinds = [('customer_appeared', {'track_id': seq[0]}, ''),
             ('greeting', {'member': bool(member), 'vip': False, 'appointment': False}, member),
             ('dialogue_turn', {'intent': 'find_product', 'language': 'zh', 'confidence': 0.9,
                                'slots': {'category': 'tv'},
                                'products': [{'sku': sku, 'price_cny': 999.0}]}, member),
             ('recommendation', {'skus': [sku]}, member)]
    if rng.random() < 0.5:
        kinds += [('guide', {'zone': 'tv', 'status': 'started'}, member),
                  ('guide', {'zone': 'tv', 'status': 'arrived'}, member)]
    kinds.append(('session_end', {'reason': 'goodbye'}, member))
    out = []
    for i, (kind, data, customer) in enumerate(kinds):
        seq[0] += 1
        out.append(dict(robot_id=robot, event_id=f'e-{seq[0]}', time=at + i * 5, seq=seq[0],
                        type=kind, version=1, customer=customer, data=json.dumps(data),
                        received_at=NOW))
    return out


def store_month(rng: random.Random, store: str, starts: list[float], per_day: int
                ) -> tuple[list[dict], list[dict]]:
    """One store's events (EVENT_COLUMNS dicts) and receipts over the days starting at `starts`:
    conversations from 10:00, a share of the members buying what they were recommended."""
    rows: list[dict] = []
    receipts: list[dict] = []
    seq = [0]
    for start in starts:
        at = start + 10 * 3600
        made = 0
        while made < per_day:
            member = f'm-{rng.randrange(20000):05d}' if rng.random() < 0.4 else ''
            conv = conversation(rng, f'robot-{store}', at, member, seq)
            for r in conv:
                r['store_id'] = store
            rows += conv
            made += len(conv)
            if member and rng.random() < 0.2:
                sku = json.loads(conv[3]['data'])['skus'][0]
                receipts.append(dict(receipt_id=f'{store}-{len(receipts)}', store_id=store,
                                     time=at + 3600, customer=member, code='',
                                     lines=json.dumps([{'sku': sku, 'qty': 1, 'price_cny': 999.0}]),
                                     total_cny=999.0, imported_at=NOW))
            at += 43200 / max(per_day / 7, 1)
    return rows, receipts


def store_month_copy(rng: random.Random, store: str, starts: list[float], per_day: int
                     ) -> tuple[str, str]:
    """`store_month`'s rows (the same random draws, so the same data for a seed) as the text of
    COPY for events (EVENT_COLUMNS) and receipts, built from per-kind templates: the 50 M-event
    month is generated in minutes, not the hour the dicts and `json.dumps` per event took."""
    robot = f'robot-{store}'
    ev: list[str] = []
    rc: list[str] = []
    seq = 0
    receipts = 0
    now = repr(NOW)
    for start in starts:
        at = start + 10 * 3600
        made = 0
        while made < per_day:
            member = f'm-{rng.randrange(20000):05d}' if rng.random() < 0.4 else ''
            sku = f'SKU-{rng.randrange(500):04d}'
            guided = rng.random() < 0.5
            flag = 'true' if member else 'false'
            docs = [('customer_appeared', f'{{"track_id": {seq}}}', ''),
                    ('greeting', f'{{"member": {flag}, "vip": false, "appointment": false}}',
                     member),
                    ('dialogue_turn', '{"intent": "find_product", "language": "zh", '
                     '"confidence": 0.9, "slots": {"category": "tv"}, "products": '
                     f'[{{"sku": "{sku}", "price_cny": 999.0}}]}}', member),
                    ('recommendation', f'{{"skus": ["{sku}"]}}', member)]
            if guided:
                docs += [('guide', '{"zone": "tv", "status": "started"}', member),
                         ('guide', '{"zone": "tv", "status": "arrived"}', member)]
            docs.append(('session_end', '{"reason": "goodbye"}', member))
            for i, (kind, data, customer) in enumerate(docs):
                seq += 1
                ev.append(f'{robot}\te-{seq}\t{at + i * 5!r}\t{seq}\t{store}\t{kind}\t1\t'
                          f'{customer}\t{data}\t{now}\n')
            made += len(docs)
            if member and rng.random() < 0.2:
                rc.append(f'{store}-{receipts}\t{store}\t{at + 3600!r}\t{member}\t\t'
                          f'[{{"sku": "{sku}", "qty": 1, "price_cny": 999.0}}]\t999.0\t{now}\n')
                receipts += 1
            at += 43200 / max(per_day / 7, 1)
    return ''.join(ev), ''.join(rc)


RECEIPT_COLUMNS = ('receipt_id', 'store_id', 'time', 'customer', 'code', 'lines', 'total_cny',
                   'imported_at')


def populate(target: str, stores: int, days: int, per_day: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    storage = Storage(target)
    upgrade(storage.engine)
    ids = [f's-{i:04d}' for i in range(stores)]
    with storage.engine.begin() as c:
        c.execute(t.regions.insert().values(id='r-1', organisation_id='chain', name='East'))
        c.execute(t.stores.insert(), [dict(id=s, region_id='r-1', name=f'Store {s}', created_at=0)
                                      for s in ids])
        c.execute(t.robots.insert(), [dict(robot_id=f'robot-{s}', store_id=s, registered_at=0)
                                      for s in ids])
    starts = [(funnel.day_bounds(FIRST_DAY)[0] + d * 86400) for d in range(days)]
    if storage.postgresql:
        _restore_load(storage, ids, starts, per_day, rng)
    else:
        for s in ids:
            rows, receipts = store_month(rng, s, starts, per_day)
            _bulk(storage, rows)
            with storage.engine.begin() as c:
                if receipts:
                    c.execute(lt.receipts.insert(), receipts)
    storage.close()
    return ids


def _restore_load(storage: Storage, ids: list[str], starts: list[float], per_day: int,
                  rng: random.Random) -> None:
    """PostgreSQL: load the events as a restore does (pg_restore: COPY the rows, then build the
    indexes and constraints): the events table's indexes and primary key dropped, every store's
    month COPied (text format) into `events` (its yearly partition), then the same indexes
    and key created again from their own definitions, with a large maintenance_work_mem."""
    with storage.engine.begin() as c:
        key = c.execute(sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'events'::regclass AND contype = 'p'")).one()
        indexes = c.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'events' AND indexname <> :key"), {'key': key[0]}).all()
        for name, _ in indexes:
            c.execute(sa.text(f'DROP INDEX {name}'))
        c.execute(sa.text(f'ALTER TABLE events DROP CONSTRAINT {key[0]}'))
    columns = ', '.join(t.EVENT_COLUMNS)
    began = time.perf_counter()
    for n, s in enumerate(ids):
        events, receipts = store_month_copy(rng, s, starts, per_day)
        with storage.engine.begin() as c:
            raw = c.connection.driver_connection
            with raw.cursor() as cursor:
                with cursor.copy(f'COPY events ({columns}) FROM STDIN') as copy:
                    copy.write(events)
                if receipts:
                    with cursor.copy(f'COPY receipts ({", ".join(RECEIPT_COLUMNS)}) '
                                     'FROM STDIN') as copy:
                        copy.write(receipts)
        if (n + 1) % 50 == 0:
            print(f'loaded {n + 1} stores, {time.perf_counter() - began:.0f} s', file=sys.stderr,
                  flush=True)
    LOAD['copy_s'] = time.perf_counter() - began
    build_indexes(storage.engine, [f'ALTER TABLE events ADD CONSTRAINT {key[0]} {key[1]}',
                                   # pg_indexes says ON ONLY (the parent alone): built on
                                   # every partition, as the migrations created them
                                   *[definition.replace(' ON ONLY ', ' ON ')
                                     for _, definition in indexes]])
    print(f'COPY {LOAD["copy_s"]:.0f} s, indexes and key {LOAD["index_s"]:.0f} s',
          file=sys.stderr, flush=True)


LOAD: dict[str, float] = {}


def build_indexes(engine: sa.Engine, statements: list[str]) -> None:
    """The events' key and indexes built after the load (one pass over the rows each), then
    the planner's statistics; the platform's 60 s statement timeout lifted for this session."""
    began = time.perf_counter()
    with engine.connect() as c:
        c = c.execution_options(isolation_level='AUTOCOMMIT')
        c.execute(sa.text('SET statement_timeout = 0'))
        c.execute(sa.text("SET maintenance_work_mem = '1GB'"))
        for statement in statements:
            c.execute(sa.text(statement))
            print(f'{statement[:70]}: {time.perf_counter() - began:.0f} s', file=sys.stderr,
                  flush=True)
        invalid = c.execute(sa.text(      # every index valid (a parent's: all its partitions)
            'SELECT count(*) FROM pg_index WHERE NOT indisvalid')).scalar()
        assert invalid == 0, f'{invalid} invalid indexes after the load'
        c.execute(sa.text('ANALYZE events'))
        c.execute(sa.text('ANALYZE receipts'))
    LOAD['index_s'] = time.perf_counter() - began


def _bulk(storage: Storage, rows: list[dict]) -> None:
    if not storage.postgresql:
        with storage.engine.begin() as c:
            c.execute(t.events.insert(), rows)
        return
    with storage.engine.begin() as c:
        raw = c.connection.driver_connection
        columns = ', '.join(t.EVENT_COLUMNS)
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY events ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row([row[name] for name in t.EVENT_COLUMNS])


def measure(target: str, args) -> dict:
    global NOW
    NOW = time.time()
    LOAD.clear()
    loaded = time.perf_counter()
    if args.database:          # loaded before (--keep): its stores, every rollup cleared
        storage = Storage(target)
        with storage.engine.connect() as c:
            ids = list(c.execute(sa.select(t.stores.c.id).where(~t.stores.c.id.like('x-%'))
                                 .order_by(t.stores.c.id)).scalars())
        if not args.pages_only:
            clear(storage.engine)
        with storage.engine.begin() as c:   # and what a previous run added after the load
            c.execute(t.fleet_heartbeats.delete())
            c.execute(t.events.delete().where(      # late_day's event (by the key's prefix)
                t.events.c.robot_id == f'robot-{ids[len(ids) // 2]}',
                t.events.c.event_id.like('late-%')))
        storage.close()
        NOW = max(NOW, time.time())
    else:
        ids = populate(target, args.stores, args.days, args.events)
    load_s = time.perf_counter() - loaded
    if args.pages_only:        # the rollups a previous run left: the pages alone
        storage = Storage(target)
        heartbeats(storage)
        with storage.engine.connect() as c:
            c.execution_options(isolation_level='AUTOCOMMIT').execute(sa.text('ANALYZE'))
            events = c.execute(sa.select(sa.func.count()).select_from(t.events)).scalar()
        storage.close()
        return {'events': events, **page_latency(target, ids[0], args.requests)}
    storage = Storage(target)
    engine = storage.engine
    started = time.perf_counter()
    recomputed = funnel.refresh(engine)
    month_s = time.perf_counter() - started
    peer: dict = {}
    if args.peer:
        sets = rollups(engine)
        clear(engine)
        started = time.perf_counter()
        again = funnel.refresh(engine, method='stores')
        peer = {'month_stores_s': time.perf_counter() - started, 'store_days_stores': again}
        assert rollups(engine) == sets, 'the per-store path and the set-based one differ'
    one, one_sets, pure = [], [], []
    for i, store in enumerate(ids[:9]):     # nine different store-days (store i, day i)
        day = _day(i % args.days)
        start, end = funnel.day_bounds(day)
        began = time.perf_counter()
        funnel_sets.recompute(engine, [(store, day)], force=True)
        one_sets.append(time.perf_counter() - began)
        began = time.perf_counter()
        funnel.recompute(engine, store, day)
        one.append(time.perf_counter() - began)
        with engine.connect() as c:
            evs = funnel._events(c, store, start, end)
            rcs = funnel._receipts(c, store, start, end + 7 * 86400)
        began = time.perf_counter()
        funnel.compute_store_day(day, evs, rcs, [], [f'robot-{store}'])
        pure.append(time.perf_counter() - began)
    with engine.connect() as c:
        events = c.execute(sa.select(sa.func.count()).select_from(t.events)).scalar()
    late: dict = {}
    if args.settle:      # once the uploads are older than the refresh's overlap window
        time.sleep(max(0.0, NOW + funnel.WATERMARK_OVERLAP_S + 1 - time.time()))
        funnel.refresh(engine)          # the refresh that passes the overlap window (nothing new)
        late = late_day(storage, ids[len(ids) // 2], args.days)
    if args.rollup_stores > len(ids):
        synthetic_rollups(storage, ids[0], args.rollup_stores - len(ids))
    heartbeats(storage)
    with storage.engine.connect() as c:     # a bulk load ends with fresh planner statistics
        if storage.postgresql:              # (autovacuum would get there within a minute)
            c.execution_options(isolation_level='AUTOCOMMIT').execute(sa.text('ANALYZE'))
    storage.close()
    pages = page_latency(target, ids[0], args.requests)
    return {'events': events, 'load_s': load_s, **LOAD, 'store_days': recomputed,
            'month_s': month_s,
            **peer, 'one_day_ms': statistics.median(one) * 1000,
            'one_day_sets_ms': statistics.median(one_sets) * 1000,
            'pure_ms': statistics.median(pure) * 1000, **late, **pages}


def _day(offset: int) -> str:
    from datetime import date, timedelta
    return (date.fromisoformat(FIRST_DAY) + timedelta(days=offset)).isoformat()


def rollups(engine: sa.Engine) -> dict:
    f = lt.funnel_daily.c
    with engine.connect() as c:
        return {(r.store_id, r.day): (r.metrics, r.inputs)
                for r in c.execute(sa.select(f.store_id, f.day, f.metrics, f.inputs))}


def clear(engine: sa.Engine) -> None:
    """No rollups, no watermark: the next refresh recomputes every store-day."""
    with engine.begin() as c:
        for table in (lt.funnel_daily, lt.hq_store_days, lt.hq_store_months, lt.hq_campaign_days,
                      lt.hq_robot_last, lt.loop_state):
            c.execute(table.delete())


def synthetic_rollups(storage: Storage, model: str, more: int) -> None:
    """`more` stores (one robot each) whose rollups are copies of `model`'s store-days, so
    the pages read a chain of that many stores (rollup-level data: the pages read rollups only)."""
    f = lt.funnel_daily.c
    with storage.engine.begin() as c:
        rows = [dict(r._mapping) for r in c.execute(sa.select(lt.funnel_daily)
                                                    .where(f.store_id == model))]
        ids = [f'x-{i:04d}' for i in range(more)]
        c.execute(t.stores.insert(), [dict(id=s, region_id='r-1', name=f'Store {s}', created_at=0)
                                      for s in ids])
        c.execute(t.robots.insert(), [dict(robot_id=f'robot-{s}', store_id=s, registered_at=0)
                                      for s in ids])
        summary = [dict(r._mapping) for r in c.execute(sa.select(lt.hq_store_days)
                                                       .where(lt.hq_store_days.c.store_id == model))]
        for start in range(0, len(ids), 50):
            c.execute(lt.funnel_daily.insert(), [dict(r, store_id=s) for s in ids[start:start + 50]
                                                 for r in rows])
            c.execute(lt.hq_store_days.insert(), [dict(r, store_id=s)   # and their HQ summaries
                                                  for s in ids[start:start + 50] for r in summary])
        if hasattr(funnel, 'write_months'):              # and their months (0012_hq_figures)
            days = [r['day'] for r in summary]
            for s in ids:
                funnel.write_months(c, s, days)


def heartbeats(storage: Storage) -> None:
    """Every robot's last heartbeat (as `Fleet.record_heartbeat` keeps it): the fleet table of
    `/hq` lists every store, a fifth of the robots silent (their last heartbeat 10 periods old)."""
    with storage.engine.begin() as c:
        robots = c.execute(sa.select(t.robots.c.robot_id, t.robots.c.store_id)).all()
        beat = json.dumps({'software_version': '1.0.0', 'battery_percent': 80.0,
                           'sync_backlog': 0, 'safety_stop': False})
        now = time.time()
        c.execute(t.fleet_heartbeats.insert(), [    # a heartbeat a day (ok through the bench)
            dict(robot_id=r.robot_id, store_id=r.store_id, heartbeat=beat, state='ok',
                 **(dict(period_s=86400.0, received_at=now) if i % 5 else
                    dict(period_s=30.0, received_at=now - 300.0)))
            for i, r in enumerate(robots)])


def late_day(storage: Storage, store: str, days: int) -> dict:
    """A late event for one store-day of the month (not a touch: only that day is dirty), then
    the refresh the background refresher would run: its time and what it recomputed."""
    day_start = funnel.day_bounds(FIRST_DAY)[0] + (days // 2) * 86400
    seq = 10 ** 12
    rows = [dict(robot_id=f'robot-{store}', event_id=f'late-{seq}', time=day_start + 15 * 3600,
                 seq=seq, type='customer_appeared', version=1, customer='', store_id=store,
                 data=json.dumps({'track_id': 999999}), received_at=time.time())]
    _bulk(storage, rows)
    began = time.perf_counter()
    recomputed = funnel.refresh(storage.engine)
    return {'late_refresh_ms': (time.perf_counter() - began) * 1000, 'late_recomputed': recomputed}


PAGES = (('overview', '/hq'),                     # ranking, funnel, trend, campaigns, silent robots
         ('page 2', '/hq?page=2'),              # the ranking's stores 51-100 (paged by the database)
         ('region', '/hq/regions/r-1'),         # region drill-down (every store of the bench)
         ('store', '/hq/stores/{store}'),       # store: its days, robots, campaigns, fleet
         ('silent', '/hq?silent=1'),            # silent robots after 1 minute: every robot listed
         ('csv', '/hq/export.csv'),             # exports: time to the first byte
         ('parquet', '/hq/export.parquet'))


def page_latency(target: str, store: str, requests: int) -> dict:
    port = free_port()
    storage = Storage(target)
    token = storage.issue_staff_token('analyst', 'bench')
    storage.close()
    cli = [str(BIN / 'retailbot')] if (BIN / 'retailbot').exists() else [   # before `make install`
        sys.executable, '-c', 'import sys; from retail_bringup.cli import main; sys.exit(main())']
    process = subprocess.Popen([*cli, 'platform', 'serve', '--database', target,
                                '--port', str(port), '--token', ADMIN], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=60) as client:
            login = client.post('/hq/login', data={'token': token}, headers={'Origin': url})
            assert login.status_code == 303, login.text
            rng = f'?from={FIRST_DAY}&to=2026-09-30'
            out = {}
            for name, path in PAGES:
                path = path.format(store=store) + (rng.replace('?', '&') if '?' in path else rng)
                client.get(path)
                times, whole = [], []
                for _ in range(requests):
                    began = time.perf_counter()
                    with client.stream('GET', path) as answer:   # the first byte of the body
                        assert answer.status_code == 200, (path, answer.status_code)
                        body = answer.iter_raw()
                        next(body, b'')
                        times.append((time.perf_counter() - began) * 1000)
                        for _ in body:                             # the rest
                            pass
                        whole.append((time.perf_counter() - began) * 1000)
                times.sort()
                whole.sort()
                out[f'{name}_p50_ms'] = statistics.median(times)
                out[f'{name}_p95_ms'] = times[min(len(times) - 1, int(0.95 * len(times)))]
                out[f'{name}_whole_p50_ms'] = statistics.median(whole)
                out[f'{name}_whole_p95_ms'] = whole[min(len(whole) - 1, int(0.95 * len(whole)))]
            return out
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--stores', type=int, default=20)
    parser.add_argument('--days', type=int, default=30)
    parser.add_argument('--events', type=int, default=300, help='events per store-day')
    parser.add_argument('--requests', type=int, default=30, help='GETs per page')
    parser.add_argument('--engines', default='postgresql,sqlite')
    parser.add_argument('--rollup-stores', type=int, default=0,
                        help='pages measured over this many stores: the others get copies of the '
                             'first store\'s rollups (rollup-level synthetic data)')
    parser.add_argument('--no-peer', dest='peer', action='store_false',
                        help='skip the per-store recompute of the month (the set-based one only)')
    parser.add_argument('--no-settle', dest='settle', action='store_false',
                        help='measure the pages at once, while every store-day is still inside '
                             'the refresh\'s overlap window (each refresh re-checks them all)')
    parser.add_argument('--pg-options', default='',
                        help='more PostgreSQL server settings for the throwaway cluster, e.g. '
                             '"-c shared_buffers=1GB -c max_wal_size=8GB"')
    parser.add_argument('--database', default='',
                        help='measure on a database a previous run loaded and kept (--keep): '
                             'its rollups cleared, nothing loaded')
    parser.add_argument('--pages-only', action='store_true',
                        help='with --database: only the pages, over the rollups it holds')
    parser.add_argument('--keep', action='store_true',
                        help='leave the PostgreSQL cluster running afterwards (for EXPLAIN)')
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix='loop-bench-') as folder:
        for engine in args.engines.split(','):
            if args.database:
                results[args.database.partition(':')[0]] = measure(args.database, args)
                break
            if engine == 'sqlite':
                results[engine] = measure(str(Path(folder) / 'platform.sqlite3'), args)
            else:
                cluster = Cluster(args.pg_options)
                url = cluster.url(cluster.new_database())
                try:
                    results[engine] = measure(url, args)
                finally:
                    if args.keep:
                        print(f'kept: {url} in {cluster.root} (stop it with pg_ctl '
                              f'-D {cluster.data} stop, then remove the folder)', file=sys.stderr)
                    else:
                        cluster.remove()
    print(f'{args.stores} stores x {args.days} days x {args.events} events per store-day'
          + (f'; pages over {args.rollup_stores} stores (rollup-level synthetic copies)'
             if args.rollup_stores > args.stores else ''))
    print('| engine | events | month set-based (store-days/s) | month per store-day, peer | '
          'speed-up | one dirty store-day set-based / per day (median) | pure compute of it | '
          'late event: refresh (store-days) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for engine, r in results.items():
        if 'month_s' not in r:      # --pages-only
            print(f'| {engine} | {r["events"]:,} | – | – | – | – | – | – |')
            continue
        late = (f'{r["late_refresh_ms"]:.0f} ms ({r["late_recomputed"]})'
                if 'late_refresh_ms' in r else '–')
        peer = (f'{r["month_stores_s"]:.1f} s', f'{r["month_stores_s"] / r["month_s"]:.1f}x') \
            if 'month_stores_s' in r else ('–', '–')
        print(f'| {engine} | {r["events"]:,} | {r["month_s"]:.1f} s '
              f'({r["store_days"] / r["month_s"]:.0f}) | {peer[0]} | {peer[1]} | '
              f'{r["one_day_sets_ms"]:.0f} / {r["one_day_ms"]:.0f} ms | '
              f'{r["pure_ms"]:.0f} ms | {late} |')
    engines = list(results)
    print()
    print('| page (time to first byte) | ' + ' | '.join(f'{e} p50 / p95' for e in engines)
          + (' | SQLite / PostgreSQL p95 |' if len(engines) == 2 else ' |'))
    print('| --- |' + ' --- |' * (len(engines) + (len(engines) == 2)))
    for name, _ in PAGES:
        cells = [f'{results[e][f"{name}_p50_ms"]:.0f} / {results[e][f"{name}_p95_ms"]:.0f} ms'
                 for e in engines]
        ratio = ([f'{results[engines[1]][f"{name}_p95_ms"] / results[engines[0]][f"{name}_p95_ms"]:.2f}']
                 if len(engines) == 2 else [])
        print(f'| {name} | ' + ' | '.join(cells + ratio) + ' |')
        if name in ('csv', 'parquet'):
            cells = [f'{results[e][f"{name}_whole_p50_ms"]:.0f} / '
                     f'{results[e][f"{name}_whole_p95_ms"]:.0f} ms' for e in engines]
            print(f'| {name}, whole file | ' + ' | '.join(cells + (['–'] if ratio else [])) + ' |')
    print(json.dumps(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
