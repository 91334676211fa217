"""Far faces: YuNet finds them on the full frame, the pipeline names them only once the encoder is
reliable, identify encodes at full resolution, and distances use the camera's calibration."""
from __future__ import annotations

import math
import os
import sys

import cv2
import numpy as np
import pytest

from perception_support import FACES, photos
from retail_perception.camera_info import CalibrationError, from_fov, load_calibration
from retail_perception.face_pipeline import (APPEARED, IDENTIFIED, FacePipeline, PipelineConfig,
                                             face_distance_m)
from retail_perception.gallery import Gallery

MEMBER = np.zeros(128, np.float32)


def _frame_with_face(photo, box, face_width: int, size=(1280, 720)) -> tuple[np.ndarray, tuple]:
    """A grey frame with the photo's face `face_width` px wide in the centre; also its true box."""
    top, right, bottom, left = box
    scale = face_width / (right - left)
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    w, h = size
    frame = np.full((h, w, 3), 110, np.uint8)
    cx, cy = (left + right) / 2 * scale, (top + bottom) / 2 * scale
    x0, y0 = int(w / 2 - cx), int(h / 2 - cy)
    sx0, sy0, sx1, sy1 = max(0, -x0), max(0, -y0), min(small.shape[1], w - x0), min(small.shape[0], h - y0)
    frame[y0 + sy0:y0 + sy1, x0 + sx0:x0 + sx1] = small[sy0:sy1, sx0:sx1]
    return frame, (h / 2 - (cy - top * scale), w / 2 + face_width / 2, h / 2 + (bottom * scale - cy), w / 2 - face_width / 2)


@pytest.fixture(scope='module')
def yunet():
    from retail_perception.face_model import FaceModel
    return FaceModel(detector='yunet')


@pytest.fixture(scope='module')
def hog():
    from retail_perception.face_model import FaceModel
    return FaceModel(detector='hog')


def _found(boxes, truth) -> bool:
    return any(truth[3] <= (l + r) / 2 <= truth[1] and truth[0] <= (t + b) / 2 <= truth[2] for t, r, b, l in boxes)


@pytest.mark.parametrize('person', ['obama', 'biden', 'rose_leslie'])
def test_a_face_at_4_m_is_found_by_yunet_on_the_full_frame_and_missed_by_hog(yunet, hog, person):
    from retail_perception.face_model import load_bgr, to_rgb
    photo = load_bgr(photos(person)[1])
    (box,) = hog.detect(to_rgb(photo))
    frame, truth = _frame_with_face(photo, box, 34)          # 34 px: 4 m with a 70° 1280x720 camera
    rgb = to_rgb(frame)
    found = yunet.detect(rgb, yunet.default_scale)
    assert _found(found, truth) and len(found) == 1, f'{person}: YuNet boxes {found}'
    assert not _found(hog.detect(rgb, hog.default_scale), truth), 'HOG at x0.5 should miss a 34 px face'


def test_empty_aisle_has_no_face(yunet):
    from retail_perception.face_model import load_bgr, to_rgb
    for name in ('b-empty-aisle.png', 'z-empty-aisle.png'):
        aisle = load_bgr(FACES.parent.parent.parent / 'src' / 'perception' / 'sim_camera' / name)
        assert yunet.detect(to_rgb(cv2.resize(aisle, (1280, 720))), 1.0) == [], name


def test_identify_encodes_at_full_resolution(yunet):
    """A 60 px face in a 3000 px wide photo: detection sees it shrunk to 20 px, the encoding is
    made from the full-size face and still names the person."""
    from retail_perception.face_model import load_bgr, to_rgb
    photo = load_bgr(photos('obama')[1])
    (box,) = yunet.detect(to_rgb(photo))
    frame, _ = _frame_with_face(photo, box, 60, size=(3000, 1700))
    gallery = Gallery()
    gallery.enroll('obama', 'Obama', False, 'C', yunet.enrollment_encoding(photos('obama')[0]))
    gallery.enroll('biden', 'Biden', False, 'C', yunet.enrollment_encoding(photos('biden')[0]))
    boxes, encodings = yunet.faces_in_photo(frame)
    assert len(boxes) == 1 and 40 <= boxes[0][1] - boxes[0][3] <= 90, boxes
    assert gallery.search(encodings[0], 0.5, 0.05).customer_id == 'obama'


def test_without_the_yuface_wheel_hog_runs_and_yunet_is_refused(monkeypatch):
    from retail_perception.face_model import DetectorUnavailable, FaceModel, detector_status
    monkeypatch.setitem(sys.modules, 'yuface', None)          # import yuface -> ImportError
    assert FaceModel().detector == 'hog'
    assert detector_status()[0] == 'hog' and 'yuface' in detector_status()[1]
    with pytest.raises(DetectorUnavailable, match='yuface'):
        FaceModel(detector='yunet')


class GrowingFace:
    """One member walking up: face width 20, 22, 24 ... px; counts encodings and their widths."""

    def __init__(self):
        self.frame, self.encoded_widths = -1, []

    def detect(self, rgb, scale=1.0):
        self.frame += 1
        w = 20 + 2 * self.frame
        return [(200 - w // 2, 640 + w // 2, 200 + w // 2, 640 - w // 2)]

    def encode(self, rgb, boxes):
        self.encoded_widths += [b[1] - b[3] for b in boxes]
        return np.stack([MEMBER for _ in boxes])


def test_small_faces_are_followed_but_named_only_from_min_identify_px():
    gallery = Gallery()
    gallery.enroll('m1', 'Li Na', False, 'C', MEMBER)
    model = GrowingFace()
    # GrowingFace answers by call, not by the image it is given: the whole frame every frame
    pipeline = FacePipeline(model, gallery, PipelineConfig(min_identify_px=40, encode_every_unknown=1,
                                                           full_detect_every=1))
    events = [e for _ in range(30) for e in pipeline.process(np.zeros((720, 1280, 3), np.uint8))]
    appeared = [e for e in events if e.kind == APPEARED]
    named = [e for e in events if e.kind == IDENTIFIED]
    assert appeared and appeared[0].frame == 1 and appeared[0].box[1] - appeared[0].box[3] < 40
    assert min(model.encoded_widths) >= 40, 'a face under min_identify_px was encoded'
    # 40 px at frame 10, the mean of two encodings (frames 10 and 11): named at frame 11, reported with it
    assert [(e.frame, e.customer_id) for e in named] == [(11, 'm1')]


def test_the_robot_config_the_faces_node_the_cli_and_the_walk_in_bench_decide_alike():
    """config/perception.yaml, the faces node's defaults and PipelineConfig's (which `faces track`
    uses) name members by the same rules, so the walk-in bench (which reads the YAML) measures the
    robot: a default changed in one place only fails here."""
    import dataclasses

    import yaml
    from perception_support import FACES as faces_dir
    from retail_perception.faces_node import SPECS
    repo = faces_dir.parents[2]
    yaml_params = yaml.safe_load((repo / 'config' / 'perception.yaml').read_text())['perception/faces'][
        'ros__parameters']
    node = {spec.name: spec.default for spec in SPECS}
    pipeline = {f.name: f.default for f in dataclasses.fields(PipelineConfig)}
    for key in ('min_identify_px', 'full_detect_every', 'evidence_frames', 'votes_needed', 'match_threshold',
                'match_margin', 'detect_scale'):
        assert yaml_params[key] == node[key] == pipeline[key], key
    sys.path.insert(0, str(repo / 'benches'))
    threads = os.environ.get('OMP_NUM_THREADS')     # the bench pins it for its own process
    try:
        import faces_walkin
    finally:
        sys.path.remove(str(repo / 'benches'))
        if threads is None:
            os.environ.pop('OMP_NUM_THREADS', None)
        else:
            os.environ['OMP_NUM_THREADS'] = threads
    assert faces_walkin.ROBOT_CONFIG == {k: yaml_params[k] for k in faces_walkin.ROBOT_KEYS}


CALIBRATION = '''image_width: 1280
image_height: 720
camera_name: head_camera
camera_matrix: {rows: 3, cols: 3, data: [900.0, 0.0, 650.0, 0.0, 905.0, 350.0, 0.0, 0.0, 1.0]}
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0.1, -0.2, 0.0, 0.0, 0.0]}
'''


def test_calibration_file_gives_k_rescaled_to_the_published_frames(tmp_path):
    path = tmp_path / 'head_camera.yaml'
    path.write_text(CALIBRATION)
    calib = load_calibration(path)
    assert (calib.fx, calib.fy, calib.cx, calib.cy, calib.d[:2]) == (900.0, 905.0, 650.0, 350.0, (0.1, -0.2))
    half = calib.for_frame(640, 360, fitted=True)
    assert (half.fx, half.cx, half.cy) == (450.0, 325.0, 175.0)
    padded = calib.for_frame(640, 480, fitted=True)           # 640x360 picture, 60 px black above
    assert (padded.fx, padded.cy) == (450.0, 175.0 + 60)
    config = PipelineConfig(camera_fx_px=half.fx, camera_cx_px=half.cx, camera_width_px=640)
    # a 45 px face at 640 px wide (fx 450): 0.15 * 450 / 45 = 1.5 m; on a 1280 frame it is 90 px wide
    assert face_distance_m((0, 45, 45, 0), 640, config) == pytest.approx(1.5)
    assert face_distance_m((0, 90, 90, 0), 1280, config) == pytest.approx(1.5)
    assert from_fov(1280, 720, 90.0).fx == pytest.approx(640.0)


@pytest.mark.parametrize('text, key', [
    ('image_width: 1280\nimage_height: 720\n', 'camera_matrix'),
    ('image_width: -5\nimage_height: 720\ncamera_matrix: {data: [1,0,0,0,1,0,0,0,1]}\n', 'image_width'),
    ('image_width: 1280\nimage_height: 720\ncamera_matrix: {data: [1, 2]}\n', 'camera_matrix'),
    ('image_width: 1280\nimage_height: 720\ncamera_matrix: {data: [.nan,0,0,0,1,0,0,0,1]}\n', 'finite'),
    ('image_width: 1280\nimage_height: 720\ncamera_matrix: {data: [0,0,0,0,1,0,0,0,1]}\n', 'fx and fy'),
    ('image_width: 1280\nimage_height: 720\ncamera_matrix: {data: [1,0,0,0,1,0,0,0,1]}\n'
     'distortion_coefficients: {data: "x"}\n', 'distortion'),
    ('[1, 2, 3]\n', 'mapping'),
    ('image_width: [unclosed\n', 'not YAML'),
])
def test_bad_calibration_file_is_one_line_naming_file_and_key(tmp_path, text, key):
    path = tmp_path / 'cam.yaml'
    path.write_text(text)
    with pytest.raises(CalibrationError, match=key) as info:
        load_calibration(path)
    assert 'cam.yaml' in str(info.value) and '\n' not in str(info.value)


def test_missing_calibration_file_is_reported(tmp_path):
    with pytest.raises(CalibrationError, match='nothere.yaml: cannot read'):
        load_calibration(tmp_path / 'nothere.yaml')


@pytest.mark.slow
def test_faces_node_takes_the_focal_length_from_camera_info(ros_context, spin, tmp_path):
    from rclpy.parameter import Parameter
    from rostest_support import wait_for
    from retail_perception.camera_node import CameraNode
    from retail_perception.faces_node import FacesNode
    folder = tmp_path / 'frames'
    folder.mkdir()
    cv2.imwrite(str(folder / 'aisle.png'), np.full((720, 1280, 3), 90, np.uint8))
    calibration = tmp_path / 'head_camera.yaml'
    calibration.write_text(CALIBRATION)
    faces = FacesNode(context=ros_context, parameter_overrides=[Parameter('anonymous_mode', value=True)])
    camera = CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(folder)), Parameter('rate_hz', value=10.0),
        Parameter('width', value=640), Parameter('height', value=360),
        Parameter('calibration_file', value=str(calibration))])
    camera.trigger_configure()
    camera.trigger_activate()
    spin(faces, camera)
    wait_for(lambda: faces.pipeline.config.camera_fx_px > 0, 20, 'camera_info at the faces node')
    config = faces.pipeline.config
    assert (config.camera_fx_px, config.camera_cx_px, config.camera_width_px) == (450.0, 325.0, 640)
    assert 'camera_info' in faces.focal_source
    assert math.isclose(face_distance_m((0, 45, 45, 0), 640, config), 1.5)


def test_yunet_boxes_are_fitted_to_the_square_box_dlibs_landmarks_expect():
    from retail_perception.face_model import dlib_box
    top, right, bottom, left = dlib_box((100, 140, 150, 100), (720, 1280, 3))   # 40 wide, 50 tall
    assert right - left == bottom - top == 44                                   # x1.10, square
    assert (left + right) / 2 == 120 and (top + bottom) / 2 == pytest.approx(125 + 3.6, abs=0.6)
    assert dlib_box((0, 1280, 30, 1240), (720, 1280, 3))[:2] == (0, 1280)       # clipped to the frame


@pytest.mark.parametrize('person', ['obama', 'biden'])
def test_a_38_px_face_is_encoded_from_an_enlarged_crop_and_still_names_the_member(person):
    """3.5 m away: the landmarks that align the face are placed on the crop enlarged to 100 px."""
    from retail_perception.face_model import FaceModel, load_bgr, to_rgb
    model = FaceModel(detector='yunet', upscale_to_px=100)
    photo = load_bgr(photos(person)[1])
    (box,) = model.detect(to_rgb(photo))
    frame, _ = _frame_with_face(photo, box, 38)
    rgb = to_rgb(frame)
    (found,) = model.detect(rgb)
    gallery = Gallery()
    for who in ('obama', 'biden', 'rose_leslie', 'kit_harington'):
        gallery.enroll(who, who, False, 'C', model.enrollment_encoding(photos(who)[0]))
    assert gallery.search(model.encode(rgb, [found])[0], 0.5, 0.05).customer_id == person



def test_yunet_region_search_finds_the_same_small_face_as_the_full_frame(yunet, hog):
    """A 40 px face (3.5 m) in a 1280x720 frame: the region searches between full-frame searches
    find it where the full frame does, in frame coordinates."""
    from retail_perception.face_model import load_bgr, to_rgb
    photo = load_bgr(photos('obama')[1])
    (box,) = hog.detect(to_rgb(photo))
    frame, truth = _frame_with_face(photo, box, 40)
    pipeline = FacePipeline(yunet, None, PipelineConfig(full_detect_every=3))
    boxes = []
    for _ in range(3):
        pipeline.process(frame)
        boxes.append(pipeline.last_boxes)
    assert all(len(b) == 1 and _found(b, truth) for b in boxes), boxes
    full, region = np.array(boxes[0][0]), np.array(boxes[1][0])
    assert np.abs(full - region).max() <= 3, (full, region)


@pytest.mark.parametrize('person', ['obama', 'rose_leslie'])
def test_a_face_and_its_mirror_image_get_the_same_encoding_when_encodings_are_mirror_averaged(person):
    """A member photographed turned to the left and seen live turned to the right: with mirror
    averaging (the default) the two views encode alike; encoded once they are ~0.2 apart, so the
    mirrored crop and its box must be right for the first assert to hold."""
    from retail_perception.face_model import MIRROR_AVERAGE, FaceModel, load_bgr, to_rgb
    assert MIRROR_AVERAGE
    rgb = to_rgb(load_bgr(photos(person)[1]))
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    distances = {}
    for mirror in (True, False):
        model = FaceModel(detector='yunet', mirror=mirror)
        (box,), (box_m,) = model.detect(rgb), model.detect(mirrored)
        distances[mirror] = float(np.linalg.norm(model.encode(rgb, [box])[0] - model.encode(mirrored, [box_m])[0]))
    assert distances[True] < 0.05 < 0.1 < distances[False], distances
