"""Strangers against a gallery of >= 1,000 identities: does the live naming rule name non-members
from far away (35-50 px), and how often does it still name members?

    .venv/bin/python benches/faces_impostors.py [--identities 1000] [--galleries 20] [--crowding 1.0 0.83]
        [--set report|tune|all] [--enrol photo|robot] [--no-mirror] [--min-identify-px N] [--small-face-px N ...] [--fresh] [--json]

The walks' encodings are measured once (~2 CPU-minutes) and kept in /tmp/faces_impostors_<uid>.npz;
`--fresh` measures them again (do so after changing the detector or the encoder); `--no-mirror`
encodes each face once, as before s12 (its own cache), instead of face_model.MIRROR_AVERAGE.

No face data set ships in a package here, so the gallery is made of SYNTHETIC identities calibrated
on the real photos of tests/data/faces, and the probes are REAL encodings:
1. Population. The full-resolution embeddings of every photo (10 photos, 6 people) give the
   distances between different people (their median, 10th and 90th percentiles). Synthetic
   identities are drawn around the mean of those embeddings, mu + sigma * Q diag(k^-alpha) z
   (z standard normal in 128-d, Q a random rotation): alpha (how few directions carry the
   differences between people; the spread of the distances) and sigma (their scale) are fitted so
   the synthetic inter-person distances have the real median and 10th percentile. `--crowding c`
   shrinks every synthetic identity's offset from mu by c: c = 0.83 makes the population as much
   more crowded as the East-Asian threshold is stricter than the library's (0.5 / 0.6), which is
   why 0.5 is used; both are reported.
2. Probes. Each person with two photos walks in (benches/faces_walkin.py's clips, 4 m -> 1 m,
   one background each, alternating) with one photo while their enrolment is the other photo's
   embedding; YuNet finds the face in every frame (in the region around it, as the live
   pipeline's region searches do) and the live encoder encodes it (box fitted to dlib's). The live rule then runs over the walk: from `min_identify_px` the track's last
   `evidence_frames` encodings are averaged and searched (threshold, margin) once at least
   `votes_needed` exist.
3. Each walk runs against `--galleries` galleries of `--identities` synthetic identities plus the
   other real people: once WITH the walker's enrolment (a member: when first named, by which
   name) and once WITHOUT it (a stranger: any name is a false name). Reported per face-width bin
   (of the decision's newest frame): decisions, false names of strangers (per decision and per
   approach: named at least once during the walk), members named correctly / wrongly.
The rule is read from config/perception.yaml and face_pipeline.identify_rule (its size-dependent
steps); `--min-identify-px` etc. override it. Choices are tried on `--set tune` (obama,
kit_harington) and reported on `--set report` (biden, rose_leslie, alex_lacamoire).
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

BINS = [(35, 40), (40, 45), (45, 50), (50, 60), (60, 1000)]
CACHE = Path('/tmp') / f'faces_impostors_{os.getuid()}.npz'
MIRROR: dict = {}           # {'mirror': False} with --no-mirror (FaceModel's default otherwise)


def cache_path() -> Path:
    return CACHE if not MIRROR else CACHE.with_name(CACHE.stem + '_nomirror.npz')


def photo_embeddings(model) -> dict[str, np.ndarray]:
    from retail_perception.face_model import load_bgr
    out = {}
    for person, photos in walkin.PHOTOS.items():
        for photo in photos:
            out[photo] = model.faces_in_photo(load_bgr(walkin.FACES / photo))[1][0]
    out[walkin.STRANGER] = model.faces_in_photo(load_bgr(walkin.FACES / walkin.STRANGER))[1][0]
    return out


def owner(photo: str) -> str:
    if photo == walkin.STRANGER:
        return 'lin_manuel_miranda'
    return next(p for p, photos in walkin.PHOTOS.items() if photo in photos)


def walk_encodings(model) -> list[dict]:
    """Every walk (person, direction): widths and encodings of the frames YuNet found the face in."""
    from retail_perception.face_model import FaceModel, to_rgb
    hog = FaceModel(detector='hog')
    backgrounds = [cv2.resize(cv2.imread(str(p)), (walkin.WIDTH, walkin.HEIGHT), interpolation=cv2.INTER_AREA)
                   for p in walkin.BACKGROUNDS]
    walks = []
    for i, (person, photos) in enumerate(walkin.PHOTOS.items()):
        for g in (0, 1):
            walk_photo, enrol_photo = photos[1 - g], photos[g]
            (hog_box,) = hog.detect(to_rgb(cv2.imread(str(walkin.FACES / walk_photo))))
            clip = walkin.make_clip(walkin.FACES / walk_photo, person, backgrounds[(2 * i + g) % 2], 15, 3,
                                    seed=500 + 2 * i + g, hog_box=hog_box)
            widths, encodings, crop = [], [], None
            for frame, truth in zip(clip.frames, clip.truth):
                if truth is None:
                    continue
                rgb = to_rgb(frame)
                # YuNet searches the region around the face, as the live pipeline does between its
                # full-frame searches (the face's box grown by one face width, at least 48 px)
                pad = max(48, int(walkin.truth_width(truth)))
                top, left = max(0, int(truth[0]) - pad), max(0, int(truth[3]) - pad)
                region = np.ascontiguousarray(rgb[top:int(truth[2]) + pad, left:int(truth[1]) + pad])
                hits = [(t + top, r + left, b + top, lft + left) for t, r, b, lft in model.detect(region)]
                hits = [b for b in hits if truth[3] <= (b[1] + b[3]) / 2 <= truth[1]
                        and truth[0] <= (b[0] + b[2]) / 2 <= truth[2]]
                if hits:
                    widths.append(hits[0][1] - hits[0][3])       # the width the live gate sees
                    encodings.append(model.encode(rgb, hits[:1])[0])
                    if crop is None or widths[-1] >= crop[1][1] - crop[1][3]:   # as FacePipeline._keep_crop
                        t, r, b, lft = hits[0]
                        w = r - lft
                        y0, x0 = max(0, t - w), max(0, lft - w)
                        crop = (np.ascontiguousarray(frame[y0:b + w, x0:r + w]), (t - y0, r - x0, b - y0, lft - x0))
            walks.append({'person': person, 'enrol': enrol_photo, 'widths': np.array(widths),
                          'encodings': np.array(encodings, np.float32),
                          # the node's walk-in row when this walker is enrolled at the robot
                          'walk_in': model.walk_in_encoding(*crop) if crop is not None else None})
            print(f'  walk {person} enrolled from {enrol_photo}: {len(widths)} faces found', file=sys.stderr)
    return walks


def load_or_measure(fresh: bool = False) -> tuple[dict, list[dict]]:
    cache = cache_path()
    if cache.exists() and not fresh:
        data = np.load(cache, allow_pickle=True)
        return data['photos'].item(), list(data['walks'])
    from retail_perception.face_model import FaceModel
    model = FaceModel(detector='yunet', **MIRROR)
    photos, walks = photo_embeddings(model), walk_encodings(model)
    np.savez(cache, photos=np.array(photos, dtype=object), walks=np.array(walks, dtype=object))
    return photos, walks


def inter_person(photos: dict[str, np.ndarray]) -> np.ndarray:
    keys = sorted(photos)
    return np.array([np.linalg.norm(photos[a] - photos[b]) for i, a in enumerate(keys) for b in keys[i + 1:]
                     if owner(a) != owner(b)])


def population(mu: np.ndarray, alpha: float, sigma: float, n: int, rng) -> np.ndarray:
    scales = np.arange(1, mu.size + 1, dtype=np.float64) ** -alpha
    q, _ = np.linalg.qr(rng.normal(size=(mu.size, mu.size)))
    return (mu + sigma * (rng.normal(size=(n, mu.size)) * scales) @ q.T).astype(np.float32)


def fit_population(mu: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """alpha, sigma whose synthetic inter-person distances match the real median and 10th percentile."""
    target_med, target_p10 = np.median(real), np.percentile(real, 10)
    best = None
    for alpha in np.arange(0.0, 1.51, 0.05):
        rng = np.random.default_rng(0)
        points = population(mu, alpha, 1.0, 400, rng)
        d = np.linalg.norm(points[:200] - points[200:], axis=1)
        sigma = target_med / np.median(d)
        err = abs(np.percentile(d, 10) * sigma - target_p10)
        if best is None or err < best[0]:
            best = (err, float(alpha), float(sigma))
    return best[1], best[2]


def decisions(walk: dict, rule) -> list[tuple[float, np.ndarray]]:
    """(width of the newest frame, the evidence mean searched) for each frame the live rule decides on."""
    evidence: list[np.ndarray] = []
    out = []
    for width, encoding in zip(walk['widths'], walk['encodings']):
        threshold, margin, frames, votes = rule(width)
        if frames <= 0:        # too small to be named: followed, not encoded
            continue
        evidence.append(encoding)
        if len(evidence) >= votes:
            out.append((float(width), np.mean(evidence[-frames:], axis=0), threshold, margin))
    return out


def walk_in_rows(model=None) -> dict[str, np.ndarray]:
    """Every photo's walk-in row (face_model.walk_in_encoding: the photo shrunk to 36-52 px,
    softened, noised, JPEG; the mean encoding), as `retailbot faces enroll` now stores beside the
    photo's own encoding."""
    from retail_perception.face_model import FaceModel, load_bgr
    model = model or FaceModel(detector='yunet', **MIRROR)
    out = {}
    for photo in [p for pair in walkin.PHOTOS.values() for p in pair] + [walkin.STRANGER]:
        bgr = load_bgr(walkin.FACES / photo)
        boxes = model.detect(model_rgb(bgr), min(1.0, 1024 / max(bgr.shape[:2])))
        out[photo] = model.walk_in_encoding(bgr, boxes[0])
    return out


def model_rgb(bgr):
    from retail_perception.face_model import to_rgb
    return to_rgb(bgr)


def robot_walk_in(walks: list[dict], person: str, photo: str) -> np.ndarray:
    """The walk-in row the faces node adds when enrolling a member at the robot (from the widest
    face of the track, the walk-in clip made from `photo`)."""
    walk = next(w for w in walks if w['person'] == person and w['enrol'] != photo)
    if walk.get('walk_in') is None:
        raise SystemExit(f'no walk-in row cached for {person}: run with --fresh')
    return walk['walk_in']


def robot_rows(walks: list[dict], person: str, photo: str, frames: int = 5) -> np.ndarray:
    """A member enrolled AT THE ROBOT from `photo`: the encodings the faces node keeps of their track
    (its last `frames`, the face 1.0-1.3 m away) on the walk-in clip made from that photo."""
    walk = next(w for w in walks if w['person'] == person and w['enrol'] != photo)
    return walk['encodings'][-frames:]


def run(photos, walks, people: list[str], rule, identities: int, galleries: int, crowding: float,
        alpha: float, sigma: float, enrol_mode: str = 'photo', walk_in: dict | None = None,
        shift_from: dict | None = None) -> dict:
    mu = np.mean(np.stack(list(photos.values())), axis=0)
    # walk-in enrolment: every real member also has their photo's walk-in row; every synthetic
    # identity the same displacement (walk-in row - photo row) as a real photo (cycling through
    # them): the far-face drift is much the same for everyone, so a synthetic member's walk-in row
    # sits where the encoder would put their far face, as near to a stranger's far face as the
    # real members' rows are
    shift_from = photos if shift_from is None else shift_from
    shifts = (np.stack([walk_in[p] - shift_from[p] for p in sorted(walk_in)]) if walk_in is not None else None)
    per_bin = {b: {'stranger_decisions': 0, 'stranger_named': 0, 'member_decisions': 0, 'member_right': 0,
                   'member_wrong': 0, 'stranger_nearest': float('inf')} for b in BINS}
    approaches = {'stranger': 0, 'stranger_named': 0, 'member': 0, 'member_named_lt50': 0,
                  'member_named_lt45': 0, 'member_wrong': 0}
    first_named: list[float | None] = []
    for seed in range(galleries):
        rng = np.random.default_rng(1000 + seed)
        synthetic = mu + crowding * (population(mu, alpha, sigma, identities, rng) - mu)
        synthetic_ids = [f's{j}' for j in range(identities)]
        if shifts is not None:
            synthetic = np.concatenate([synthetic, synthetic + shifts[np.arange(identities) % len(shifts)]])
            synthetic_ids = synthetic_ids * 2
        for walk in (w for w in walks if w['person'] in people):
            steps = decisions(walk, rule)
            for member in (True, False):
                rows = [synthetic]
                ids = list(synthetic_ids)
                for person, pair in walkin.PHOTOS.items():
                    if person == walk['person'] and not member:
                        continue
                    enrol = walk['enrol'] if person == walk['person'] else pair[0]
                    if enrol_mode == 'photo':
                        own = photos[enrol][None, :]
                    elif enrol_mode == 'robot':
                        own = robot_rows(walks, person, enrol)
                    elif enrol_mode == 'robot_walkin':
                        own = np.concatenate([robot_rows(walks, person, enrol),
                                              robot_walk_in(walks, person, enrol)[None, :]])
                    else:
                        own = np.stack([photos[enrol], walk_in[enrol]])
                    rows.append(own)
                    ids.extend([person] * len(own))
                gallery = _bulk_gallery(np.concatenate(rows), ids)
                named_px, wrong = None, False
                for width, mean, threshold, margin in steps:
                    match = gallery.search(mean, threshold, margin)
                    b = next((b for b in BINS if b[0] <= width < b[1]), None)
                    if b is not None:
                        per_bin[b]['member_decisions' if member else 'stranger_decisions'] += 1
                        if not member:
                            per_bin[b]['stranger_nearest'] = min(per_bin[b]['stranger_nearest'], match.distance)
                    if match.customer_id is None:
                        continue
                    right = member and match.customer_id == walk['person']
                    if b is not None:
                        key = 'member_right' if right else ('member_wrong' if member else 'stranger_named')
                        per_bin[b][key] += 1
                    if not right:
                        wrong = True
                    elif named_px is None:
                        named_px = width
                if member:
                    approaches['member'] += 1
                    approaches['member_wrong'] += wrong
                    approaches['member_named_lt50'] += named_px is not None and named_px < 50
                    approaches['member_named_lt45'] += named_px is not None and named_px < 45
                    if seed == 0:
                        first_named.append(named_px)
                else:
                    approaches['stranger'] += 1
                    approaches['stranger_named'] += wrong
    return {'crowding': crowding, 'identities': identities + len(walkin.PHOTOS), 'galleries': galleries,
            'approaches': approaches, 'first_named_px_gallery0': first_named,
            'bins': {f'{lo}-{hi if hi < 1000 else "up"}px': v for (lo, hi), v in per_bin.items()}}


def _bulk_gallery(embeddings: np.ndarray, ids: list[str]):
    """A Gallery of many members at once (Gallery.enroll one by one re-concatenates: quadratic)."""
    from retail_perception.gallery import Gallery, Member
    members = {cid: Member(cid, cid, False, 'bench', 0.0, 0.0, ids.count(cid)) for cid in set(ids)}
    return Gallery(members, embeddings, np.array(ids))


def live_rule(overrides: dict):
    from retail_perception.face_pipeline import PipelineConfig, identify_rule
    config = PipelineConfig(**(walkin.ROBOT_CONFIG | overrides))

    def rule(width: float):
        return identify_rule(config, width)
    return rule, config


def main() -> int:
    warnings.simplefilter('ignore')
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--identities', type=int, default=1000)
    parser.add_argument('--galleries', type=int, default=20)
    parser.add_argument('--crowding', type=float, nargs='+', default=[1.0, 0.83])
    parser.add_argument('--set', choices=('report', 'tune', 'all'), default='report')
    parser.add_argument('--enrol', choices=('photo', 'robot', 'walkin', 'robot_walkin'), default='photo',
                        help='members enrolled from a photo (one embedding), at the robot (the last 5 '
                        'encodings of their track on a walk-in clip of that photo), or from a photo with '
                        'its walk-in row (two rows; synthetic identities get a walk-in row too), or at the '
                        'robot with the walk-in row of the track\'s widest face (6 rows)')
    parser.add_argument('--fresh', action='store_true', help=f'measure the walks again (else reuse {CACHE})')
    parser.add_argument('--no-mirror', action='store_true',
                        help='encode each face once (before s12), not as the mean with its mirror image')
    parser.add_argument('--json', action='store_true')
    for flag in ('min-identify-px', 'evidence-frames', 'votes-needed'):
        parser.add_argument(f'--{flag}', type=int)
    for flag in ('match-threshold', 'match-margin', 'small-face-px', 'small-face-threshold', 'small-face-margin'):
        parser.add_argument(f'--{flag}', type=float)
    parser.add_argument('--small-face-evidence-frames', type=int)
    args = parser.parse_args()
    overrides = {k.replace('-', '_'): v for k, v in vars(args).items()
                 if k not in ('identities', 'galleries', 'crowding', 'set', 'json', 'enrol', 'fresh', 'no_mirror')
                 and v is not None}
    if args.no_mirror:
        MIRROR['mirror'] = False
    for key in ('small_face_px',):
        if key in overrides:
            overrides[key] = int(overrides[key])
    photos, walks = load_or_measure(args.fresh)
    real = inter_person(photos)
    mu = np.mean(np.stack(list(photos.values())), axis=0)
    alpha, sigma = fit_population(mu, real)
    check = population(mu, alpha, sigma, 2000, np.random.default_rng(7))
    synth = np.linalg.norm(check[:1000] - check[1000:], axis=1)
    people = (walkin.SETS['tune'] if args.set == 'tune' else walkin.SETS['report'] if args.set == 'report'
              else list(walkin.PHOTOS))
    rule, config = live_rule(overrides)
    walk_in = walk_in_rows() if args.enrol == 'walkin' else None
    if args.enrol == 'robot_walkin':   # synthetic identities: displaced as a robot enrolment's walk-in row
        walk_in = {f'{w["person"]}/{w["enrol"]}': w['walk_in'] for w in walks}
        photos_for_shift = {k: np.mean(w['encodings'][-5:], axis=0) for k, w in
                            zip(walk_in, walks)}
    else:
        photos_for_shift = photos
    if walk_in is not None:
        shifts = np.stack([walk_in[p] - photos_for_shift[p] for p in sorted(walk_in)])
        cos = shifts @ shifts.T / np.outer(np.linalg.norm(shifts, axis=1), np.linalg.norm(shifts, axis=1))
        print(f"walk-in rows: distance from the photo's row {np.round(np.linalg.norm(shifts, axis=1), 3).tolist()}, "
              f"cosine between two photos' shifts median {np.median(cos[np.triu_indices(len(shifts), 1)]):.2f}")
    header = {'real_inter_person': [round(float(np.percentile(real, q)), 3) for q in (0, 10, 50, 90)],
              'synthetic_inter_person': [round(float(np.percentile(synth, q)), 3) for q in (0, 10, 50, 90)],
              'alpha': round(alpha, 2), 'sigma': round(sigma, 4), 'set': args.set, 'people': people,
              'enrol': args.enrol,
              'rule': {w: identify_rule_str(rule, w) for w in (35, 40, 45, 50)}}
    print(json.dumps(header) if args.json else
          f"inter-person distance min/p10/median/p90: real {header['real_inter_person']}  synthetic "
          f"{header['synthetic_inter_person']} (alpha {alpha:.2f}); enrolment: {args.enrol}; rule by width "
          f"{header['rule']}")
    for crowding in args.crowding:
        result = run(photos, walks, people, rule, args.identities, args.galleries, crowding, alpha, sigma,
                     args.enrol, walk_in, photos_for_shift)
        if args.json:
            print(json.dumps(result))
            continue
        a = result['approaches']
        print(f"crowding {crowding}: {result['identities']} identities x {args.galleries} galleries: strangers named in "
              f"{a['stranger_named']}/{a['stranger']} approaches; members named <50 px {a['member_named_lt50']}/"
              f"{a['member']}, <45 px {a['member_named_lt45']}/{a['member']}, wrongly {a['member_wrong']}; "
              f"first named (gallery 0) {result['first_named_px_gallery0']}")
        for name, v in result['bins'].items():
            print(f"  {name:9} strangers named {v['stranger_named']:4}/{v['stranger_decisions']:5} decisions "
                  f"(nearest member {v['stranger_nearest']:.3f});  "
                  f"members named right {v['member_right']:5}, wrong {v['member_wrong']:3}/{v['member_decisions']:5}")
    return 0


def identify_rule_str(rule, width: float) -> str:
    threshold, margin, frames, votes = rule(width)
    return 'not named' if frames <= 0 else f't{threshold} m{margin} mean of {frames} (>= {votes})'


if __name__ == '__main__':
    sys.exit(main())
