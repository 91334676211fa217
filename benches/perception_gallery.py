"""Gallery search vs face_recognition.face_distance over the same gallery; memory at 100 000 members.

    .venv/bin/python benches/perception_gallery.py [--sizes 1000 100000 1000000] [--queries 30]

Members are random 128-d vectors shaped like dlib embeddings (norm ~1); each query is a member's
vector plus noise, so both sides must find that member. The peer is the library's documented
use: face_distance(known_encodings, encoding) then argmin, with known_encodings as the float64
array face_encodings returns. Goal: >= 10x faster at 100 000 members, same answers. Memory is
measured in a fresh process that loads a 100 000-member encrypted gallery from disk next to the
face models, as the faces node does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np


def random_gallery(n: int, seed: int = 0):
    from retail_perception.gallery import Gallery, Member
    rng = np.random.default_rng(seed)
    vectors = rng.normal(0.0, 1.0, (n, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f'c{i:07d}' for i in range(n)]
    members = {cid: Member(cid, f'member {i}', i % 100 == 0, f'consent-{i}', 0.0, 0.0, 1)
               for i, cid in enumerate(ids)}
    return Gallery(members, vectors, ids), vectors, ids


def timed(func, queries) -> tuple[float, list]:
    times, answers = [], []
    for query in queries:
        started = time.perf_counter()
        answers.append(func(query))
        times.append(time.perf_counter() - started)
    return statistics.median(times), answers


def rss_mb() -> float:
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def memory_probe(directory: str, key_hex: str) -> None:
    """Child process: RSS with the face models, then with the gallery loaded."""
    from retail_perception.face_model import FaceModel
    from retail_perception.gallery import GalleryStore
    FaceModel()
    before = rss_mb()
    started = time.perf_counter()
    gallery = GalleryStore(directory, bytes.fromhex(key_hex)).load()
    load_s = time.perf_counter() - started
    print(f'{len(gallery)} {before:.0f} {rss_mb():.0f} {load_s:.2f}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1000, 100_000, 1_000_000])
    parser.add_argument('--queries', type=int, default=30)
    parser.add_argument('--memory-probe', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(*args.memory_probe)
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import face_recognition
    rng = np.random.default_rng(1)
    print(f'{"members":>9} {"ours ms":>9} {"face_distance ms":>17} {"speed-up":>9} {"same answers":>13}')
    ok = True
    for n in args.sizes:
        gallery, vectors, ids = random_gallery(n)
        known = vectors.astype(np.float64)
        targets = rng.integers(0, n, args.queries)
        queries = [vectors[t] + rng.normal(0, 0.02, 128).astype(np.float32) for t in targets]
        ours_s, ours = timed(lambda q: gallery.search(q, 0.5, 0.05).best_id, queries)
        peer_s, peer = timed(lambda q: ids[int(np.argmin(face_recognition.face_distance(known, q)))], queries)
        same = ours == peer == [ids[t] for t in targets]
        ratio = peer_s / ours_s
        print(f'{n:9d} {ours_s * 1e3:9.3f} {peer_s * 1e3:17.3f} {ratio:8.1f}x {str(same):>13}')
        if n == 100_000:
            ok = ok and ratio >= 10 and same
        del gallery, vectors, known

    from retail_perception.gallery import GalleryStore
    with tempfile.TemporaryDirectory() as directory:
        key = os.urandom(32)
        gallery, _, _ = random_gallery(100_000)
        GalleryStore(directory, key).save(gallery)
        size_mb = os.path.getsize(os.path.join(directory, 'gallery.enc')) / 2 ** 20
        out = subprocess.run([sys.executable, __file__, '--memory-probe', directory, key.hex()],
                             capture_output=True, text=True, check=True).stdout.split()
    members, before, after, load_s = int(out[0]), float(out[1]), float(out[2]), float(out[3])
    print(f'memory: face models {before:.0f} MB RSS; with {members} members loaded {after:.0f} MB '
          f'(+{after - before:.0f} MB); encrypted file {size_mb:.0f} MB, decrypt+load {load_s:.2f} s')
    print('goal met' if ok else 'goal NOT met')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
