"""`0016_hq_funnel_indexes` on a loaded PostgreSQL platform database while ingest inserts:
this tree's migration (online_ddl: CONCURRENTLY per partition, then attached) against another
tree's (`--before DIR`, e.g. the plain CREATE INDEX in the migration's transaction).

For each variant in turn (`--rounds` times, alternating): the database is taken down to
0015_robot_hours (this tree's downgrade: the two indexes dropped), then one inserter thread
writes events (a batch of `--batch` rows per transaction, store and time of the loaded month,
through the parent table as ingest does) back to back while a subprocess runs the variant's
`retail_platform.database.upgrade` (its own PYTHONPATH). Reported per variant: the migration's
seconds, the inserts committed during it, the longest single insert transaction and the
longest gap between two commits during the migration, p99 of the insert transactions; the
1-minute load average. The inserted rows are deleted afterwards; the database ends at the head
of this tree.

    nice -n 10 .venv/bin/python benches/migration_online_index.py \\
        --database postgresql://...kept... --before /tmp/hq-before
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from retail_platform.database import create_engine, migrate

HERE = Path(__file__).resolve().parents[1]
BEFORE = '0015_robot_hours'
ROBOT = 'bench-migration'


def load() -> float:
    return float(Path('/proc/loadavg').read_text().split()[0])


def upgrade_with(tree: Path, database: str) -> float:
    env = dict(os.environ, PYTHONPATH=':'.join(str(p) for p in sorted((tree / 'src').glob('*/'))))
    began = time.perf_counter()
    subprocess.run([sys.executable, '-c', 'import sys; from retail_platform.database import '
                    'create_engine, upgrade; print(upgrade(create_engine(sys.argv[1])))',
                    database], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - began


def inserter(engine: sa.Engine, batch: int, store: str, at: float, stop: threading.Event,
             out: list[tuple[float, float]]) -> None:
    """Insert transactions back to back until `stop`: (commit time, seconds) of each."""
    statement = sa.text('INSERT INTO events (robot_id, event_id, time, seq, store_id, type, '
                        'version, customer, data, received_at) VALUES (:robot_id, :event_id, '
                        ':time, :seq, :store_id, :type, 1, \'\', \'{}\', :received_at)')
    seq = 0
    while not stop.is_set():
        rows = []
        for _ in range(batch):
            seq += 1
            rows.append(dict(robot_id=ROBOT, event_id=uuid.uuid4().hex, time=at + seq * 0.001,
                             seq=seq, store_id=store,
                             type=('recommendation', 'dialogue_turn')[seq % 2],
                             received_at=time.time()))
        began = time.perf_counter()
        with engine.begin() as c:
            c.execute(statement, rows)
        out.append((time.perf_counter(), time.perf_counter() - began))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--database', required=True)
    parser.add_argument('--before', required=True, type=Path)
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--batch', type=int, default=50, help='events per insert transaction')
    args = parser.parse_args()
    engine = create_engine(args.database)
    with engine.connect() as c:
        store, at = c.execute(sa.text('SELECT store_id, time FROM events WHERE store_id IS NOT '
                                      'NULL ORDER BY robot_id, event_id LIMIT 1')).one()
        events = c.execute(sa.text('SELECT reltuples::bigint FROM pg_class '
                                   "WHERE relname = 'events_2026'")).scalar()
    trees = {'before': args.before.resolve(), 'after': HERE}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        for r in range(args.rounds):
            for name in (list(trees) if r % 2 == 0 else list(reversed(trees))):
                migrate(engine, command.downgrade, BEFORE)
                stop = threading.Event()
                done: list[tuple[float, float]] = []
                thread = threading.Thread(target=inserter,
                                          args=(engine, args.batch, store, at, stop, done))
                thread.start()
                time.sleep(2.0)                     # inserting before the migration starts
                loads = [load()]
                started = time.perf_counter()
                seconds = upgrade_with(trees[name], args.database)
                ended = time.perf_counter()
                time.sleep(2.0)
                stop.set()
                thread.join()
                loads.append(load())
                during = [d for at_, d in done if started <= at_ <= ended]
                commits = [started] + [at_ for at_, _ in done if started <= at_ <= ended] + [ended]
                longest = max(d for at_, d in done if at_ >= started)
                results[name].append({
                    'migration_s': seconds, 'inserts_during': len(during),
                    'longest_insert_s': longest,
                    'longest_gap_s': max(b - a for a, b in zip(commits, commits[1:])),
                    'p99_insert_ms': 1000 * sorted(during)[int(0.99 * (len(during) - 1))]
                    if during else None,
                    'median_insert_ms': 1000 * statistics.median(during) if during else None,
                    'load': loads})
                print(name, json.dumps(results[name][-1]), file=sys.stderr, flush=True)
    finally:
        with engine.begin() as c:
            c.execute(sa.text('DELETE FROM events WHERE robot_id = :r'), {'r': ROBOT})
        migrate(engine, command.upgrade, 'head')
        engine.dispose()
    print(f'0016 on {events:,} events (events_2026, estimated) while one thread inserts '
          f'{args.batch} events per transaction back to back')
    print('| variant | migration | inserts committed during it | longest insert | longest gap '
          'between commits | insert p50 / p99 | load |')
    print('| --- | --- | --- | --- | --- | --- | --- |')
    for name, runs in results.items():
        for x in runs:
            print(f'| {name} | {x["migration_s"]:.1f} s | {x["inserts_during"]} | '
                  f'{x["longest_insert_s"]:.2f} s | {x["longest_gap_s"]:.2f} s | '
                  f'{x["median_insert_ms"] or 0:.0f} / {x["p99_insert_ms"] or 0:.0f} ms | '
                  f'{x["load"][0]:.1f}-{x["load"][1]:.1f} |')
    print(json.dumps(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
