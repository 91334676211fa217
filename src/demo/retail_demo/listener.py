"""The store day's ears and mouth on the robot's DDS: one rclpy node that records what the robot
publishes (replies, customers, events, staff pages, arrivals, odometry, safety, diagnostics, the
simulator's ground truth) and speaks for customers. Only the façade (robot_client.py) uses it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from retail_demo.demo_report import Transcript


class Recorder:
    """What the robot did, as seen on its topics (filled by the demo's ROS node)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: list = []
        self.customers: list = []
        self.events: list = []
        self.staff: list[dict] = []
        self.arrivals: list[str] = []
        self.odom: list[tuple[float, float]] = []
        self.safety: list = []
        self.diagnostics: dict[str, tuple[int, str, dict]] = {}
        self.met: list[tuple[str, float, float]] = []
        self.updates: list = []  # /sync/data_updates seen
        self.believed: list[tuple[float, float, float]] = []  # (stamp s, x, y) of /navigation/pose (map)
        self.truth: list[tuple[float, float, float]] = []  # the simulator's ground truth (map), same form
        # (stamp s, x, y) the localisation reports on /diagnostics while it says it knows where it
        # is (tracking / degraded): its pose standing still, when no filter update publishes one
        self.reported: list[tuple[float, float, float]] = []
        self.contacts: int | None = None  # robot-shopper contacts counted by the simulator


class DemoNode:
    """The customers' side of the store: a rclpy node that talks to the robot and listens to it."""

    def __init__(self, recorder: Recorder, transcript: Transcript, labels: Callable[[int], str]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from retail_ros.executor import RobotExecutor
        from retail_ros.qos import LATCHED, latched as latched_qos
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from std_msgs.msg import UInt32
        from std_srvs.srv import Trigger

        from retail_interfaces.msg import (
            BaseSafety,
            CustomerEvent,
            DataUpdate,
            InteractionEvent,
            PlaceArrival,
            RobotReply,
            StaffRequest,
            Utterance,
        )

        self.rclpy, self.Utterance, self.Trigger = rclpy, Utterance, Trigger
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('store_day', context=self.context)
        self.rec, self.transcript, self.labels = recorder, transcript, labels
        latched = LATCHED
        node = self.node
        self.utterances = node.create_publisher(Utterance, '/dialogue/utterances', 10)
        node.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 50)
        node.create_subscription(CustomerEvent, '/perception/customer_events', self._on_customer, 50)
        node.create_subscription(InteractionEvent, '/sync/interaction_events', self._on_event, 1000)
        node.create_subscription(StaffRequest, '/dialogue/staff_requests', self._on_staff, 10)
        node.create_subscription(PlaceArrival, '/navigation/arrivals', self._on_arrival, 10)
        node.create_subscription(Odometry, '/odom', self._on_odom, 20)
        # Simulation only: where the robot believes it is against where it is, and contacts.
        node.create_subscription(PoseWithCovarianceStamped, '/navigation/pose', self._on_pose, 20)
        node.create_subscription(Odometry, '/navigation/sim/ground_truth', self._on_truth, 50)
        node.create_subscription(UInt32, '/navigation/sim/contacts', self._on_contacts, latched)
        node.create_subscription(BaseSafety, '/navigation/safety', self._on_safety, latched)
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        node.create_subscription(DataUpdate, '/sync/data_updates', self._on_update, latched_qos(10))
        self.reset_safety: Any = node.create_client(Trigger, '/navigation/reset_safety')
        self.sync_now: Any = node.create_client(Trigger, '/sync/sync_now')
        self.upload_incidents: Any = node.create_client(Trigger, '/incident_recorder/upload')
        self.pose: tuple[float, float] | None = None
        self.executor = RobotExecutor(context=self.context)
        self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    # -- listening --------------------------------------------------------------------------
    def _on_reply(self, msg) -> None:
        with self.rec.lock:
            self.rec.replies.append(msg)
        self.transcript.say('机器人', f'{msg.text}   ({msg.intent}, to {self.labels(msg.track_id)})')

    def _on_customer(self, msg) -> None:
        kinds = {0: 'appeared', 1: 'identified', 2: 'approaching', 3: 'left'}
        with self.rec.lock:
            self.rec.customers.append(msg)
            if msg.kind in (0, 1) and self.pose is not None:
                self.rec.met.append((msg.customer_id or f'track {msg.track_id}', *self.pose))
        who = f'{msg.display_name} ({msg.customer_id}{", VIP" if msg.vip else ""})' if msg.customer_id else 'a shopper'
        self.transcript.say('camera', f'{who} {kinds.get(msg.kind, msg.kind)} (track {msg.track_id})')

    def _on_event(self, msg) -> None:
        with self.rec.lock:
            self.rec.events.append(msg)

    def _on_update(self, msg) -> None:
        with self.rec.lock:
            self.rec.updates.append(msg)
        self.transcript.say('sync', f'new {msg.kind} on the robot (version {msg.version})')

    def _on_staff(self, msg) -> None:
        request = {
            'reason': msg.reason,
            'track_id': msg.track_id,
            'language': msg.language,
            'looking_for': msg.looking_for,
            'product': msg.product,
            'zone': msg.zone,
            'appointment_id': msg.appointment_id,
            'staff': msg.staff,
            'meeting_point': msg.meeting_point,
        }
        with self.rec.lock:
            self.rec.staff.append(request)
        to = f' → {request["staff"]}' if request.get('staff') else ''
        self.transcript.say('staff pager', f'{request.get("reason")}{to}')

    def _on_arrival(self, msg) -> None:
        with self.rec.lock:
            self.rec.arrivals.append(msg.zone)
        self.transcript.say('robot', f'arrived at {msg.zone}')

    def _on_odom(self, msg) -> None:
        p = msg.pose.pose.position
        with self.rec.lock:
            self.rec.odom.append((p.x, p.y))
            self.pose = (p.x, p.y)

    def _on_pose(self, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.rec.lock:
            self.rec.believed.append((stamp, msg.pose.pose.position.x, msg.pose.pose.position.y))

    def _on_truth(self, msg) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self.rec.lock:
            self.rec.truth.append((stamp, msg.pose.pose.position.x, msg.pose.pose.position.y))

    def _on_contacts(self, msg) -> None:
        with self.rec.lock:
            self.rec.contacts = int(msg.data)

    def _on_safety(self, msg) -> None:
        with self.rec.lock:
            self.rec.safety.append(msg)
        if msg.reason:
            self.transcript.say('base', f'safety: {msg.reason}{" (latched)" if msg.latched else ""}')

    def _on_diagnostics(self, msg) -> None:
        with self.rec.lock:
            for status in msg.status:
                level = status.level if isinstance(status.level, int) else int.from_bytes(status.level, 'little')
                values = {v.key: v.value for v in status.values}
                self.rec.diagnostics[status.name] = (level, status.message, values)
                if status.name.startswith('navigation/localization') and values.get('state') in (
                    'tracking',
                    'degraded',
                ):
                    try:
                        x, y = float(values['x']), float(values['y'])
                    except (KeyError, ValueError):
                        continue
                    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                    self.rec.reported.append((stamp, x, y))

    # -- talking ------------------------------------------------------------------------------
    def speak(self, who: str, text: str, track_id: int) -> None:
        self.transcript.say(who, text)
        msg = self.Utterance(text=text, language='zh', is_final=True, confidence=1.0, track_id=track_id)
        now = self.node.get_clock().now().to_msg()
        msg.header.stamp, msg.start, msg.end = now, now, now
        self.utterances.publish(msg)

    def call(self, client, timeout: float) -> str | None:
        if not client.wait_for_service(timeout_sec=timeout):
            return None
        future = client.call_async(self.Trigger.Request())
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not future.done() or future.result() is None:
            return None
        return future.result().message if future.result().success else None

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()
        self.context.try_shutdown()
