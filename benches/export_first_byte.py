"""The funnel's exports over HTTP, this tree against another (the code before a change) on the
same database in the same run: time to the first byte, to the first data row and to the last
byte, and the serve process's peak memory.

Two `retailbot platform serve` processes on one platform database (a database `loop_funnel.py
--keep` loaded: its rollups and HQ summaries), one importing this tree's packages, the other
those of `--before DIR` (e.g. `git archive <rev> | tar -x -C DIR`): each process's PYTHONPATH
is its tree's `src/*/`. Both signed in as an analyst (the pages) and called with an admin token
(the API). Then `--rounds` rounds; in each, every export (`/hq/export.csv`, `/hq/export.parquet`,
`/v1/funnel/export?format=csv|parquet`) is fetched once from each server, the servers' order
alternating round by round, so the machine's load falls on both alike. Per export and server:
p50 / p95 ms to the first byte of the body, to the first data row (CSV: the body holds a line
after the header; Parquet: the body holds more than the 4-byte magic, i.e. its first row group,
whose bytes go out together with the magic), and to the last byte; the ratio before / after of
the medians; the 1-minute load average before and after; each server's peak resident memory
(VmHWM) after the run. Every answer is read whole and checked: CSV lines and Parquet rows
counted (pyarrow) and equal between the two servers.

    nice -n 10 .venv/bin/python benches/export_first_byte.py --database postgresql://...kept... \\
        --before /tmp/hq-before --rounds 30
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests' / 'platform'))
from pg_support import free_port  # noqa: E402

HERE = Path(__file__).resolve().parents[1]
BIN = Path(sys.prefix) / 'bin'
ADMIN = 'bench-export-admin'
EXPORTS = (('pages csv', '/hq/export.csv'), ('pages parquet', '/hq/export.parquet'),
           ('api csv', '/v1/funnel/export?format=csv'),
           ('api parquet', '/v1/funnel/export?format=parquet'))


def load() -> float:
    return float(Path('/proc/loadavg').read_text().split()[0])


def serve(tree: Path, database: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=':'.join(str(p) for p in sorted((tree / 'src').glob('*/'))))
    cli = [str(BIN / 'retailbot')] if (BIN / 'retailbot').exists() else [
        sys.executable, '-c', 'import sys; from retail_bringup.cli import main; sys.exit(main())']
    process = subprocess.Popen([*cli, 'platform', 'serve', '--database', database, '--port',
                                str(port), '--token', ADMIN], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + '/v1/ready', timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f'the platform of {tree} did not answer within 90 s')


def fetch(client: httpx.Client, path: str) -> tuple[float, float, float, bytes]:
    """(first byte, first data row, last byte) in ms, and the body."""
    parquet = 'parquet' in path
    began = time.perf_counter()
    first = rows = None
    body = bytearray()
    with client.stream('GET', path) as answer:
        assert answer.status_code == 200, (path, answer.status_code)
        for chunk in answer.iter_raw():
            now = (time.perf_counter() - began) * 1000
            body += chunk
            if first is None and body:
                first = now
            if rows is None and (len(body) > 4 if parquet else body.count(b'\n') >= 2):
                rows = now
        whole = (time.perf_counter() - began) * 1000
    return first or whole, rows or whole, whole, bytes(body)


def count(path: str, body: bytes) -> int:
    if 'parquet' in path:
        import pyarrow.parquet as pq
        return pq.ParquetFile(io.BytesIO(body)).metadata.num_rows
    return body.count(b'\n') - 1


def peak_kib(process: subprocess.Popen) -> int:
    """The serve process tree's largest peak resident set (VmHWM), KiB: the API process."""
    pids = [process.pid]
    children = Path(f'/proc/{process.pid}/task/{process.pid}/children')
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    peaks = []
    for pid in pids:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmHWM:'):
                peaks.append(int(line.split()[1]))
    return max(peaks)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--database', required=True, help='a loaded platform database (URL)')
    parser.add_argument('--before', required=True, type=Path,
                        help='the other source tree (its src/*/ packages)')
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--range', default='2026-09-01,2026-09-30', help='from,to')
    args = parser.parse_args()
    first_day, last_day = args.range.split(',')
    from retail_platform.storage import Storage
    storage = Storage(args.database)
    analyst = storage.issue_staff_token('analyst', 'export bench')
    storage.close()
    trees = {'before': args.before.resolve(), 'after': HERE}
    servers = {name: serve(tree, args.database) for name, tree in trees.items()}
    results: dict = {name: {e: {'first': [], 'rows': [], 'whole': []} for e, _ in EXPORTS}
                     for name in trees}
    loads = [load()]
    clients: dict[str, dict[str, httpx.Client]] = {}
    try:
        for name, (_, url) in servers.items():
            pages = httpx.Client(base_url=url, timeout=120)
            login = pages.post('/hq/login', data={'token': analyst}, headers={'Origin': url})
            assert login.status_code == 303, login.text
            api = httpx.Client(base_url=url, timeout=120,
                               headers={'Authorization': f'Bearer {ADMIN}'})
            clients[name] = {'pages': pages, 'api': api}
        paths = [(export, path + ('&' if '?' in path else '?') + f'from={first_day}&to={last_day}')
                 for export, path in EXPORTS]
        sizes: dict = {}
        for export, path in paths:          # warm-up, and what each answer holds
            for name, client in clients.items():
                *_, body = fetch(client['api' if path.startswith('/v1') else 'pages'], path)
                sizes.setdefault(export, {})[name] = count(path, body)
            assert len(set(sizes[export].values())) == 1, (export, sizes[export])
        for r in range(args.rounds):
            order = list(clients) if r % 2 == 0 else list(reversed(clients))
            for export, path in paths:
                for name in order:
                    client = clients[name]['api' if path.startswith('/v1') else 'pages']
                    first, rows, whole, body = fetch(client, path)
                    assert count(path, body) == sizes[export][name]
                    for key, value in (('first', first), ('rows', rows), ('whole', whole)):
                        results[name][export][key].append(value)
            loads.append(load())
        peaks = {name: peak_kib(process) for name, (process, _) in servers.items()}
    finally:
        for both in clients.values():
            for client in both.values():
                client.close()
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    print(f'{args.rounds} rounds, servers alternating; load average (1 min) '
          f'{min(loads):.1f}-{max(loads):.1f}, median {statistics.median(loads):.1f}; '
          f'rows per export: {json.dumps({e: v["after"] for e, v in sizes.items()})}')
    print('| export | ms (p50 / p95) | before | after | before / after (p50) |')
    print('| --- | --- | --- | --- | --- |')
    summary: dict = {}
    for export, _ in EXPORTS:
        for key, words in (('first', 'first byte'), ('rows', 'first data row'),
                           ('whole', 'last byte')):
            cells = []
            for name in trees:
                v = results[name][export][key]
                summary[f'{name} {export} {key}'] = (statistics.median(v), pct(v, 0.95))
                cells.append(f'{statistics.median(v):.0f} / {pct(v, 0.95):.0f}')
            ratio = summary[f'before {export} {key}'][0] / max(summary[f'after {export} {key}'][0],
                                                               1e-9)
            print(f'| {export} | {words} | {cells[0]} | {cells[1]} | {ratio:.1f}x |')
    print(f'peak resident memory of the serve process: before {peaks["before"] / 1024:.0f} MiB, '
          f'after {peaks["after"] / 1024:.0f} MiB')
    print(json.dumps({'loads': loads, 'peaks_kib': peaks, 'sizes': sizes,
                      'summary': summary}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
