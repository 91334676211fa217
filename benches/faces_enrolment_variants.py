"""Enrolment variants on the TUNING identities: how near a walking-in member's far frames come to
their enrolment rows, and to everyone else's, for several ways of enrolling from one photo.

    .venv/bin/python benches/faces_enrolment_variants.py [tune]

Variants (rows per enrolment photo; the nearest row counts, as in the gallery):
`base` (the photo's encoding, before s11), `j10`/`j50` (face_recognition num_jitters 10/50),
`flip` (+ the mirrored photo's row), `meanflip` (mean of the two), `large`/`large_j10` (dlib's
68-point landmarks to align, at enrolment and on the probes), `deg`/`degmean` (+ 8 copies shrunk to
36-56 px with the walk-in bench's own degradation / their mean), `walkin` (+ face_model.walk_in_encoding:
copies shrunk to 36/44/52 px with GENERIC softening, noise and JPEG, their mean: what enrolment now
stores), `walkin_only`, combinations. Probes: the walk-in clips of benches/faces_walkin.py for the
tuning identities (obama, kit_harington; each photo walks in, the other enrols; both backgrounds),
YuNet on each frame, box fitted. Impostors: every photo of other people, enrolled the same way.
Per width bin: share of single frames within 0.5 of the member / median distance; for faces under
50 px: share of single frames the threshold and margin decide right, median gap (nearest impostor -
own, the separability), share of impostors within 0.5, 5th percentile impostor distance; the mean of
3 frames within 0.5; first width named by the live rule (gate 35, mean of 3). The walks are cached in
/tmp (delete to re-measure). Never run with the report identities when choosing.
"""

import os
import sys
import time
import warnings

os.environ.setdefault('OMP_NUM_THREADS', '1')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cv2
import numpy as np
import faces_walkin as walkin

warnings.simplefilter('ignore')
import face_recognition as fr
from retail_perception.face_model import FaceModel, load_bgr, to_rgb, dlib_box

SET = sys.argv[1] if len(sys.argv) > 1 else 'tune'
model = FaceModel(detector='yunet')
hog = FaceModel(detector='hog')
faces = walkin.FACES


def who(p):
    return next((k for k, v in walkin.PHOTOS.items() if p in v), 'lin')


everyone = [p for v in walkin.PHOTOS.values() for p in v] + [walkin.STRANGER]


def enc(rgb, box, jit=1, lm='small'):
    return np.asarray(fr.face_encodings(rgb, [box], num_jitters=jit, model=lm)[0], np.float32)


def photo_box(rgb):
    b = model.detect(rgb, min(1.0, 1024 / max(rgb.shape[:2])))
    return b[0]


def degraded(bgr, box, width, rng):
    """The photo shrunk so the face is `width` px, blurred/noised/JPEG like a walk-in frame; (rgb, yunet box)."""
    t, r, b, l = box
    s = width / (r - l)
    small = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    canvas = np.full((max(small.shape[0], 200) + 100, max(small.shape[1], 200) + 100, 3), 128, np.uint8)
    canvas[50 : 50 + small.shape[0], 50 : 50 + small.shape[1]] = small
    frame = walkin.degrade(canvas, rng, width * 0.05)
    rgb = to_rgb(frame)
    found = model.detect(rgb)
    exp = (t * s + 50, r * s + 50, b * s + 50, l * s + 50)
    hits = [f for f in found if exp[3] <= (f[1] + f[3]) / 2 <= exp[1] and exp[0] <= (f[0] + f[2]) / 2 <= exp[2]]
    bx = hits[0] if hits else tuple(int(round(v)) for v in exp)
    return rgb, bx


t0 = time.time()
rows = {}  # variant -> photo -> array of rows
for p in everyone:
    bgr = load_bgr(faces / p)
    rgb = to_rgb(bgr)
    box = photo_box(rgb)
    fb = dlib_box(box, rgb.shape)
    base = enc(rgb, fb)
    flip_rgb = np.ascontiguousarray(rgb[:, ::-1])
    W = rgb.shape[1]
    fbox = (box[0], W - box[3], box[2], W - box[1])
    ffb = dlib_box(fbox, rgb.shape)
    flip = enc(flip_rgb, ffb)
    j10 = enc(rgb, fb, 10)
    j50 = enc(rgb, fb, 50)
    large = enc(rgb, fb, 1, 'large')
    large_j10 = enc(rgb, fb, 10, 'large')
    rng = np.random.default_rng(7)
    degs = []
    for w in (36, 42, 48, 56):
        for rep in range(2):
            drgb, db = degraded(bgr, box, w, rng)
            degs.append(enc(drgb, dlib_box(db, drgb.shape)))
    degs = np.array(degs)
    wi = model.walk_in_encoding(bgr, box)
    rows.setdefault('walkin', {})[p] = np.stack([base, wi])
    rows.setdefault('walkin_only', {})[p] = wi[None]
    rows.setdefault('walkin_flip', {})[p] = np.stack([base, wi, flip])
    rows.setdefault('base', {})[p] = base[None]
    rows.setdefault('flip', {})[p] = np.stack([base, flip])
    rows.setdefault('meanflip', {})[p] = ((base + flip) / 2)[None]
    rows.setdefault('j10', {})[p] = j10[None]
    rows.setdefault('j50', {})[p] = j50[None]
    rows.setdefault('large', {})[p] = large[None]
    rows.setdefault('large_j10', {})[p] = large_j10[None]
    rows.setdefault('deg', {})[p] = np.concatenate([base[None], degs])
    rows.setdefault('degmean', {})[p] = np.stack([base, degs.mean(0)])
    rows.setdefault('j10_degmean', {})[p] = np.stack([j10, degs.mean(0)])
    rows.setdefault('j10_deg', {})[p] = np.concatenate([j10[None], degs])
    rows.setdefault('basej10', {})[p] = np.stack([base, j10])
    print(
        p,
        'base-j10 %.3f base-flip %.3f base-degmean %.3f deg spread %.3f'
        % (
            np.linalg.norm(base - j10),
            np.linalg.norm(base - flip),
            np.linalg.norm(base - degs.mean(0)),
            np.linalg.norm(degs - base, axis=1).mean(),
        ),
        file=sys.stderr,
    )
print('enrol rows %.0fs' % (time.time() - t0), file=sys.stderr)
# cross-person photo distances for each variant: own pair distance
for v in rows:
    own = []
    for person, (a, b) in ((q, walkin.PHOTOS[q]) for q in walkin.SETS[SET]):
        d = min(np.linalg.norm(x - y) for x in rows[v][a] for y in rows[v][b])
        own.append(f'{person[:5]} {d:.3f}')
    print(v, 'photo pair nearest rows:', ', '.join(own))

backgrounds = [cv2.resize(cv2.imread(str(p)), (1280, 720), interpolation=cv2.INTER_AREA) for p in walkin.BACKGROUNDS]
pairs = [
    (walkin.PHOTOS[person][1 - g], walkin.PHOTOS[person][g], person) for person in walkin.SETS[SET] for g in (0, 1)
]
import pickle

PK = f'/tmp/faces_enrolment_probes_{os.getuid()}_{SET}.pkl'
probes = pickle.load(open(PK, 'rb')) if os.path.exists(PK) else []
for k, (walk, enrol, person) in enumerate(pairs):
    if os.path.exists(PK):
        break
    (hb,) = hog.detect(to_rgb(cv2.imread(str(faces / walk))))
    for bg in (0, 1):
        clip = walkin.make_clip(faces / walk, person, backgrounds[bg], 15, 3, seed=300 + 2 * k + bg, hog_box=hb)
        seq = []
        for frame, truth in zip(clip.frames, clip.truth):
            if truth is None:
                continue
            rgb = to_rgb(frame)
            hits = [
                b
                for b in model.detect(rgb)
                if truth[3] <= (b[1] + b[3]) / 2 <= truth[1] and truth[0] <= (b[0] + b[2]) / 2 <= truth[2]
            ]
            if not hits:
                continue
            fb = dlib_box(hits[0], rgb.shape)
            w = hits[0][1] - hits[0][3]
            seq.append((w, enc(rgb, fb), enc(rgb, fb, 1, 'large')))
        probes.append((person, enrol, seq))
pickle.dump(probes, open(PK, 'wb'))
print('probes %.0fs' % (time.time() - t0), file=sys.stderr)

BINS = [(30, 35), (35, 40), (40, 45), (45, 50), (50, 60), (60, 999)]


def dist_to(e, R):
    return float(np.min(np.linalg.norm(R - e, axis=1)))


for v in rows:
    li = 2 if v.startswith('large') else 1
    single = {b: [] for b in BINS}
    mean3 = {b: [] for b in BINS}
    named = []
    for person, enrol, seq in probes:
        gal = {who(p): rows[v][p] for p in everyone if who(p) != person}
        gal[person] = rows[v][enrol]
        # other people: their first photo enrolled (as gallery) + all other photos as impostors
        imps = [rows[v][p] for p in everyone if who(p) != person]
        first = None
        for i, item in enumerate(seq):
            w = item[0]
            e = item[li]
            b = next((b for b in BINS if b[0] <= w < b[1]), None)
            own = dist_to(e, rows[v][enrol])
            imp = min(dist_to(e, R) for R in imps)
            if b:
                single[b].append((own, imp))
            if w >= 35 and i >= 1:
                ev = [x for x in seq[max(0, i - 2) : i + 1] if x[0] >= 35]
                if len(ev) >= 2:
                    m = np.mean([x[li] for x in ev], axis=0)
                    own = dist_to(m, rows[v][enrol])
                    imp = min(dist_to(m, R) for R in imps)
                    if b:
                        mean3[b].append((own, imp))
                    if first is None and own <= 0.5 and imp - own >= 0.05:
                        first = w
        named.append(first)
    s = ' '.join(
        f'{lo}-{hi}:{np.mean([o < 0.5 for o, _ in single[(lo, hi)]]):.2f}/{np.median([o for o, _ in single[(lo, hi)]]):.3f}'
        for lo, hi in BINS
        if single[(lo, hi)]
    )
    m = ' '.join(
        f'{lo}-{hi}:{np.mean([o < 0.5 for o, _ in mean3[(lo, hi)]]):.2f}' for lo, hi in BINS if mean3[(lo, hi)]
    )
    impmin = min(i for b in BINS for _, i in mean3[b]) if any(mean3.values()) else None
    impmin_s = min(i for b in BINS[:4] for _, i in single[b])
    sm = [x for b in BINS[:4] for x in single[b]]
    right = np.mean([o <= 0.5 and i - o >= 0.05 for o, i in sm])
    gap = np.median([i - o for o, i in sm])
    print(
        f'{v:12} <50px single right {right:.2f} median gap imp-own {gap:.3f} imp<0.5 {np.mean([i <= 0.5 for _, i in sm]):.3f} imp p5 {np.percentile([i for _, i in sm], 5):.3f}'
    )
    print(
        f'{v:12} single<0.5/med {s}\n{"":12} mean3<0.5 {m}  imp min mean3 {impmin:.3f} single<50px {impmin_s:.3f}\n{"":12} named at {named}'
    )
