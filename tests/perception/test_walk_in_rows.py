"""Walk-in rows: each enrolment photo also gives the member a row encoded from copies of the photo
shrunk to the widths a walking-in member is first seen at (face_model.walk_in_encoding)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from perception_support import photos
from retail_perception.face_pipeline import FacePipeline, PipelineConfig, walk_in_rows
from retail_perception.gallery import Gallery, GalleryError, GalleryStore


def unit(seed: int, near: np.ndarray | None = None, distance: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=128)
    v = v / np.linalg.norm(v)
    if near is None:
        return (v * 0.8).astype(np.float32)
    step = v - near * (v @ near) / (near @ near)
    return (near + distance * step / np.linalg.norm(step)).astype(np.float32)


def test_walk_in_rows_are_searched_but_not_counted_as_photos_nor_held_to_the_same_person_check():
    photo = unit(1)
    far = unit(2, photo, 0.7)     # a far copy may drift beyond the 0.6 same-person check
    gallery = Gallery()
    member = gallery.enroll('m-1', 'Ann', False, 'C', photo[None], walk_in=far[None])
    assert (member.embeddings, member.walk_in_rows) == (1, 1)
    gallery.enroll('m-2', 'Bob', False, 'C', unit(3)[None])
    probe = unit(4, far, 0.3)     # a far frame near the walk-in row, far from the photo row
    assert np.linalg.norm(probe - photo) > 0.5
    assert gallery.search(probe, 0.5, 0.05).customer_id == 'm-1'
    with pytest.raises(GalleryError, match='different people'):     # photos are still checked
        gallery.enroll('m-3', 'Cy', False, 'C', np.stack([photo, far]))


def test_added_photos_keep_photo_rows_first_and_survive_the_encrypted_store(tmp_path):
    a, b = unit(1), None
    b = unit(5, a, 0.3)
    far_a, far_b = unit(6, a, 0.65), unit(7, b, 0.65)
    store = GalleryStore(tmp_path / 'faces', bytes(range(32)))
    with store.transaction() as gallery:
        gallery.enroll('m-1', 'Ann', False, 'C', a[None], walk_in=far_a[None])
    with store.transaction() as gallery:
        member = gallery.add_photos('m-1', b[None], walk_in=far_b[None])   # far_a is 0.65 from b: not checked
    assert (member.embeddings, member.walk_in_rows) == (2, 2)
    loaded = store.load()
    np.testing.assert_allclose(loaded.photo_rows_of('m-1'), np.stack([a, b]), atol=1e-6)
    np.testing.assert_allclose(loaded.walk_in_rows_of('m-1'), np.stack([far_a, far_b]), atol=1e-6)
    with pytest.raises(GalleryError, match='different people'):
        loaded.add_photos('m-1', unit(8)[None])


def test_a_gallery_written_before_walk_in_rows_reads_as_photo_rows_only():
    import json
    import struct
    rows = np.stack([unit(1), unit(9, unit(1), 0.2)])
    member = {'customer_id': 'm-1', 'name': 'Ann', 'vip': False, 'consent_ref': 'C', 'enrolled_at': 0.0,
              'last_seen': 0.0, 'embeddings': 2}                       # a member record of before
    meta = json.dumps({'members': [member], 'owners': ['m-1', 'm-1']}).encode()
    old = Gallery.from_bytes(struct.pack('<Q', len(meta)) + meta + rows.astype('<f4').tobytes())
    assert old.members['m-1'].walk_in_rows == 0 and len(old.photo_rows_of('m-1')) == 2


@pytest.fixture(scope='module')
def obama_rows(face_model):
    return face_model.enrollment_encodings(photos('obama')[0])


def test_an_enrolment_photo_gives_its_own_row_then_a_reproducible_walk_in_row(face_model, obama_rows):
    assert obama_rows.shape == (2, 128)
    np.testing.assert_allclose(obama_rows[0], face_model.enrollment_encoding(photos('obama')[0]), atol=1e-6)
    assert 0.1 < np.linalg.norm(obama_rows[1] - obama_rows[0]) < 0.5
    np.testing.assert_allclose(face_model.enrollment_encodings(photos('obama')[0]), obama_rows, atol=1e-6)
    assert face_model.enrollment_encodings(photos('obama')[0], walk_in=False).shape == (1, 128)


def test_the_member_seen_far_away_is_nearer_the_walk_in_row_than_the_photo_row(face_model, obama_rows):
    """What the row is for: the member's OTHER photo shrunk to 36-44 px on a grey frame (softened
    differently from the enrolment's own copies) sits nearer the walk-in row."""
    image = cv2.imread(str(photos('obama')[1]))
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    (box,) = face_model.detect(rgb, min(1.0, 1024 / max(rgb.shape[:2])))
    to_photo, to_walk_in = [], []
    for width in (36, 40, 44):
        scale = width / (box[1] - box[3])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((360, 640, 3), 90, np.uint8)
        frame[40:40 + small.shape[0], 60:60 + small.shape[1]] = small[:320, :580]
        frame = cv2.cvtColor(cv2.GaussianBlur(frame, (3, 1), 0), cv2.COLOR_BGR2RGB)
        (found,) = face_model.detect(frame)
        encoding = face_model.encode(frame, [found])[0]
        to_photo.append(np.linalg.norm(encoding - obama_rows[0]))
        to_walk_in.append(np.linalg.norm(encoding - obama_rows[1]))
    assert np.mean(to_walk_in) < np.mean(to_photo), (to_walk_in, to_photo)


class _Model:
    """Boxes and encodings given; records the walk-in requests."""
    detector, default_scale = 'yunet', 1.0

    def __init__(self):
        self.box = (100, 140, 140, 100)
        self.asked: list = []

    def detect(self, rgb, scale=1.0):
        return [self.box]

    def encode(self, rgb, boxes):
        return np.tile(unit(1), (len(boxes), 1))

    def walk_in_encoding(self, bgr, box):
        self.asked.append((bgr.shape, box))
        return unit(2)


def test_a_track_keeps_its_widest_face_for_an_enrolment_at_the_robot():
    model = _Model()
    pipeline = FacePipeline(model, lambda: Gallery(), PipelineConfig(min_identify_px=0, full_detect_every=1))
    frame = np.zeros((480, 640, 3), np.uint8)
    for box in [(100, 140, 140, 100), (95, 146, 146, 95), (98, 142, 142, 98)]:
        model.box = box
        pipeline.process(frame)
    (track,) = pipeline.tracks.values()
    crop, box = track.face_crop
    assert box[1] - box[3] == 51 and crop.shape[:2] == (153, 153), 'the widest face, one face width around it'
    rows = walk_in_rows(model, track.face_crop)
    assert rows.shape == (1, 128) and model.asked == [(crop.shape, box)]
    assert walk_in_rows(model, None) is None
