"""Members walking up to the robot: when are they named, by the YuNet pipeline and by today's HOG one.

    .venv/bin/python benches/faces_walkin.py [--set report|tune] [--fps 15] [--only yunet|hog] [--json]

Clips are made here from the real photos of tests/data/faces (see its README for their origin):
a person walks from 4 m to 1 m in front of a 1280x720 camera with a 70° horizontal field of view
(face 34 px wide at 4 m, 46 px at 3 m, 69 px at 2 m, 137 px at 1 m), pasted with a soft oval edge
onto one of two empty-aisle photos of src/perception/sim_camera, with a slight sideways drift,
motion blur, sensor noise and JPEG compression (quality 70), after 5 empty frames. The face width
of a frame is the width of dlib's HOG box on the source photo scaled to the frame.

Approaches. Each person with two photos walks in twice, once with each photo, the gallery holding
the OTHER photo (direction A: members enrolled from their first photo, B: from their second), each
on both backgrounds; every such clip is also replayed with that person removed from the gallery
(a shopper who is not a member: any name is a wrong name). Identities are split: the TUNING set
(obama, kit_harington; lin-manuel-miranda, never enrolled) is what the pipeline's choices were
tried on (`--set tune`); the REPORT set (biden, rose_leslie, alex_lacamoire: 12 member approaches,
12 non-member approaches) is what the README's figures come from (`--set report`, the default).

Both pipelines (`FacePipeline` with the same encoder, threshold 0.5, margin 0.05) run on the same
frames in the same run, pinned to one CPU core (OMP_NUM_THREADS=1, sched_setaffinity):
- yunet: today's, with the faces node's parameters read from config/perception.yaml (ROBOT_CONFIG):
  YuNet on the full frame every `full_detect_every` (3) frames, only around the faces followed in
  between, boxes fitted to dlib's landmark model, encoded every frame from `min_identify_px` (35)
  while unnamed, named from the mean of the track's last `evidence_frames` (3) encodings
  (`--min-identify-px`, `--evidence-frames`, `--full-detect-every` override them: try choices on
  `--set tune` only);
- yunet_nomirror (`--pipelines`): the same, but every face encoded once (before s12; `yunet` encodes
  each face as the mean of its own and its mirror image's encodings, face_model.MIRROR_AVERAGE, in
  enrolment and live alike);
- yunet_photo_row (`--pipelines`): the same as yunet_nomirror, but members enrolled from their photo's
  row only (before s11; `yunet` enrols as `retailbot faces enroll` does: the photo's row and its
  walk-in row);
- hog: the pipeline before issue 25: HOG on the frame shrunk x0.5, no size gate, encode every 3rd
  frame, 2 agreeing single-frame votes.
Reported per pipeline: share of member approaches named before the face is 50 px / 45 px wide
(with its 95 % Wilson interval: 12 approaches are few),
the width when first named, wrong names (members named as someone else, non-members named at
all), frames/s (pipeline on decoded frames in memory, per CPU-second: member clips, and the same
clips with the person removed from the gallery, so the face is encoded in every frame), and from
the same detections: share of frames whose face (>= 33 px) is detected (a box whose centre lies in
the true box and whose width is within x0.5-x2), false detections per 100 frames.
Goals (issue 25): named before 50 px in >= 90 % of approaches, before 45 px in >= 66 %, 0 wrong
names, >= 6 frames/s on one core, >= 95 % of faces >= 33 px detected, <= 1 false detection per
100 frames.
"""
from __future__ import annotations

import os

os.environ.setdefault('OMP_NUM_THREADS', '1')   # before numpy/dlib/yuface load their thread pools

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FACES = REPO / 'tests' / 'data' / 'faces'
BACKGROUNDS = [REPO / 'src' / 'perception' / 'sim_camera' / name
               for name in ('b-empty-aisle.png', 'z-empty-aisle.png')]
WIDTH, HEIGHT, HFOV_DEG, FACE_M = 1280, 720, 70.0, 0.15
START_M, END_M, LEAD_IN = 4.0, 1.0, 5
# person -> their two photos (first, second); lin-manuel-miranda has one and is never enrolled
PHOTOS = {'biden': ('train/biden/biden.jpg', 'train/biden/biden2.jpg'),
          'kit_harington': ('train/kit_harington/john1.jpeg', 'train/kit_harington/john2.jpeg'),
          'obama': ('train/obama/obama.jpg', 'train/obama/obama2.jpg'),
          'rose_leslie': ('train/rose_leslie/img1.jpg', 'train/rose_leslie/img2.jpg'),
          'alex_lacamoire': ('train/alex_lacamoire/img1.jpg', 'enroll/alex-lacamoire.png')}
STRANGER = 'enroll/lin-manuel-miranda.png'
SETS = {'tune': ['obama', 'kit_harington'], 'report': ['biden', 'rose_leslie', 'alex_lacamoire']}


@dataclass
class Clip:
    person: str | None
    gallery: int = 0                      # 0: members enrolled from their first photo, 1: second
    frames: list[np.ndarray] = field(default_factory=list)
    truth: list[tuple | None] = field(default_factory=list)   # true (top, right, bottom, left) or None


def focal_px() -> float:
    return (WIDTH / 2) / math.tan(math.radians(HFOV_DEG) / 2)


def make_clip(photo: Path, person: str | None, background: np.ndarray, fps: float, seconds: float,
              seed: int, hog_box) -> Clip:
    rng = np.random.default_rng(seed)
    image = cv2.imread(str(photo))
    top, right, bottom, left = hog_box
    box_w = right - left
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = 1.3 * box_w                       # head and some shoulders around the face box
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half * 1.1))
    x1, y1 = int(min(image.shape[1], cx + half)), int(min(image.shape[0], cy + half * 1.2))
    head = image[y0:y1, x0:x1]
    mask = np.zeros(head.shape[:2], np.float32)
    cv2.ellipse(mask, (int(cx - x0), int(cy - y0)), (int(half * 0.95), int(half * 1.1)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, half * 0.08))
    clip = Clip(person)
    n = int(round(fps * seconds))
    drift = rng.uniform(-0.25, 0.25)         # sideways metres over the walk
    start_x = rng.uniform(-0.3, 0.3)
    for _ in range(LEAD_IN):
        clip.frames.append(degrade(background.copy(), rng, 0))
        clip.truth.append(None)
    for i in range(n):
        t = i / max(1, n - 1)
        distance = START_M + (END_M - START_M) * t
        face_w = FACE_M * focal_px() / distance
        scale = face_w / box_w
        small = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_LINEAR)
        lateral = start_x + drift * t
        centre_x = WIDTH / 2 + focal_px() * lateral / distance
        centre_y = HEIGHT * 0.42 + focal_px() * 0.05 / distance   # eyes slightly above the axis
        fx0 = int(round(centre_x - (cx - x0) * scale))
        fy0 = int(round(centre_y - (cy - y0) * scale))
        frame = background.copy()
        paste(frame, small, small_mask, fx0, fy0)
        speed_px = abs(face_w * 0.05)            # motion blur grows as the person nears
        clip.frames.append(degrade(frame, rng, speed_px))
        t_top = fy0 + (top - y0) * scale
        t_left = fx0 + (left - x0) * scale
        clip.truth.append((t_top, t_left + face_w, t_top + (bottom - top) * scale, t_left))
    return clip


def paste(frame, patch, mask, x, y) -> None:
    h, w = patch.shape[:2]
    fx0, fy0, fx1, fy1 = max(0, x), max(0, y), min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    p = patch[fy0 - y:fy1 - y, fx0 - x:fx1 - x].astype(np.float32)
    m = mask[fy0 - y:fy1 - y, fx0 - x:fx1 - x, None]
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    frame[fy0:fy1, fx0:fx1] = (p * m + region * (1 - m)).astype(np.uint8)


def degrade(frame, rng, blur_px: float) -> np.ndarray:
    if blur_px >= 1.5:
        k = int(blur_px) | 1
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        frame = cv2.filter2D(frame, -1, kernel)
    noisy = frame.astype(np.float32) + rng.normal(0, 4.0, frame.shape)
    ok, jpeg = cv2.imencode('.jpg', np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 70])
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def build(fps: float, seconds: float, which: str, backgrounds_per_walk: int = 2) -> list[Clip]:
    from retail_perception.face_model import FaceModel, to_rgb
    hog = FaceModel(detector='hog')
    backgrounds = [cv2.resize(cv2.imread(str(p)), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
                   for p in BACKGROUNDS]
    walks = [(PHOTOS[person][1 - g], person, g) for person in SETS[which] for g in (0, 1)]
    if which == 'tune':
        walks += [(STRANGER, None, 0), (STRANGER, None, 1)]
    clips = []
    for i, (name, person, g) in enumerate(walks):
        photo = cv2.imread(str(FACES / name))
        boxes = hog.detect(to_rgb(photo))
        assert len(boxes) == 1, f'{name}: {len(boxes)} HOG boxes'
        for b, background in enumerate(backgrounds):
            if backgrounds_per_walk == 1 and b != i % 2:
                continue
            clip = make_clip(FACES / name, person, background, fps, seconds, seed=2 * i + b, hog_box=boxes[0])
            clip.gallery = g
            clips.append(clip)
    return clips


def galleries_for(model, walk_in: bool = True) -> list:
    """Direction A and B galleries: every person of PHOTOS enrolled from one of their photos, as
    `retailbot faces enroll` does (face_model.enrollment_encodings: the photo's row and, with
    `walk_in`, its walk-in row)."""
    from retail_perception.gallery import Gallery
    galleries = []
    for g in (0, 1):
        gallery = Gallery()
        for person, photos in PHOTOS.items():
            rows = model.enrollment_encodings(FACES / photos[g], walk_in=walk_in)
            gallery.enroll(person, person, False, 'bench', rows[:1], walk_in=rows[1:])
        galleries.append(gallery)
    return galleries


def without(gallery, person: str):
    from retail_perception.gallery import Gallery
    other = Gallery()
    for cid, member in gallery.members.items():
        if cid != person:
            other.enroll(cid, member.name, False, 'bench', gallery.photo_rows_of(cid),
                         walk_in=gallery.walk_in_rows_of(cid))
    return other


class RecordingModel:
    """The real model; remembers the boxes of each frame (the detection figures come from the
    pipeline's own detections); `replay` can feed recorded boxes back (unused since the non-member
    re-runs are detected again and timed)."""

    def __init__(self, model):
        self.model, self.default_scale, self.detector = model, model.default_scale, model.detector
        self.replay: list | None = None
        self.boxes: list = []            # every detect call's boxes, in order (for the replay)

    def detect(self, rgb, scale=1.0):
        if self.replay is not None:
            return self.replay.pop(0)
        boxes = self.model.detect(rgb, scale)
        self.boxes.append(boxes)
        return boxes

    def encode(self, rgb, boxes):
        return self.model.encode(rgb, boxes)


def truth_width(box) -> float:
    return box[1] - box[3]


def _named_at(pipeline, clip: Clip, wrong: list, tag: str, per_frame: list | None = None) -> float | None:
    from retail_perception.face_pipeline import IDENTIFIED
    named_at = None
    for i, frame in enumerate(clip.frames):
        events = pipeline.process(frame, now_s=i / 15.0)
        if per_frame is not None:
            per_frame.append(list(pipeline.last_boxes))
        for event in events:
            if event.kind != IDENTIFIED:
                continue
            if event.customer_id != clip.person or tag == 'stranger':
                wrong.append((tag, clip.person, event.customer_id, i))
            elif named_at is None:
                named_at = truth_width(clip.truth[i])
    pipeline.flush()
    return named_at


_CLIPS: list[Clip] = []        # set before the workers fork
_WORKER: dict = {}


ROBOT_KEYS = ('min_identify_px', 'full_detect_every', 'evidence_frames', 'votes_needed', 'match_threshold',
              'match_margin')


def robot_config(path: Path = REPO / 'config' / 'perception.yaml') -> dict:
    """The faces node's decision parameters as the robot runs them (config/perception.yaml)."""
    import yaml
    params = yaml.safe_load(path.read_text())['perception/faces']['ros__parameters']
    return {key: params[key] for key in ROBOT_KEYS}


ROBOT_CONFIG = robot_config()
_OVERRIDES: dict = {}          # --min-identify-px etc. (yunet only), set before the workers fork


# yunet_nomirror: each face encoded once (before s12); yunet_photo_row: that, enrolled with the photo's
# row only (before s11)
PIPELINES = ('yunet', 'yunet_nomirror', 'yunet_photo_row', 'hog')


def _config(kind: str):
    from retail_perception.face_pipeline import PipelineConfig
    return (PipelineConfig(**(ROBOT_CONFIG | _OVERRIDES)) if kind.startswith('yunet') else
            PipelineConfig(detect_scale=0.5, min_identify_px=0, encode_every_unknown=3, evidence_frames=0))


def run_clip(job: tuple[str, int]) -> tuple:
    """One clip through one pipeline (in a worker pinned to one core): (named at px, wrong names,
    frames, CPU seconds, detections per frame)."""
    from retail_perception.face_model import FaceModel
    from retail_perception.face_pipeline import FacePipeline
    kind, index = job
    if kind not in _WORKER:
        model = RecordingModel(FaceModel(detector='yunet', mirror=None if kind == 'yunet' else False)
                               if kind.startswith('yunet') else   # HOG: as before issue 25
                               FaceModel(detector=kind, upscale_to_px=0, mirror=False))
        _WORKER[kind] = (model, galleries_for(model.model, walk_in=kind in ('yunet', 'yunet_nomirror')))
    model, galleries = _WORKER[kind]
    clip, config, wrong = _CLIPS[index], _config(kind), []
    model.replay, model.boxes = None, []
    started = time.process_time()
    per_frame: list = []
    named_at = _named_at(FacePipeline(model, galleries[clip.gallery], config), clip, wrong,
                         'member' if clip.person else 'stranger', per_frame)
    elapsed = time.process_time() - started
    stranger_elapsed = 0.0
    if clip.person is not None:
        # the same person, not a member this time: detected again (not replayed) and timed, as a
        # face nobody names is encoded in every frame from the gate on (the costliest case)
        model.replay = None
        started = time.process_time()
        _named_at(FacePipeline(model, without(galleries[clip.gallery], clip.person), config),
                  clip, wrong, 'stranger')
        stranger_elapsed = time.process_time() - started
    return named_at, wrong, len(clip.frames), elapsed, per_frame, stranger_elapsed


def _pin_worker(cores: list[int]) -> None:
    import multiprocessing
    ident = multiprocessing.current_process()._identity
    if hasattr(os, 'sched_setaffinity') and ident:
        os.sched_setaffinity(0, {cores[(ident[0] - 1) % len(cores)]})


def run_all(kinds: tuple[str, ...], jobs: int) -> list[dict]:
    import multiprocessing
    work = [(kind, i) for kind in kinds for i in range(len(_CLIPS))]
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else [0]
    if jobs > 1:
        with multiprocessing.get_context('fork').Pool(jobs, _pin_worker, (cores,)) as pool:
            done = pool.map(run_clip, work, chunksize=1)
    else:
        _pin_worker(cores)
        done = [run_clip(job) for job in work]
    results = []
    for kind in kinds:
        rows = [r for (k, _), r in zip(work, done) if k == kind]
        first_named_px = [r[0] for r, clip in zip(rows, _CLIPS) if clip.person is not None]
        members = len(first_named_px)
        named = [w for w in first_named_px if w is not None]
        results.append({
            'pipeline': kind, 'member_approaches': members, 'non_member_approaches': len(_CLIPS),
            'named_before_50px': sum(w < 50 for w in named) / members,
            'named_before_45px': sum(w < 45 for w in named) / members,
            'named_before_50px_wilson95': wilson(sum(w < 50 for w in named), members),
            'named_before_45px_wilson95': wilson(sum(w < 45 for w in named), members),
            'never_named': members - len(named),
            'first_named_px': [None if w is None else round(w, 1) for w in first_named_px],
            'median_first_named_px': round(statistics.median(named), 1) if named else None,
            'wrong_names': sum(len(r[1]) for r in rows), 'wrong': [w for r in rows for w in r[1]],
            'fps_one_core': round(sum(r[2] for r in rows) / sum(r[3] for r in rows), 2),
            'fps_one_core_non_member': round(sum(r[2] for r, c in zip(rows, _CLIPS) if c.person) /
                                             max(1e-9, sum(r[5] for r in rows)), 2)}
            | detection_figures(kind, _CLIPS, [r[4] for r in rows]))
    return results


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval of k successes in n trials."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre, half = (p + z * z / (2 * n)), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round((centre - half) / (1 + z * z / n), 3), round((centre + half) / (1 + z * z / n), 3)]


def detection_figures(kind: str, clips: list[Clip], detections: list) -> dict:
    due = found = false = frames = 0
    for clip, per_frame in zip(clips, detections):
        for truth, boxes in zip(clip.truth, per_frame):
            frames += 1
            hit = False
            for t, r, b, l in boxes:
                cx, cy = (l + r) / 2, (t + b) / 2
                if truth is not None and truth[3] <= cx <= truth[1] and truth[0] <= cy <= truth[2] \
                        and 0.5 <= (r - l) / truth_width(truth) <= 2.0 and not hit:
                    hit = True
                else:
                    false += 1
            if truth is not None and truth_width(truth) >= 33:
                due += 1
                found += hit
    return {'detected_ge_33px': round(found / due, 3) if due else None,
            'false_per_100_frames': round(100 * false / frames, 2), 'frames': frames}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fps', type=float, default=15.0)
    parser.add_argument('--seconds', type=float, default=3.0)
    parser.add_argument('--only', choices=('yunet', 'hog'))
    parser.add_argument('--pipelines', nargs='+', choices=PIPELINES,
                        help='pipelines run side by side (default: yunet hog; yunet_photo_row = today\'s '
                        'pipeline with members enrolled from the photo\'s row only, as before the walk-in rows)')
    parser.add_argument('--set', choices=tuple(SETS), default='report',
                        help='identities: report (the README\'s figures) or tune (what choices were tried on)')
    parser.add_argument('--backgrounds', type=int, choices=(1, 2), default=2,
                        help='each walk on both backgrounds (2) or alternating (1)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='worker processes (each pinned to one core; figures per CPU-second)')
    parser.add_argument('--json', action='store_true', help='one JSON line per pipeline')
    for flag in ('min-identify-px', 'evidence-frames', 'full-detect-every'):
        parser.add_argument(f'--{flag}', type=int, help='yunet pipeline: override PipelineConfig (trying choices: '
                            'on --set tune only)')
    args = parser.parse_args()
    _OVERRIDES.update({k: v for k in ('min_identify_px', 'evidence_frames', 'full_detect_every')
                       if (v := getattr(args, k)) is not None})
    _CLIPS[:] = build(args.fps, args.seconds, args.set, args.backgrounds)
    print(f'{args.set} set: {len(_CLIPS)} clips, {sum(len(c.frames) for c in _CLIPS)} frames of '
          f'{WIDTH}x{HEIGHT}', file=sys.stderr)
    kinds = tuple(args.pipelines) if args.pipelines else (args.only,) if args.only else ('yunet', 'hog')
    results = run_all(kinds, args.jobs)
    for result in results:
        kind = result['pipeline']
        if args.json:
            print(json.dumps(result))
        else:
            lo, hi = result['named_before_50px_wilson95']
            print(f"{kind:6} {result['member_approaches']} member approaches: named <50 px"
                  f" {result['named_before_50px']:.0%} (95 % {lo:.0%}-{hi:.0%})  <45 px {result['named_before_45px']:.0%}"
                  f"  first named at {result['first_named_px']} px (median {result['median_first_named_px']})"
                  f"  wrong names {result['wrong_names']} (in {result['member_approaches'] + result['non_member_approaches']}"
                  f" approaches)  {result['fps_one_core']} frames/s"
                  f" ({result['fps_one_core_non_member']} with a face nobody names)"
                  f"  faces >=33 px detected {result['detected_ge_33px']:.1%}"
                  f"  false detections {result['false_per_100_frames']}/100 frames", flush=True)
    for a in results[1:]:
        print(f"ratio {results[0]['pipeline']}/{a['pipeline']} frames/s: "
              f"{results[0]['fps_one_core'] / a['fps_one_core']:.2f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
