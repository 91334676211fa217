"""A REAL face at changing sizes: the video of tests/data/faces, zoomed out and back in, through the
live pipeline (YuNet, the robot's configuration from config/perception.yaml), as a member and as a
stranger.

    .venv/bin/python benches/faces_video_walkin.py [--json]

`video/short_hamilton_clip.mp4` (640x360, 29.97 fps; real people, real motion, pose and lighting)
has one person's face, ~80 px wide, in frames 90-210 (4 s). Those frames, taken at 15 fps, are
shrunk so the face grows from ~29 px to ~88 px (a person walking up from ~4.2 m to ~1.4 m before
a 1280x720 70° camera) and pasted in the middle of an empty-aisle photo (frames 1280x720, JPEG 70).
Who it is comes from the encoder at the video's own resolution (nearest enrolment photo, every
frame of the segment). Runs: (a) members enrolled from `enroll/*.png` and every person's first
`train` photo: the person must be named, and only by their name; the face width when first named
is reported; (b) the same frames with that person removed from the gallery: any name is wrong.
One clip, one person: an illustration that real video behaves like the synthetic walk-ins, not a
rate.
"""
from __future__ import annotations

import os

os.environ.setdefault('OMP_NUM_THREADS', '1')

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import faces_walkin as walkin  # noqa: E402

VIDEO = walkin.FACES / 'video' / 'short_hamilton_clip.mp4'
SEGMENT = (90, 210)               # one face, no cut
FACE_START, FACE_END = 29.0, 88.0  # face width at the start and end of the zoom (px)


def frames_of_segment() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VIDEO))
    out, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if SEGMENT[0] <= i < SEGMENT[1] and (i - SEGMENT[0]) % 2 == 0:
            out.append(frame)
        i += 1
    return out


def enrolment() -> dict[str, str]:
    people = {'alex_lacamoire': 'enroll/alex-lacamoire.png', 'lin_manuel_miranda': 'enroll/lin-manuel-miranda.png'}
    for person, photos in walkin.PHOTOS.items():
        people.setdefault(person, photos[0])
    return people


def main() -> int:
    warnings.simplefilter('ignore')
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    from retail_perception.face_model import FaceModel, load_bgr, to_rgb
    from retail_perception.face_pipeline import IDENTIFIED, FacePipeline, PipelineConfig
    from retail_perception.gallery import Gallery
    model = FaceModel(detector='yunet')
    raw = frames_of_segment()
    native = [model.detect(to_rgb(f)) for f in raw]
    width0 = float(np.median([b[0][1] - b[0][3] for b in native if len(b) == 1]))
    people = enrolment()
    embeddings = {p: model.faces_in_photo(load_bgr(walkin.FACES / photo))[1][0] for p, photo in people.items()}
    votes = []
    for frame, boxes in zip(raw, native):
        if len(boxes) == 1:
            e = model.encode(to_rgb(frame), boxes)[0]
            votes.append(min(embeddings, key=lambda p: np.linalg.norm(embeddings[p] - e)))
    who = max(set(votes), key=votes.count)
    background = cv2.resize(cv2.imread(str(walkin.BACKGROUNDS[0])), (walkin.WIDTH, walkin.HEIGHT),
                            interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(3)
    frames, widths = [], []
    for k, frame in enumerate(raw):
        face = FACE_START + (FACE_END - FACE_START) * k / max(1, len(raw) - 1)
        scale = face / width0
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = background.copy()
        y, x = (walkin.HEIGHT - small.shape[0]) // 2, (walkin.WIDTH - small.shape[1]) // 2
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
        frames.append(walkin.degrade(canvas, rng, 0))
        widths.append(face)
    config = PipelineConfig(**walkin.ROBOT_CONFIG)
    results = {'person': who, 'labels_agree': round(votes.count(who) / len(votes), 3), 'frames': len(frames),
               'face_px': [FACE_START, FACE_END], 'native_face_px': width0}
    for member in (True, False):
        gallery = Gallery()
        for person, e in embeddings.items():
            if member or person != who:
                gallery.enroll(person, person, False, 'bench', e[None, :])
        pipeline = FacePipeline(model, gallery, config)
        named_px, wrong, detected = None, [], 0
        started = time.process_time()
        for i, frame in enumerate(frames):
            events = pipeline.process(frame, now_s=i / 15.0)
            detected += bool(pipeline.last_boxes)
            for event in events:
                if event.kind != IDENTIFIED:
                    continue
                if not member or event.customer_id != who:
                    wrong.append((event.customer_id, i, round(widths[i], 1)))
                elif named_px is None:
                    named_px = round(widths[i], 1)
        pipeline.flush()
        tag = 'member' if member else 'stranger'
        results[tag] = {'first_named_px': named_px, 'wrong_names': wrong,
                        'frames_with_a_face_found': detected,
                        'fps_one_core': round(len(frames) / (time.process_time() - started), 2)}
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{who} (labels agree {results['labels_agree']:.0%}), {len(frames)} frames, face {FACE_START}->"
              f"{FACE_END} px: as a member first named at {results['member']['first_named_px']} px, wrong names "
              f"{results['member']['wrong_names']}; as a stranger wrong names {results['stranger']['wrong_names']}; "
              f"face found in {results['member']['frames_with_a_face_found']}/{len(frames)} frames; "
              f"{results['member']['fps_one_core']} frames/s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
