"""Perception and guiding store their interaction events through RecordEvents (acknowledged on
disk by the sync agent; here a recording stand-in of its service), with no biometric data."""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.parameter import Parameter

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / 'perception'))
sys.path.insert(0, str(TESTS / 'navigation'))
from perception_support import (enrolment_encodings, face_model, gallery_key, photos,  # noqa: E402,F401
                                session_key)
from guide_support import KinematicBase  # noqa: E402

from retail_common import names  # noqa: E402
from retail_interfaces.action import GuideTo  # noqa: E402
from retail_interfaces.srv import RecordEvents  # noqa: E402
from rostest_support import wait_for  # noqa: E402

DEMO = TESTS.parent / 'config' / 'stores' / 'demo'
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class Outbox(Node):
    """Answers /sync/record_events like the sync agent, keeping what it was given."""

    def __init__(self, **kwargs) -> None:
        super().__init__('outbox_stand_in', **kwargs)
        self.lock = threading.Lock()
        self.events = {}
        self.create_service(RecordEvents, names.RECORD_EVENTS, self._on_record)

    def _on_record(self, request, response):
        with self.lock:
            for event in request.events:
                self.events[event.event_id] = event
        response.stored_ids = [e.event_id for e in request.events]
        return response

    def of_type(self, type_: str) -> list:
        with self.lock:
            return [e for e in self.events.values() if e.type == type_]


def test_perception_records_appeared_identified_left_with_the_pseudonym_only(
        ros_context, spin, tmp_path, gallery_key, enrolment_encodings):
    from retail_perception.camera_node import CameraNode
    from retail_perception.face_model import load_bgr
    from retail_perception.faces_node import FacesNode
    from retail_perception.gallery import GalleryStore, load_key
    gallery = tmp_path / 'gallery'
    with GalleryStore(gallery, load_key()).transaction() as store:
        store.enroll('m-4711', 'Mr. Obama', True, 'CONSENT-1', enrolment_encodings['obama'])
    clip = tmp_path / 'clip'
    clip.mkdir()
    photo = load_bgr(photos('obama')[1])
    scale = min(640 / photo.shape[1], 360 / photo.shape[0])
    photo = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)))
    for i in range(24):
        frame = np.full((360, 640, 3), 90, np.uint8)
        if i < 14:
            frame[:photo.shape[0], :photo.shape[1]] = photo
        cv2.imwrite(str(clip / f'frame_{i:03d}.png'), frame)
    outbox = Outbox(context=ros_context)
    faces = FacesNode(context=ros_context, parameter_overrides=[Parameter('gallery_dir', value=str(gallery))])
    camera = CameraNode(context=ros_context, parameter_overrides=[
        Parameter('source', value=str(clip)), Parameter('rate_hz', value=10.0), Parameter('image_period_s', value=0.1)])
    spin(outbox, faces, camera)
    camera.trigger_configure()
    camera.trigger_activate()
    left = wait_for(lambda: [e for e in outbox.of_type('customer_left') if e.customer_pseudonym == 'm-4711'], 40,
                    'a customer_left event stored')[0]
    identified = [e for e in outbox.of_type('customer_identified') if e.customer_pseudonym == 'm-4711']
    appeared = outbox.of_type('customer_appeared')
    assert identified and appeared and left.source == 'perception'
    for event in appeared + identified + [left]:
        payload = json.loads(event.payload_json)
        assert set(payload) == {'track_id', 'vip', 'confidence'}, payload     # no name, image or embedding
        assert 'Obama' not in event.payload_json
    assert json.loads(identified[0].payload_json)['vip'] is True
    # Recognition thresholds are live parameters; the gallery folder is not.
    assert faces.set_parameters([Parameter('match_threshold', value=0.42)])[0].successful
    assert faces.pipeline.config.match_threshold == 0.42 and faces.params.match_threshold == 0.42
    assert not faces.set_parameters([Parameter('votes_needed', value=0)])[0].successful
    assert not faces.set_parameters([Parameter('gallery_dir', value='/tmp')])[0].successful


def test_the_guide_records_each_mission_outcome(ros_context, spin):
    from retail_navigation.guide_node import GuideNode
    outbox = Outbox(context=ros_context)
    base = KinematicBase(context=ros_context)
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(DEMO)),
                                           # odometry only, straight to /cmd_vel: no lidar in this test
                                           Parameter('localization', value=False),
                                           Parameter('cmd_vel_topic', value='/cmd_vel'),
                                           Parameter('scan_topic', value='')])
    client = Node('guide_client', context=ros_context)
    action = ActionClient(client, GuideTo, names.GUIDE_TO)
    spin(outbox, base, guide, client)
    wait_for(lambda: guide._pose is not None, 10, 'odometry reaching the guide')
    assert action.wait_for_server(timeout_sec=10)
    for zone in ('service_desk', 'no_such_zone'):
        sent = action.send_goal_async(GuideTo.Goal(zone=zone))
        wait_for(sent.done, 10, 'goal acceptance')
        result = sent.result().get_result_async()
        wait_for(result.done, 60, f'the result for {zone}')
    outcomes = wait_for(lambda: outbox.of_type('guide'), 10, 'a guide (mission ended) event stored')
    payload = json.loads(outcomes[0].payload_json)
    assert (payload['mission'], payload['zone'], payload['status'], payload['reason'], payload['success']) == \
        ('guide', 'service_desk', 'ended', 'arrived', True)
    assert 2.0 < payload['distance_m'] < 6.0 and payload['duration_s'] > 0 and outcomes[0].source == 'navigation'
    # A refused goal (unknown zone) never became a mission: nothing to record.
    assert len(outcomes) == 1
