"""Why a walking-in member is missed, and whether mirror averaging (flip test-time augmentation)
brings them nearer: distance to their own rows against the nearest other person, by face width.

    .venv/bin/python benches/faces_mirror.py [--set tune|report] [--json]

Probes: the walk-in clips of benches/faces_walkin.py for the chosen identities (each person walks
in with one photo while the gallery holds the other, both directions, both backgrounds), YuNet on
every frame, the box fitted to dlib's. Gallery: every person of faces_walkin.PHOTOS enrolled from
one photo as `retailbot faces enroll` does (photo row + walk-in row), the lin-manuel-miranda photo
as one more impostor. Each face is encoded twice per variant: `plain` (one encoding, before s12) and
`mirror` (mean of the face's and its mirror image's encodings, face_model.MIRROR_AVERAGE), the
gallery rows made the same way. Per width bin: median distance to the member's nearest row, the
nearest other person's, share of single frames and of track means (last 3 frames from 35 px, as
the live rule) within 0.5 with the 0.05 margin; and the photo pairs at full resolution (genuine
pairs vs the nearest impostor pair). Choices are made on `--set tune` (obama, kit_harington); the
report identities are measured for the diagnosis only.
"""
from __future__ import annotations

import os

os.environ.setdefault('OMP_NUM_THREADS', '1')

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces_walkin as walkin  # noqa: E402

BINS = [(30, 35), (35, 40), (40, 45), (45, 50), (50, 60), (60, 1000)]
THRESHOLD, MARGIN, GATE, MEAN_OF = 0.5, 0.05, 35, 3


def nearest(rows: dict[str, np.ndarray], e: np.ndarray, person: str) -> tuple[float, float]:
    own = float(np.min(np.linalg.norm(rows[person] - e, axis=1)))
    other = min(float(np.min(np.linalg.norm(r - e, axis=1))) for p, r in rows.items() if p != person)
    return own, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--set', choices=tuple(walkin.SETS), default='tune')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    warnings.simplefilter('ignore')
    from retail_perception.face_model import FaceModel, load_bgr, to_rgb
    models = {'plain': FaceModel(detector='yunet', mirror=False), 'mirror': FaceModel(detector='yunet', mirror=True)}
    hog = FaceModel(detector='hog')
    faces = walkin.FACES
    galleries: dict[str, list[dict[str, np.ndarray]]] = {}
    photo_rows: dict[str, dict[str, np.ndarray]] = {}
    for variant, model in models.items():
        galleries[variant] = []
        for g in (0, 1):
            rows = {p: model.enrollment_encodings(faces / photos[g]) for p, photos in walkin.PHOTOS.items()}
            rows['lin'] = model.enrollment_encodings(faces / walkin.STRANGER)
            galleries[variant].append(rows)
        photo_rows[variant] = {p: model.enrollment_encoding(faces / p)
                               for photos in walkin.PHOTOS.values() for p in photos}
    backgrounds = [cv2.resize(cv2.imread(str(p)), (walkin.WIDTH, walkin.HEIGHT), interpolation=cv2.INTER_AREA)
                   for p in walkin.BACKGROUNDS]
    single: dict[str, dict] = {v: {b: [] for b in BINS} for v in models}
    mean3: dict[str, dict] = {v: {b: [] for b in BINS} for v in models}
    first: dict[str, list] = {v: [] for v in models}
    for k, (person, g) in enumerate((p, g) for p in walkin.SETS[args.set] for g in (0, 1)):
        walk = walkin.PHOTOS[person][1 - g]
        (hog_box,) = hog.detect(to_rgb(load_bgr(faces / walk)))
        for b, background in enumerate(backgrounds):
            clip = walkin.make_clip(faces / walk, person, background, 15, 3, seed=500 + 2 * k + b, hog_box=hog_box)
            track: dict[str, list] = {v: [] for v in models}
            named: dict[str, float | None] = {v: None for v in models}
            for frame, truth in zip(clip.frames, clip.truth):
                if truth is None:
                    continue
                rgb = to_rgb(frame)
                hits = [h for h in models['plain'].detect(rgb) if truth[3] <= (h[1] + h[3]) / 2 <= truth[1]
                        and truth[0] <= (h[0] + h[2]) / 2 <= truth[2]]
                if not hits:
                    continue
                width = walkin.truth_width(truth)
                bin_ = next((x for x in BINS if x[0] <= width < x[1]), None)
                for variant, model in models.items():
                    e = model.encode(rgb, hits[:1])[0]
                    rows = galleries[variant][g]
                    if bin_:
                        single[variant][bin_].append(nearest(rows, e, person))
                    if width < GATE:
                        continue
                    track[variant].append(e)
                    if len(track[variant]) >= 2:
                        own, other = nearest(rows, np.mean(track[variant][-MEAN_OF:], axis=0), person)
                        if bin_:
                            mean3[variant][bin_].append((own, other))
                        if named[variant] is None and own <= THRESHOLD and other - own >= MARGIN:
                            named[variant] = round(width, 1)
            for variant in models:
                first[variant].append(named[variant])
    out = {'set': args.set, 'variants': {}}
    for variant in models:
        def fig(pairs: list) -> dict:
            if not pairs:
                return {}
            own = [o for o, _ in pairs]
            return {'n': len(pairs), 'own_median': round(float(np.median(own)), 3),
                    'other_median': round(float(np.median([x for _, x in pairs])), 3),
                    'other_min': round(float(min(x for _, x in pairs)), 3),
                    'decided_right': round(float(np.mean([o <= THRESHOLD and x - o >= MARGIN for o, x in pairs])), 3)}
        pr = photo_rows[variant]
        genuine = {person: round(float(np.linalg.norm(pr[a] - pr[b])), 3) for person, (a, b) in walkin.PHOTOS.items()}
        owners = {p: person for person, photos in walkin.PHOTOS.items() for p in photos}
        impostor = min(float(np.linalg.norm(pr[a] - pr[b])) for a in pr for b in pr if owners[a] != owners[b])
        out['variants'][variant] = {
            'single': {f'{lo}-{hi}': fig(single[variant][(lo, hi)]) for lo, hi in BINS},
            'mean3': {f'{lo}-{hi}': fig(mean3[variant][(lo, hi)]) for lo, hi in BINS},
            'first_named_px': first[variant],
            'photo_pairs': {p: genuine[p] for p in walkin.SETS[args.set]},
            'nearest_impostor_photo_pair': round(impostor, 3)}
    if args.json:
        print(json.dumps(out))
        return 0
    for variant, v in out['variants'].items():
        print(f'{variant}: first named at {v["first_named_px"]} px; photo pairs {v["photo_pairs"]}, '
              f'nearest impostor pair {v["nearest_impostor_photo_pair"]}')
        for kind in ('single', 'mean3'):
            for b, f in v[kind].items():
                if f:
                    print(f'  {kind:6} {b:>8} px n={f["n"]:3}  own {f["own_median"]:.3f}  other {f["other_median"]:.3f}'
                          f' (min {f["other_min"]:.3f})  decided right {f["decided_right"]:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
