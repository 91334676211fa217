"""The Foxglove camera view blurs faces unless a staff member is logged in: on real photos with the
robot's own face detector, the blurred view has no face a detector can find and its face pixels
changed, the rest of the frame did not; with staff logged in the faces are there; with no detector
(or a failing one) nothing is sent; at most one frame per period."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from retail_observe.camera_view import CameraView, blur_faces, grow, shrink

PHOTOS = Path(__file__).resolve().parents[1] / 'data' / 'faces' / 'probe'


@pytest.fixture(scope='module')
def detect():
    from retail_perception.face_model import FaceModel
    model = FaceModel()
    return lambda bgr: model.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), model.default_scale)


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize('photo', ['two_people.jpg', 'obama-480p.jpg'])
def test_faces_are_blurred_where_the_face_boxes_are(detect, photo):
    bgr = shrink(cv2.imread(str(PHOTOS / photo)))
    faces = detect(bgr)
    assert faces, f'the detector finds the faces of {photo}'
    view = decode(CameraView(detect).frame(0.0, bgr, staff_logged_in=False))
    assert view.shape == bgr.shape
    assert detect(view) == [], 'no face can be found in the blurred view'
    mask = np.zeros(bgr.shape[:2], bool)
    for box in faces:
        top, right, bottom, left = box
        # inside each face box: the fine detail is gone (pixels far from the original)
        inside = np.abs(view[top:bottom, left:right].astype(int) - bgr[top:bottom, left:right].astype(int))
        assert inside.mean() > 12, f'face {box} barely changed (mean difference {inside.mean():.1f})'
        assert cv2.Laplacian(view[top:bottom, left:right], cv2.CV_64F).var() < \
            0.2 * cv2.Laplacian(bgr[top:bottom, left:right], cv2.CV_64F).var()
        t, r, b, l = grow(box, bgr.shape)
        mask[t:b, l:r] = True
    # outside the grown boxes: the same picture (JPEG noise only)
    outside = np.abs(view.astype(int) - bgr.astype(int))[~mask]
    assert outside.mean() < 6


def test_staff_logged_in_sees_the_faces(detect):
    bgr = shrink(cv2.imread(str(PHOTOS / 'two_people.jpg')))
    view = decode(CameraView(detect).frame(0.0, bgr, staff_logged_in=True))
    assert len(detect(view)) == len(detect(bgr))


def test_no_detector_or_a_failing_one_sends_nothing():
    bgr = shrink(cv2.imread(str(PHOTOS / 'two_people.jpg')))
    assert CameraView(None).frame(0.0, bgr, staff_logged_in=False) is None

    def broken(_):
        raise RuntimeError('model file damaged')
    view = CameraView(broken)
    assert view.frame(0.0, bgr, staff_logged_in=False) is None and view.dropped_no_detector == 1


def test_at_most_one_frame_per_period():
    bgr = np.zeros((120, 160, 3), np.uint8)
    view = CameraView(lambda _: [], period_s=1.0)
    sent = [view.frame(t, bgr, False) is not None for t in (0.0, 0.4, 0.99, 1.0, 1.5, 2.1)]
    assert sent == [True, False, False, True, False, True]


def test_a_box_at_the_edge_of_the_frame_is_blurred_inside_the_frame():
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    out = blur_faces(bgr, [(-5, 120, 40, 80)])   # top/right outside the frame
    assert out.shape == bgr.shape and not np.array_equal(out[0:40, 80:100], bgr[0:40, 80:100])
    assert np.array_equal(out[60:, :60], bgr[60:, :60])
