"""The camera and faces nodes on a real ROS graph (in-process), replaying frames from a folder."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter

from perception_support import photos
from rostest_support import wait_for

pytestmark = pytest.mark.slow


def _canvas_with_face(photo: np.ndarray, box, face_width: int) -> np.ndarray:
    """A 640x360 frame with the photo's face `face_width` pixels wide, in the centre."""
    top, right, bottom, left = box
    scale = face_width / (right - left)
    resized = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cx, cy = int((left + right) / 2 * scale), int((top + bottom) / 2 * scale)
    canvas = np.full((360, 640, 3), 90, np.uint8)
    x0, y0 = cx - 320, cy - 180
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(resized.shape[1], x0 + 640), min(resized.shape[0], y0 + 360)
    canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = resized[sy0:sy1, sx0:sx1]
    return canvas


@pytest.fixture(scope='module')
def approach_frames(face_model):
    """A customer walking up to the robot (face 70 -> 170 px), then nobody: 32 frames."""
    from retail_perception.face_model import load_bgr, to_rgb
    photo = load_bgr(photos('obama')[1])
    (box,) = face_model.detect(to_rgb(photo))
    frames = [_canvas_with_face(photo, box, 70 + 100 * i // 19) for i in range(20)]
    return frames + [np.full((360, 640, 3), 90, np.uint8)] * 12


@pytest.fixture
def clip_folder(tmp_path, approach_frames):
    folder = tmp_path / 'clip'
    folder.mkdir()
    for i, frame in enumerate(approach_frames):
        cv2.imwrite(str(folder / f'frame_{i:03d}.png'), frame)
    return folder


@pytest.fixture
def gallery_dir(tmp_path, gallery_key, enrolment_encodings):
    from retail_perception.gallery import GalleryStore, load_key
    directory = tmp_path / 'gallery'
    with GalleryStore(directory, load_key()).transaction() as gallery:
        gallery.enroll('vip-obama', 'Mr. Obama', True, 'CONSENT-1', enrolment_encodings['obama'])
        gallery.enroll('m-biden', 'Mr. Biden', False, 'CONSENT-2', enrolment_encodings['biden'])
    return directory


class Listener:
    def __init__(self, context):
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from retail_interfaces.msg import CustomerEvent
        from sensor_msgs.msg import Image
        self.node = Node('perception_listener', context=context)
        self.events, self.people, self.diagnostics, self.images = [], [], [], []
        self.node.create_subscription(CustomerEvent, '/perception/customer_events',
                                      lambda m: self.events.append((time.monotonic(), m)), 50)
        self.node.create_subscription(PoseArray, '/perception/people', self.people.append, 10)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, 10)
        self.node.create_subscription(Image, '/perception/image_raw',
                                      lambda m: self.images.append(time.monotonic()), qos_profile_sensor_data)

    def kinds(self, kind):
        return [m for _, m in self.events if m.kind == kind]


def _camera(context, source, rate=10.0, period=0.1, **extra):
    from retail_perception.camera_node import CameraNode
    params = [Parameter('source', value=str(source)), Parameter('rate_hz', value=rate),
              Parameter('image_period_s', value=period)]
    params += [Parameter(k, value=v) for k, v in extra.items()]
    node = CameraNode(context=context, parameter_overrides=params)
    node.trigger_configure()
    node.trigger_activate()
    return node


def _faces(context, **params):
    from retail_perception.faces_node import FacesNode
    return FacesNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def test_member_walking_up_is_identified_approaching_and_left(ros_context, spin, clip_folder, gallery_dir):
    from retail_interfaces.msg import CustomerEvent
    listener = Listener(ros_context)
    faces = _faces(ros_context, gallery_dir=str(gallery_dir))
    spin(listener.node, faces)
    spin(_camera(ros_context, clip_folder))
    identified = wait_for(lambda: listener.kinds(CustomerEvent.IDENTIFIED), 20, 'an identified event')[0]
    assert (identified.customer_id, identified.display_name, identified.vip) == ('vip-obama', 'Mr. Obama', True)
    assert 0.0 < identified.confidence <= 1.0 and identified.header.frame_id == 'camera'
    track = identified.track_id
    wait_for(lambda: [m for m in listener.kinds(CustomerEvent.APPROACHING) if m.track_id == track], 20,
             'the member approaching')
    left = wait_for(lambda: [m for m in listener.kinds(CustomerEvent.LEFT) if m.track_id == track], 20,
                    'the member leaving')[0]
    assert left.customer_id == 'vip-obama'
    appeared = [m for m in listener.kinds(CustomerEvent.APPEARED) if m.track_id == track]
    assert len(appeared) == 1 and 0.3 < appeared[0].distance_m < 3.0
    assert abs(identified.bearing_rad) < 0.2, 'the face is in the centre of the image'
    with_people = [p for p in listener.people if p.poses]
    assert with_people and with_people[0].header.frame_id == 'base_link'
    assert 0.3 < with_people[-1].poses[0].position.x < 3.0


def test_anonymous_mode_publishes_no_identities(ros_context, spin, clip_folder, gallery_dir):
    from retail_interfaces.msg import CustomerEvent
    listener = Listener(ros_context)
    faces = _faces(ros_context, gallery_dir=str(gallery_dir), anonymous_mode=True)
    spin(listener.node, faces)
    spin(_camera(ros_context, clip_folder))
    wait_for(lambda: listener.kinds(CustomerEvent.APPROACHING), 20, 'an approaching event')
    wait_for(lambda: listener.kinds(CustomerEvent.LEFT), 20, 'a left event')
    assert not listener.kinds(CustomerEvent.IDENTIFIED)
    assert all(m.customer_id == '' and m.display_name == '' and not m.vip and m.confidence == 0.0
               for _, m in listener.events)
    assert faces.pipeline.tracks == {} or all(not t.encodings for t in faces.pipeline.tracks.values())


def test_enrolment_at_the_robot_needs_consent_then_recognises(ros_context, spin, clip_folder, tmp_path,
                                                               gallery_key):
    from retail_interfaces.msg import CustomerEvent
    from retail_interfaces.srv import EnrollFace
    from retail_perception.gallery import GalleryStore, load_key
    listener = Listener(ros_context)
    gallery_dir = tmp_path / 'new-gallery'
    faces = _faces(ros_context, gallery_dir=str(gallery_dir))
    client = listener.node.create_client(EnrollFace, '/perception/enroll_face')
    spin(listener.node, faces)
    spin(_camera(ros_context, clip_folder))
    appeared = wait_for(lambda: listener.kinds(CustomerEvent.APPEARED), 20, 'a customer appearing')[0]

    def call(consent: str):
        future = client.call_async(EnrollFace.Request(track_id=appeared.track_id, customer_id='m-900',
                                                      display_name='Guest', vip=False, consent_ref=consent))
        return wait_for(lambda: future.done() and future.result(), 10, 'the enrol_face reply')

    refused = call('')
    assert not refused.success and 'consent' in refused.message
    assert 'm-900' not in GalleryStore(gallery_dir, load_key()).load().members
    accepted = call('KIOSK-CONSENT-42')
    assert accepted.success, accepted.message
    stored = GalleryStore(gallery_dir, load_key()).load()
    member = stored.members['m-900']
    assert member.consent_ref == 'KIOSK-CONSENT-42'
    # the track's frames as they were, plus one walk-in row made from its widest face
    assert member.walk_in_rows == 1 and len(stored.walk_in_rows_of('m-900')) == 1
    assert len(stored.photo_rows_of('m-900')) == member.embeddings >= 1
    wait_for(lambda: [m for m in listener.kinds(CustomerEvent.IDENTIFIED) if m.customer_id == 'm-900'], 20,
             'the newly enrolled member being recognised')


def test_vip_photo_in_the_simulated_camera_is_named(ros_context, spin, tmp_path, gallery_dir):
    from retail_interfaces.msg import CustomerEvent
    folder = tmp_path / 'vip'
    folder.mkdir()
    cv2.imwrite(str(folder / 'vip.jpg'), cv2.imread(str(photos('obama')[1])))
    listener = Listener(ros_context)
    spin(listener.node, _faces(ros_context, gallery_dir=str(gallery_dir)))
    wait_for(lambda: listener.node.count_publishers('/perception/customer_events') > 0, 10, 'the faces node')
    spin(_camera(ros_context, folder, rate=15.0, period=2.0, width=640, height=360))
    first_image = wait_for(lambda: listener.images, 10, 'camera images')[0]
    stamp, vip = wait_for(lambda: [(t, m) for t, m in listener.events if m.kind == CustomerEvent.IDENTIFIED],
                          10, 'the VIP identified')[0]
    assert vip.vip and vip.customer_id == 'vip-obama'
    # How fast is a benchmark's question (benches/faces_walkin.py), never a timed assertion here.
    print(f'named {stamp - first_image:.2f} s after the first camera image')


def test_lost_camera_is_reported_in_diagnostics_and_reconnects(ros_context, spin, tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus
    listener = Listener(ros_context)
    folder = tmp_path / 'usb-camera'
    spin(listener.node, _camera(ros_context, folder, rate=10.0, reconnect_s=0.2, diagnostics_period_s=0.2))

    def statuses(level):
        return [s for d in listener.diagnostics for s in d.status
                if s.name == '/perception/camera' and s.level == level]
    lost = wait_for(lambda: statuses(DiagnosticStatus.ERROR), 10, 'camera lost in /diagnostics')[0]
    assert 'camera lost' in lost.message
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), np.full((360, 640, 3), 50, np.uint8))
    wait_for(lambda: listener.images, 10, 'images after the camera came back')
    ok = wait_for(lambda: statuses(DiagnosticStatus.OK), 10, 'camera OK again')[-1]
    assert {kv.key: kv.value for kv in ok.values}['reconnects'] == '1'


@pytest.mark.parametrize('executable, params, words', [
    ('faces', 'perception/faces:\n  ros__parameters:\n    match_treshold: 0.4\n', "unknown key 'match_treshold'"),
    ('faces', 'perception/faces:\n  ros__parameters:\n    match_threshold: 0.9\n', 'above the maximum'),
    ('faces', 'perception:\n  faces:\n    ros__parameters:\n      votes_needed: 0\n', 'below the minimum'),
    ('camera', 'perception/camera:\n  ros__parameters:\n    rate_hz: 0.0\n', 'below the minimum'),
    ('camera', 'perception/camera:\n  ros__parameters:\n    source: [0]\n', "key 'source': expected text"),
    ('camera', 'perception/camera:\n  ros__parameters:\n    loop: \xff\n', 'not UTF-8 text'),
])
def test_bad_configuration_stops_a_node_with_one_line(ros_env, tmp_path, executable, params, words):
    """One line, exit 2, and no second traceback from destroy_node of the half-made node."""
    import subprocess
    from rostest_support import console_script
    params_file = tmp_path / 'perception.yaml'
    params_file.write_bytes(params.encode('latin-1'))
    result = subprocess.run([console_script(f'retail_perception_{executable}'), '--ros-args',
                             '--params-file', str(params_file)], capture_output=True, text=True,
                            timeout=60, env=ros_env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_without_a_gallery_key_the_faces_node_runs_anonymously(ros_context, spin, clip_folder, gallery_dir,
                                                               monkeypatch):
    """issue 12 item 11: a missing key does not take the robot down; it says so, once, and on
    /diagnostics, and still sees customers (detection and approach)."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from retail_interfaces.msg import CustomerEvent
    monkeypatch.delenv('RETAILBOT_GALLERY_KEY')
    listener = Listener(ros_context)
    faces = _faces(ros_context, gallery_dir=str(gallery_dir), diagnostics_period_s=0.2)
    assert faces.anonymous_reason.startswith('no gallery key')
    spin(listener.node, faces)
    spin(_camera(ros_context, clip_folder))
    wait_for(lambda: listener.kinds(CustomerEvent.APPROACHING), 20, 'an approaching event')
    assert not listener.kinds(CustomerEvent.IDENTIFIED)

    def warnings():
        return [s for d in listener.diagnostics for s in d.status
                if s.name == '/perception/faces' and s.level == DiagnosticStatus.WARN]
    warn = wait_for(warnings, 10, 'the anonymous mode on /diagnostics')[0]
    assert warn.message.startswith('anonymous mode: members are not recognised (no gallery key')


def test_camera_device_0_from_the_launch_reaches_the_camera_as_text(ros_env, tmp_path):
    """issue 17: `camera_device` "0" (the launch default) is a device index, not a refused number."""
    from retail_ros.launch_file import load_launch
    from rostest_support import REPO
    from retail_ros.params import overrides_for, resolve
    from retail_perception.camera_node import SPECS
    camera, = [n for n in load_launch(REPO / 'launch' / 'perception.launch.yaml', {},
                                      find_share=lambda p: str(REPO)).nodes
               if n.name == 'camera']
    args = camera.ros_arguments()
    values = resolve('/perception/camera', SPECS, overrides_for('/perception/camera', args))
    assert values['source'] == '0'
