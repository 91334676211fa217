"""The Foxglove camera view end to end: a real camera frame with two faces goes through the server
node to an independent WebSocket client; the robot's face detector finds no face in what the client
gets while nobody is logged in on the console, and finds them once the console says staff is."""
from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import cv2
import numpy as np
import websockets
from mcap_ros2._dynamic import generate_dynamic
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Bool

from retail_common import names
from retail_observe.camera_view import shrink
from retail_observe.foxglove_view import CAMERA_VIEW
from retail_ros.qos import LATCHED

PHOTO = Path(__file__).resolve().parents[1] / 'data' / 'faces' / 'probe' / 'two_people.jpg'


async def _camera_frames(port: int, count: int, seconds: float) -> list[np.ndarray]:
    """The first `count` camera view frames a client receives (decoded JPEG), within `seconds`."""
    frames: list[np.ndarray] = []
    async with websockets.connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1', 'foxglove.websocket.v1'],
                                  open_timeout=5) as ws:
        decoder = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and len(frames) < count:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(frame, str):
                message = json.loads(frame)
                for channel in message.get('channels', []) if message['op'] == 'advertise' else []:
                    if channel['topic'] == CAMERA_VIEW:
                        decoder = generate_dynamic(channel['schemaName'], channel['schema'])[channel['schemaName']]
                        await ws.send(json.dumps({'op': 'subscribe',
                                                  'subscriptions': [{'id': 1, 'channelId': channel['id']}]}))
            elif frame[0] == 1 and decoder is not None:
                sub_id, _ = struct.unpack_from('<IQ', frame, 1)
                image = decoder(frame[13:])
                assert image.format == 'jpeg'
                frames.append(cv2.imdecode(np.frombuffer(bytes(image.data), np.uint8), cv2.IMREAD_COLOR))
    return frames


def test_faces_are_blurred_for_a_client_unless_staff_is_logged_in(ros_context, spin):
    import rclpy
    from rclpy.parameter import Parameter
    from retail_observe.foxglove_node import FoxgloveNode
    from retail_perception.face_model import FaceModel

    model = FaceModel()

    def faces(bgr):
        return model.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), model.default_scale)

    bgr = shrink(cv2.imread(str(PHOTO)))
    assert len(faces(bgr)) >= 2
    server = FoxgloveNode(context=ros_context, parameter_overrides=[
        Parameter('port', value=0), Parameter('camera_period_s', value=0.2)])
    talker = rclpy.create_node('camera', context=ros_context)
    image_pub = talker.create_publisher(Image, '/perception/image_raw', qos_profile_sensor_data)
    staff_pub = talker.create_publisher(Bool, names.STAFF_SESSION, LATCHED)
    staff_pub.publish(Bool(data=False))
    h, w = bgr.shape[:2]
    talker.create_timer(0.1, lambda: image_pub.publish(Image(height=h, width=w, encoding='bgr8', step=w * 3,
                                                              data=bgr.tobytes())))
    spin(server, talker)
    blurred = asyncio.run(_camera_frames(server.server.port, 2, 30.0))
    assert blurred, 'the client received the camera view'
    assert all(faces(f) == [] for f in blurred), 'no face is recognisable while nobody is logged in'
    assert np.abs(blurred[-1].astype(int) - bgr.astype(int)).mean() < 20  # the same scene otherwise
    staff_pub.publish(Bool(data=True))
    deadline_frames = asyncio.run(_camera_frames(server.server.port, 10, 30.0))
    assert any(len(faces(f)) >= 2 for f in deadline_frames), 'staff logged in sees the faces'
