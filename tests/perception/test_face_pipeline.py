"""The pipeline's tracking, voting and geometry, with a scripted detector (fast, deterministic);
the real models run in test_recognition.py, test_cli.py and test_nodes.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retail_perception.face_pipeline import (APPEARED, APPROACHING, IDENTIFIED, LEFT, FacePipeline,
                                             PipelineConfig, face_bearing_rad, face_distance_m)
from retail_perception.gallery import Gallery

FRAME = np.zeros((360, 640, 3), np.uint8)
MEMBER = np.zeros(128, np.float32)
STRANGER = np.full(128, 0.1, np.float32)


class ScriptedModel:
    """Boxes and encodings per frame from a script; counts how often encoding ran."""

    def __init__(self, script):
        self.script, self.frame, self.encoded = script, -1, 0

    def detect(self, rgb, scale=1.0):
        self.frame += 1
        return [box for box, _ in self.script(self.frame)]

    def encode(self, rgb, boxes):
        self.encoded += len(boxes)
        faces = dict(self.script(self.frame))
        return np.stack([faces[tuple(b)] for b in boxes])


def _box(centre_x: int, width: int) -> tuple:
    return (150 - width // 2, centre_x + width // 2, 150 + width // 2, centre_x - width // 2)


def _gallery() -> Gallery:
    gallery = Gallery()
    gallery.enroll('m1', 'Li Na', True, 'C-1', MEMBER)
    return gallery


def _scripted(**overrides) -> PipelineConfig:
    """The robot's config, but the whole frame searched every frame: a scripted detector answers
    by call (one call = one frame) in frame coordinates, whatever image it is given, so it cannot
    answer the region searches between full ones (those have their own tests below, with a
    detector that looks at the image it is given)."""
    return PipelineConfig(**({'full_detect_every': 1} | overrides))


def _run(script, frames, config=None):
    config = config or _scripted()
    model = ScriptedModel(script)
    pipeline = FacePipeline(model, _gallery(), config)
    events = [(i, e) for i in range(frames) for e in pipeline.process(FRAME)]
    return pipeline, model, events


def test_member_walking_up_is_appeared_identified_approaching_then_left():
    def script(i):  # face grows from 60 to 160 px in the centre for 30 frames, then nobody
        return [(_box(320, 60 + 100 * i // 29), MEMBER)] if i < 30 else []
    pipeline, model, events = _run(script, 45)
    kinds = [e.kind for _, e in events]
    assert kinds == [APPEARED, IDENTIFIED, APPROACHING, LEFT]
    identified = events[1][1]
    assert (identified.customer_id, identified.name, identified.vip) == ('m1', 'Li Na', True)
    assert 0.5 < identified.confidence <= 1.0
    assert len({e.track_id for _, e in events}) == 1
    # encoded on appearance and a few times until named, then only on refresh: not every frame
    assert model.encoded <= 6
    assert events[1][0] <= 6, 'identified too late'


def test_stranger_is_never_named_and_their_encodings_stay_in_memory_only():
    pipeline, _, events = _run(lambda i: [(_box(200, 80), STRANGER)] if i < 20 else [], 35)
    assert [e.kind for _, e in events] == [APPEARED, LEFT]
    assert all(e.customer_id == '' and e.confidence == 0.0 for _, e in events)


def test_one_lucky_match_is_not_enough_votes():
    def script(i):  # a stranger who matches the member once
        return [(_box(320, 80), MEMBER if i == 0 else STRANGER)]
    pipeline, _, events = _run(script, 20)
    assert IDENTIFIED not in [e.kind for _, e in events]


def test_anonymous_mode_never_encodes_or_names():
    pipeline, model, events = _run(lambda i: [(_box(320, 60 + 4 * i), MEMBER)] if i < 25 else [], 40,
                                   _scripted(identify=False))
    assert model.encoded == 0
    assert [e.kind for _, e in events] == [APPEARED, APPROACHING, LEFT]
    assert all(e.customer_id == '' for _, e in events)


def test_two_people_keep_their_own_track_ids():
    def script(i):
        return [(_box(150 + i, 80), MEMBER), (_box(500 - i, 80), STRANGER)]
    pipeline, _, events = _run(script, 12)
    appeared = [e for _, e in events if e.kind == APPEARED]
    assert len(appeared) == 2 and appeared[0].track_id != appeared[1].track_id
    named = {e.track_id for _, e in events if e.kind == IDENTIFIED}
    assert named == {t.track_id for t in pipeline.tracks.values() if t.identity}
    assert len(named) == 1


def test_face_off_to_the_side_is_not_approaching():
    pipeline, _, events = _run(lambda i: [(_box(40, 40 + 4 * i), STRANGER)], 30)
    assert APPROACHING not in [e.kind for _, e in events]


def test_distance_and_bearing_from_the_face_box():
    config = PipelineConfig(horizontal_fov_rad=math.radians(90), face_width_m=0.15)
    # focal = 320 px: a 160 px face is 0.3 m away; a face at the left edge is +45°
    assert face_distance_m(_box(320, 160), 640, config) == pytest.approx(0.3)
    assert face_bearing_rad(_box(0, 20), 640, config) == pytest.approx(math.radians(45), abs=1e-3)
    assert face_bearing_rad(_box(640, 20), 640, config) < 0


def test_someone_else_in_the_same_place_is_a_new_track():
    def script(i):  # a stranger, then (same box) the member: e.g. photos swapped in the replay
        return [(_box(320, 100), STRANGER if i < 10 else MEMBER)]
    pipeline, _, events = _run(script, 25, _scripted(refresh_every=3))
    summary = [(e.kind, e.track_id, e.customer_id) for _, e in events]
    assert summary[:2] == [(APPEARED, 1, ''), (LEFT, 1, '')]
    assert (IDENTIFIED, 2, 'm1') in summary
    assert APPROACHING not in [k for k, _, _ in summary]


def test_with_slow_frames_a_person_is_gone_after_seconds_not_frames():
    """A loaded robot may get 1-2 camera frames a second: 8 missed frames would be 5-8 s of
    talking to nobody; with max_missed_s the customer has left after ~2 s."""
    model = ScriptedModel(lambda i: [(_box(320, 120), MEMBER)] if i < 6 else [])
    pipeline = FacePipeline(model, _gallery(), _scripted(max_missed=8, max_missed_s=2.0))
    left_at = None
    for i in range(20):
        now = i * 0.7                                        # 1.4 frames a second
        if any(e.kind == LEFT for e in pipeline.process(FRAME, now)):
            left_at = now
            break
    last_seen = 5 * 0.7
    assert left_at is not None and last_seen + 2.0 < left_at <= last_seen + 2.0 + 0.7 + 0.7


def _off(i: int, shared: float, own: float) -> np.ndarray:
    """The member plus a `shared` offset (the same every frame) and an `own` one (this frame's)."""
    offset = np.zeros(128, np.float32)
    offset[0] = shared
    offset[1 + i % 127] = own
    return MEMBER + offset


def test_a_member_seen_through_noise_is_named_from_the_mean_of_frames_not_single_votes():
    """Each frame alone is 0.53 from the member (beyond the 0.5 threshold: blur, a far face), its
    noise in a different direction each time: the mean of 2 frames is 0.45 away and names them;
    the older single-frame votes never would."""
    def script(i):
        return [(_box(320, 80), _off(i, 0.35, 0.4))] if i < 20 else []
    _, _, events = _run(script, 25)
    named = [(i, e.customer_id) for i, e in events if e.kind == IDENTIFIED]
    assert named == [(1, 'm1')]
    _, _, events = _run(script, 25, _scripted(evidence_frames=0))
    assert IDENTIFIED not in [e.kind for _, e in events]


def test_a_stranger_consistently_beyond_the_threshold_is_not_averaged_into_a_member():
    """Averaging removes noise, not a real difference: someone 0.55 from the member in every frame
    (the same direction) stays 0.55 away however many frames are averaged."""
    _, _, events = _run(lambda i: [(_box(320, 80), _off(0, 0.55, 0.0))] if i < 20 else [], 25)
    assert IDENTIFIED not in [e.kind for _, e in events]


def test_a_lucky_frame_diluted_by_the_others_names_nobody():
    def script(i):  # frames 0-1 a stranger, frame 2 matches the member exactly, then strangers
        return [(_box(320, 80), MEMBER if i == 2 else STRANGER)]
    _, _, events = _run(script, 20)
    assert IDENTIFIED not in [e.kind for _, e in events]


class SquareFinder:
    """A detector of bright squares in the pixels it is given (so a search of a region really sees
    only that region); remembers the size of every image searched. Encodes everyone as MEMBER."""

    def __init__(self):
        self.searched: list[tuple[int, int]] = []

    def detect(self, rgb, scale=1.0):
        import cv2
        self.searched.append(rgb.shape[:2])
        mask = (rgb[..., 0] > 128).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [(int(y), int(x + w), int(y + h), int(x)) for x, y, w, h, _ in stats[1:count]]

    def encode(self, rgb, boxes):
        return np.stack([MEMBER for _ in boxes]) if boxes else np.zeros((0, 128), np.float32)


def _scene(squares) -> np.ndarray:
    frame = np.zeros((720, 1280, 3), np.uint8)
    for top, left, side in squares:
        frame[top:top + side, left:left + side] = 255
    return frame


@pytest.mark.parametrize('every', [1, 3])
def test_between_full_searches_only_the_regions_around_people_are_searched(every):
    finder = SquareFinder()
    pipeline = FacePipeline(finder, _gallery(), PipelineConfig(full_detect_every=every))
    seen = []
    for i in range(7):   # A walks right 5 px a frame; B (far left) is there from frame 1 on
        squares = [(300, 600 + 5 * i, 40)] + ([(100, 50, 36)] if i >= 1 else [])
        pipeline.process(_scene(squares))
        seen.append(sorted(pipeline.last_boxes, key=lambda b: b[3]))
        # A's box is in frame coordinates whichever image was searched
        assert (300, 640 + 5 * i, 340, 600 + 5 * i) in pipeline.last_boxes
    full = [s for s in finder.searched if s == (720, 1280)]
    if every == 1:
        assert len(full) == 7 and all(len(b) == 2 for b in seen[1:])
    else:   # full frame at 0, 3, 6; regions (around A, then A and B) in between
        assert len(full) == 3 and len(finder.searched) > 3
        assert all(h * w < 720 * 1280 / 20 for h, w in finder.searched if (h, w) != (720, 1280))
        assert [len(b) for b in seen] == [1, 1, 1, 2, 2, 2, 2], 'B is found at the next full search'


def test_region_search_starts_from_the_whole_frame_when_nobody_is_followed():
    finder = SquareFinder()
    pipeline = FacePipeline(finder, _gallery(), PipelineConfig(full_detect_every=5))
    for i in range(3):
        pipeline.process(_scene([]))
    pipeline.process(_scene([(300, 600, 40)]))
    assert finder.searched == [(720, 1280)] * 4 and len(pipeline.last_boxes) == 1


@pytest.mark.parametrize('shape', [(0, 640, 3), (480, 0, 3), (1, 4000, 3), (8, 8, 3), (480, 640)])
def test_a_frame_too_small_for_a_face_is_a_frame_without_faces(shape):
    """Attack (session 12): a zero-size or one-row frame raised cv2.error out of the detector and
    took the faces node down. It is a frame in which nobody is seen: tracks age as usual."""
    from retail_perception.face_model import FaceModel
    pipeline = FacePipeline(FaceModel(), None, PipelineConfig(identify=False))
    assert pipeline.process(np.zeros(shape, np.uint8), 0.0) == []
    assert pipeline.process(np.zeros((120, 160, 3), np.uint8), 0.1) == []     # and the next frame is read
