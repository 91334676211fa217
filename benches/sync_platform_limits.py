"""Sync benchmark: what a gzip bomb costs the platform, ours against the old whole-body peer.

A 1 GiB-of-zeros gzip body (about 1 MB on the wire) is handed, in a fresh process each time, to
- ours: `platform_app.gunzip_limited` (1 MiB steps, refused past MAX_DECOMPRESSED = 64 MiB);
- peer: `gzip.decompress` of the whole body (what the platform did before: all of it, at once).
Each run reports the time to answer (imports excluded) and the process's peak RSS (ru_maxrss,
imports included); the script prints medians over
--repeat runs and the ratios peer/ours. Timings are noisy on shared machines: compare ratios.

    .venv/bin/python benches/sync_platform_limits.py               # 1 GiB bomb, 3 repeats
    .venv/bin/python benches/sync_platform_limits.py --gib 0.25 --repeat 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r'''
import gzip, json, resource, sys, time
body = open(sys.argv[2], 'rb').read()
if sys.argv[1] == 'ours':
    from fastapi import HTTPException
    from retail_platform.app import gunzip_limited
start = time.perf_counter()
if sys.argv[1] == 'ours':
    try:
        gunzip_limited(body)
        outcome = 'accepted'
    except HTTPException as exc:
        outcome = f'refused {exc.status_code}'
else:
    outcome = f'inflated {len(gzip.decompress(body))} bytes'
print(json.dumps({'seconds': time.perf_counter() - start, 'outcome': outcome,
                  'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def bomb(gib: float) -> bytes:
    import gzip
    member = gzip.compress(b'\0' * (16 << 20), compresslevel=9)
    return member * max(1, int(gib * 64))


def measure(which: str, path: Path) -> dict:
    result = subprocess.run([sys.executable, '-c', CHILD, which, str(path)], capture_output=True,
                            text=True, check=True, timeout=600)
    return json.loads(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gib', type=float, default=1.0, help='decompressed size of the bomb (GiB)')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each (default 3)')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'bomb.gz'
        path.write_bytes(bomb(args.gib))
        compressed = path.stat().st_size
        runs = {'ours': [], 'peer': []}
        for i in range(args.repeat):
            for which in runs:
                runs[which].append(measure(which, path))
            print(f'run {i + 1}: ours {runs["ours"][-1]}; peer {runs["peer"][-1]}', file=sys.stderr)
    med = {which: {key: statistics.median(r[key] for r in values) for key in ('seconds', 'peak_rss_mib')}
           for which, values in runs.items()}
    print(json.dumps({
        'bomb_compressed_bytes': compressed,
        'bomb_decompressed_gib': args.gib,
        'ours_outcome': runs['ours'][0]['outcome'], 'peer_outcome': runs['peer'][0]['outcome'],
        'ours_seconds_median': round(med['ours']['seconds'], 3),
        'peer_seconds_median': round(med['peer']['seconds'], 3),
        'ours_peak_rss_mib_median': round(med['ours']['peak_rss_mib']),
        'peer_peak_rss_mib_median': round(med['peer']['peak_rss_mib']),
        'ratio_time_peer_vs_ours': round(med['peer']['seconds'] / med['ours']['seconds'], 1),
        'ratio_rss_peer_vs_ours': round(med['peer']['peak_rss_mib'] / med['ours']['peak_rss_mib'], 1),
    }, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
