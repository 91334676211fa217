"""`retailbot chat --ros`: type as a customer to the running robot.

The chat stands in for the camera and the microphone of one customer: it announces a person
(a track id of its own, or a member with `--member`) on `/perception/customer_events`, sends each
typed line as a final utterance on `/dialogue/utterances`, and prints what the robot answers for
that customer (`/dialogue/replies`), the events it records (recommendations, guiding, staff calls,
check-ins) and where the robot arrives. Leaving (empty line, Ctrl-D) tells the robot the person
left. Nothing here changes the robot: it uses the same topics as its own sensors.
"""
from __future__ import annotations

import os
import threading
import time

from rclpy.duration import Duration
from rclpy.node import Node

from retail_interfaces.msg import CustomerEvent, InteractionEvent, PlaceArrival, RobotReply, Utterance
from retail_common import names

SHOWN_EVENTS = ('recommendation', 'guide', 'staff_request', 'vip_checkin')


class ChatClient(Node):
    def __init__(self, member: str = '', **kwargs) -> None:
        super().__init__('chat', **kwargs)
        # A track id the camera will not hand out for a long while (it counts up from 1).
        self.track_id = 3_000_000_000 + os.getpid() % 1_000_000
        self.customer_id, self.name, vip = (member.split(':') + ['', '', ''])[:3] if member else ('', '', '')
        self.vip = vip == 'vip'
        self.replies: list[RobotReply] = []
        self.session_open = False
        self.last_heard = time.monotonic()    # when the robot last said or did something
        self._changed = threading.Condition()
        self.customers = self.create_publisher(CustomerEvent, names.CUSTOMER_EVENTS, 10)
        self.utterances = self.create_publisher(Utterance, names.UTTERANCES, 10)
        self.create_subscription(RobotReply, names.REPLIES, self._on_reply, 50)
        self.create_subscription(InteractionEvent, names.INTERACTION_EVENTS, self._on_event, 100)
        self.create_subscription(PlaceArrival, names.ARRIVALS, self._on_arrival, 10)

    # --- what the robot does ---------------------------------------------------------------
    def _on_reply(self, msg: RobotReply) -> None:
        if msg.track_id != self.track_id:
            return
        print(f'robot ({msg.language}, {msg.intent}): {msg.text}', flush=True)
        self.last_heard = time.monotonic()
        with self._changed:
            self.replies.append(msg)
            self.session_open = msg.intent != 'goodbye'
            self._changed.notify_all()

    def _on_event(self, msg: InteractionEvent) -> None:
        if msg.type in SHOWN_EVENTS and (not self.customer_id or msg.customer_pseudonym == self.customer_id):
            print(f'  [{msg.type}] {msg.payload_json}', flush=True)
            self.last_heard = time.monotonic()

    def _on_arrival(self, msg: PlaceArrival) -> None:
        print(f'  [robot arrived at {msg.zone}]', flush=True)
        self.last_heard = time.monotonic()

    # --- what the customer does ------------------------------------------------------------
    def robot_listening(self) -> bool:
        return self.utterances.get_subscription_count() > 0 and self.customers.get_subscription_count() > 0

    def wait_reply(self, after: int, timeout_s: float) -> bool:
        """Wait until the robot said something more than `after` replies (False on timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.replies) <= after:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def appear(self, timeout_s: float = 10.0) -> bool:
        """Step in front of the robot and wait for its greeting."""
        before = len(self.replies)
        kind = CustomerEvent.IDENTIFIED if self.customer_id else CustomerEvent.APPEARED
        self.customers.publish(CustomerEvent(kind=kind, track_id=self.track_id, customer_id=self.customer_id,
                                             display_name=self.name, vip=self.vip,
                                             confidence=1.0 if self.customer_id else 0.0, distance_m=1.0))
        return self.wait_reply(before, timeout_s)

    def say(self, text: str, timeout_s: float = 10.0) -> bool:
        if not self.session_open and not self.appear(timeout_s):
            return False
        before = len(self.replies)
        now = self.get_clock().now().to_msg()
        self.utterances.publish(Utterance(text=text, is_final=True, confidence=1.0, track_id=self.track_id,
                                          start=now, end=now))
        return self.wait_reply(before, timeout_s)

    def settle(self, quiet_s: float, timeout_s: float) -> None:
        """Let the robot finish (guiding, arrival, last replies): until it is quiet for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() - self.last_heard < quiet_s and time.monotonic() < deadline:
            time.sleep(0.1)          # polling a timestamp the callbacks update

    def leave(self) -> None:
        self.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=self.track_id,
                                             customer_id=self.customer_id))
        self.customers.wait_for_all_acked(Duration(seconds=2))


def run_ros_chat(member: str, lines: list[str] | None, timeout_s: float) -> int:
    """Interactive (lines None: read stdin) or scripted chat with the running robot."""
    import rclpy
    from retail_common.executor import RobotExecutor
    from retail_common.node_support import use_robot_dds_profile
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    use_robot_dds_profile()
    rclpy.init()
    node = ChatClient(member)
    executor = RobotExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not node.robot_listening():
            if time.monotonic() > deadline:
                print('retailbot chat: no robot is listening on /dialogue/utterances (start it with '
                      '`retailbot launch launch/robot.launch.yaml` or `make demo`; same ROS_DOMAIN_ID?)', flush=True)
                return 1
            time.sleep(0.1)          # polling the ROS graph: there is no event for "a subscriber came"
        print(f'[talking to the robot as track {node.track_id}'
              + (f', member {node.customer_id} {node.name}' if node.customer_id else ', an anonymous shopper')
              + '. Empty line or Ctrl-D to leave.]', flush=True)
        if not node.appear(timeout_s):
            print('retailbot chat: the robot did not greet (is the dialogue manager running?)', flush=True)
            return 1
        for text in lines if lines is not None else _typed():
            if not text.strip():
                break
            if not node.say(text, timeout_s):
                print('  [no answer from the robot]', flush=True)
        if lines is not None:
            node.settle(2.0, timeout_s)
        node.leave()
        print('[customer left]', flush=True)
        return 0
    except KeyboardInterrupt:
        node.leave()
        return 0
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()


def _typed():
    while True:
        try:
            yield input()
        except EOFError:
            return
