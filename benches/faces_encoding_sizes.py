"""How far a member's encoding is from their enrolment, by face width: the choices of the walk-in
pipeline (box fitted to dlib's landmark box, enlarged crop, mean of 3 frames) on the TUNING identities.

    .venv/bin/python benches/faces_encoding_sizes.py

Walk-in clips of the tuning identities of benches/faces_walkin.py (obama, kit_harington; each
walking with one photo, enrolled from the other, both directions), YuNet on every frame; each
detected face is encoded four ways: `raw` (YuNet's box as is), `fit` (the box fitted to dlib's,
face_model.dlib_box), `fit_up100` / `fit_up150` (fitted, faces under 100/150 px encoded from an
enlarged crop). Per width bin: median distance to the member's enrolment, share within the 0.5
threshold, the nearest impostor (every other photo of tests/data/faces), share of frames where
the margin rule (0.05) holds; then the same for the mean of the last 3 frames' encodings.
The report identities (biden, rose_leslie, alex_lacamoire) are never used here.
"""
from __future__ import annotations

import os

os.environ.setdefault('OMP_NUM_THREADS', '1')

import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces_walkin as walkin  # noqa: E402

VARIANTS = [('raw', 0), ('fit', 0), ('fit_up100', 100), ('fit_up150', 150)]
BINS = [(30, 35), (35, 40), (40, 45), (45, 50), (50, 60), (60, 200)]


def who(path: str) -> str:
    if 'alex' in path:
        return 'alex_lacamoire'
    return 'lin' if 'lin-' in path else path.split('/')[-2]


def main() -> int:
    warnings.simplefilter('ignore')
    import face_recognition as fr

    from retail_perception.face_model import FaceModel, load_bgr, to_rgb
    faces = walkin.FACES
    hog, model = FaceModel(detector='hog'), FaceModel(detector='yunet')
    backgrounds = [cv2.resize(cv2.imread(str(p)), (1280, 720), interpolation=cv2.INTER_AREA)
                   for p in walkin.BACKGROUNDS]
    pairs = [(walkin.PHOTOS[person][1 - g], walkin.PHOTOS[person][g])
             for person in walkin.SETS['tune'] for g in (0, 1)]
    everyone = sorted(str(p) for p in faces.glob('train/*/*')) + sorted(str(p) for p in faces.glob('enroll/*'))

    def encode(variant: str, rgb, box, up: int) -> np.ndarray:
        if variant == 'raw':
            return np.asarray(fr.face_encodings(rgb, [box])[0], np.float32)
        model.upscale_to_px = up
        return model.encode(rgb, [box])[0]

    gallery = {}
    for variant, up in VARIANTS:
        for path in everyone:
            rgb = to_rgb(load_bgr(path))
            box = model.detect(rgb, min(1.0, 1024 / max(rgb.shape[:2])))[0]
            gallery[(variant, path)] = encode(variant, rgb, box, up)
    results: dict[str, list] = {v: [] for v, _ in VARIANTS}
    for k, (walk, enrol) in enumerate(pairs):
        (hog_box,) = hog.detect(to_rgb(cv2.imread(str(faces / walk))))
        clip = walkin.make_clip(faces / walk, who(walk), backgrounds[k % 2], 15, 3, seed=100 + k, hog_box=hog_box)
        for frame, truth in zip(clip.frames, clip.truth):
            if truth is None:
                continue
            rgb = to_rgb(frame)
            hits = [b for b in model.detect(rgb) if truth[3] <= (b[1] + b[3]) / 2 <= truth[1]
                    and truth[0] <= (b[0] + b[2]) / 2 <= truth[2]]
            if not hits:
                continue
            for variant, up in VARIANTS:
                e = encode(variant, rgb, hits[0], up)
                own = np.linalg.norm(e - gallery[(variant, str(faces / enrol))])
                impostor = min(np.linalg.norm(e - gallery[(variant, p)]) for p in everyone if who(p) != who(walk))
                results[variant].append((k, walkin.truth_width(truth), own, impostor, e))
    for variant, _ in VARIANTS:
        rows = results[variant]
        print('==', variant)
        for lo, hi in BINS:
            sel = [r for r in rows if lo <= r[1] < hi]
            if sel:
                own = np.array([r[2] for r in sel])
                imp = np.array([r[3] for r in sel])
                print(f'  {lo}-{hi}px n={len(sel)} true med {np.median(own):.3f} <0.5 {np.mean(own < 0.5):.2f}'
                      f'  imp min {imp.min():.3f} <0.5 {np.mean(imp < 0.5):.2f}'
                      f' margin>0.05 {np.mean((imp - own) > 0.05):.2f}')
        print('  mean-of-3:')
        for lo, hi in BINS:
            out = []
            for k, (walk, enrol) in enumerate(pairs):
                seq = [r for r in rows if r[0] == k]
                for i in range(2, len(seq)):
                    if lo <= seq[i][1] < hi:
                        e = np.mean([r[4] for r in seq[i - 2:i + 1]], axis=0)
                        own = np.linalg.norm(e - gallery[(variant, str(faces / enrol))])
                        imp = min(np.linalg.norm(e - gallery[(variant, p)]) for p in everyone if who(p) != who(walk))
                        out.append((own, imp))
            if out:
                a = np.array(out)
                print(f'  {lo}-{hi}px n={len(a)} true med {np.median(a[:, 0]):.3f} <0.5 {np.mean(a[:, 0] < 0.5):.2f}'
                      f' imp min {a[:, 1].min():.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
