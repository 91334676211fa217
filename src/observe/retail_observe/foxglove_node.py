"""The Foxglove WebSocket server on the robot (foxglove-sdk, protocol foxglove.websocket.v1).

Thin node: subscribes (raw CDR) to the served topics of `foxglove_view` and logs each message as
received to a Foxglove channel with the message's full `ros2msg` schema; builds the driven path from
/odom. Latched topics (map, static TF, plan, safety) and the driven path are sent again to each client that subscribes,
as a late ROS subscriber would get them. Binds 127.0.0.1 unless `host` says otherwise.

The camera view (`/camera/view`, sensor_msgs/CompressedImage JPEG, at most one frame per
`camera_period_s`): faces blurred (`camera_view`) unless a staff member is logged in on the console
(the UI's latched `/ui/staff_session`, std_msgs/Bool; no message yet means nobody is); with no face
detector the view sends nothing.

Parameters: host (default 127.0.0.1), port (default 8765; 0 picks a free one), scan_topic,
path_period_s, camera_topic ('' for no camera view), camera_period_s.
"""

from __future__ import annotations

import math
import threading
import time

import foxglove
from foxglove import Channel, Schema
from foxglove.websocket import ServerListener
from nav_msgs.msg import Odometry, Path
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool

from retail_common import names
from retail_observe.camera_view import CameraView
from retail_observe.foxglove_view import CAMERA_VIEW, DRIVEN_PATH, STAFF_SESSION, DrivenPath, served_topics
from retail_observe.graph import definition_of, message_class
from retail_ros.node_support import ParamSpec, declare_params, main_for
from retail_ros.qos import latched

SPECS = [
    ParamSpec('host', '127.0.0.1', 'Address the Foxglove WebSocket server binds (127.0.0.1: this robot only).'),
    ParamSpec('port', 8765, 'TCP port of the Foxglove WebSocket server (0: any free port).', min=0, max=65535),
    ParamSpec('scan_topic', names.SCAN, 'sensor_msgs/LaserScan topic served as the scan.'),
    ParamSpec('path_period_s', 0.5, 'How often the driven path is sent (seconds).', min=0.05, max=60.0),
    ParamSpec('camera_topic', '/perception/image_raw', 'sensor_msgs/Image shown as the camera view (empty: none).'),
    ParamSpec('camera_period_s', 1.0, 'At most one camera view frame per this many seconds.', min=0.1, max=60.0),
]


def _face_detector():
    """BGR image -> face boxes, with the robot's own face model; None when it cannot run."""
    try:
        import cv2
        from retail_perception.face_model import FaceModel

        model = FaceModel()
    except Exception:  # noqa: BLE001 - no detector: the camera view sends nothing (never unblurred)
        return None
    return lambda bgr: model.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), model.default_scale)


def _schema(type_name: str) -> Schema:
    return Schema(name=type_name, encoding='ros2msg', data=definition_of(type_name).encode())


class _Resend(ServerListener):
    """Sends a latched channel's kept message again when a client subscribes to it."""

    def __init__(self, node: 'FoxgloveNode') -> None:
        self.node = node

    def on_subscribe(self, client, channel) -> None:
        self.node.resend(channel.topic)


class FoxgloveNode(Node):
    server = None  # until start_server succeeds (destroy_node of a half-built node)

    def __init__(self, **kwargs) -> None:
        super().__init__('foxglove', **kwargs)
        self.params = declare_params(self, SPECS)
        self.lock = threading.Lock()
        self.channels: dict[str, Channel] = {}
        self.kept: dict[str, bytes] = {}  # latched topics: the last message
        self.fox_context = foxglove.Context()
        for served in served_topics(self.params.scan_topic):
            self.channels[served.topic] = Channel(
                served.topic, message_encoding='cdr', schema=_schema(served.type_name), context=self.fox_context
            )
            qos = latched(1) if served.latched else qos_profile_sensor_data
            self.create_subscription(
                message_class(served.type_name),
                served.topic,
                lambda data, s=served: self.forward(s.topic, data, s.latched),
                qos,
                raw=True,
            )
        self.channels[DRIVEN_PATH] = Channel(
            DRIVEN_PATH, message_encoding='cdr', schema=_schema('nav_msgs/msg/Path'), context=self.fox_context
        )
        self.path = DrivenPath()
        self.path_frame = 'odom'
        self.create_subscription(Odometry, names.ODOM, self.on_odom, qos_profile_sensor_data)
        self.create_timer(self.params.path_period_s, self.send_path)
        self.staff_logged_in = False
        self.camera_view: CameraView | None = None
        if self.params.camera_topic:
            detect = _face_detector()
            if detect is None:
                self.get_logger().warning('no face detector: the camera view is not sent (faces would show)')
            self.camera_view = CameraView(detect, self.params.camera_period_s)
            self.channels[CAMERA_VIEW] = Channel(
                CAMERA_VIEW,
                message_encoding='cdr',
                schema=_schema('sensor_msgs/msg/CompressedImage'),
                context=self.fox_context,
            )
            self.create_subscription(Bool, STAFF_SESSION, self.on_staff_session, latched(1))
            self.create_subscription(
                Image,
                self.params.camera_topic,
                self.on_image,
                qos_profile_sensor_data,
                callback_group=MutuallyExclusiveCallbackGroup(),
            )
        try:
            self.server = foxglove.start_server(
                name='retailbot',
                host=self.params.host,
                port=self.params.port,
                context=self.fox_context,
                server_listener=_Resend(self),
            )
        except RuntimeError as exc:  # foxglove-sdk: "FoxgloveError: Failed to bind port: ..."
            # One line, exit 1 (respawned with back-off: the port may come free), never a traceback.
            reason = str(exc).removeprefix('FoxgloveError: ')
            self.get_logger().error(
                f'cannot serve Foxglove on {self.params.host}:{self.params.port}: {reason} '
                '(another Foxglove server or a second launch of this robot? choose foxglove_port:=...)'
            )
            raise SystemExit(1) from None
        self.get_logger().info(f'Foxglove WebSocket server on ws://{self.params.host}:{self.server.port}')

    def forward(self, topic: str, data: bytes, keep: bool) -> None:
        if keep:
            with self.lock:
                self.kept[topic] = data
        self.channels[topic].log(data, log_time=time.time_ns())

    def resend(self, topic: str) -> None:
        with self.lock:
            data = self.kept.get(topic)
        if data is not None:
            self.channels[topic].log(data, log_time=time.time_ns())

    def on_odom(self, msg: Odometry) -> None:
        q = msg.pose.pose.orientation
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
        self.path_frame = msg.header.frame_id or 'odom'
        self.path.add(msg.pose.pose.position.x, msg.pose.pose.position.y, yaw)

    def send_path(self) -> None:
        if not self.path.changed:
            return
        self.path.changed = False
        path = Path()
        path.header.frame_id = self.path_frame
        path.header.stamp = self.get_clock().now().to_msg()
        for x, y, yaw in self.path.poses:
            pose = PoseStamped()
            pose.header = path.header
            pose.pose.position.x, pose.pose.position.y = x, y
            pose.pose.orientation.z, pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
            path.poses.append(pose)
        self.forward(DRIVEN_PATH, serialize_message(path), keep=True)  # sent again to a client that comes later

    def on_staff_session(self, msg: Bool) -> None:
        self.staff_logged_in = bool(msg.data)

    def on_image(self, msg: Image) -> None:
        from retail_perception.image_convert import ImageConversionError, from_image_msg

        assert self.camera_view is not None
        now = time.monotonic()
        if now - self.camera_view.last_sent < self.camera_view.period_s:
            return  # before decoding: the view is low rate
        try:
            bgr = from_image_msg(msg)
        except ImageConversionError as exc:
            self.get_logger().warning(f'{self.params.camera_topic}: frame skipped: {exc}', throttle_duration_sec=10.0)
            return
        jpeg = self.camera_view.frame(now, bgr, self.staff_logged_in)
        if jpeg is None:
            return
        out = CompressedImage(format='jpeg', data=jpeg)
        out.header = msg.header
        self.forward(CAMERA_VIEW, serialize_message(out), keep=False)

    def destroy_node(self) -> None:
        if self.server is not None:
            self.server.stop()
        super().destroy_node()


main = main_for(FoxgloveNode)
