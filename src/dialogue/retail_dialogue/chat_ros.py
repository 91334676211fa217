"""`retailbot chat --ros`: type as a customer to the running robot.

The chat stands in for the camera and the microphone of one customer: it announces a person
(a track id of its own, or a member with `--member`) on `/perception/customer_events`, sends each
typed line as a final utterance on `/dialogue/utterances`, and prints what the robot answers for
that customer (`/dialogue/replies`), the events it records (recommendations, guiding, staff calls,
check-ins) and where the robot arrives. Leaving (empty line, Ctrl-D) tells the robot the person
left. Nothing here changes the robot: it uses the same topics as its own sensors.
"""
from __future__ import annotations

import json
import os
import threading
import time

from rclpy.duration import Duration
from rclpy.node import Node

from retail_interfaces.msg import CustomerEvent, InteractionEvent, PlaceArrival, RobotReply, Utterance
from retail_common import names

SHOWN_EVENTS = ('recommendation', 'guide', 'tour', 'staff_request', 'vip_checkin')
GREETING_WAIT_S = 3.0      # how long the chat waits for a greeting before it just talks
TYPED_FRAME = 'typed'      # Utterance.header.frame_id of typed text (manager_node.TYPED_INPUT_FRAMES)


class ChatClient(Node):
    def __init__(self, member: str = '', json_out: bool = False, **kwargs) -> None:
        super().__init__('chat', **kwargs)
        self.json_out = json_out
        self.turn_events: list[tuple[str, dict]] = []     # (type, payload) of this customer's events
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
        if not self.json_out:
            print(f'robot ({msg.language}, {msg.intent}): {msg.text}', flush=True)
        self.last_heard = time.monotonic()
        with self._changed:
            self.replies.append(msg)
            self.session_open = msg.intent != 'goodbye'
            self._changed.notify_all()

    def _on_event(self, msg: InteractionEvent) -> None:
        if msg.customer_pseudonym != self.customer_id:
            return
        if msg.type in ('dialogue_turn', 'recommendation', 'staff_request', 'tour', 'guide'):
            try:
                payload = json.loads(msg.payload_json)
            except ValueError:
                payload = {}
            with self._changed:
                self.turn_events.append((msg.type, payload if isinstance(payload, dict) else {}))
        if msg.type in SHOWN_EVENTS and not self.json_out:
            print(f'  [{msg.type}] {msg.payload_json}', flush=True)
            self.last_heard = time.monotonic()

    def _on_arrival(self, msg: PlaceArrival) -> None:
        if not self.json_out:
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

    def appear(self, greeting_s: float = GREETING_WAIT_S) -> bool:
        """Step in front of the robot; True if it greeted within `greeting_s`. A robot busy with
        another customer (guiding the simulated camera's shopper) greets nobody: the chat goes on
        anyway, since typed text is answered without a greeting."""
        before = len(self.replies)
        kind = CustomerEvent.IDENTIFIED if self.customer_id else CustomerEvent.APPEARED
        self.customers.publish(CustomerEvent(kind=kind, track_id=self.track_id, customer_id=self.customer_id,
                                             display_name=self.name, vip=self.vip,
                                             confidence=1.0 if self.customer_id else 0.0, distance_m=1.0))
        self.session_open = True
        return self.wait_reply(before, greeting_s)

    def say(self, text: str, timeout_s: float = 10.0) -> bool:
        if not self.session_open:
            self.appear(0.0)
        before = len(self.replies)
        now = self.get_clock().now().to_msg()
        msg = Utterance(text=text, is_final=True, confidence=1.0, track_id=self.track_id, start=now, end=now)
        msg.header.stamp = now
        msg.header.frame_id = TYPED_FRAME      # typed by the person at the robot: answered without a greeting
        self.utterances.publish(msg)
        return self.wait_reply(before, timeout_s)

    def settle(self, quiet_s: float, timeout_s: float) -> None:
        """Let the robot finish (guiding, arrival, last replies): until it is quiet for `quiet_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() - self.last_heard < quiet_s and time.monotonic() < deadline:
            time.sleep(0.1)          # polling a timestamp the callbacks update

    def turn_json(self, said: str, replies: list[RobotReply], events: list[tuple[str, dict]]) -> dict:
        """One line of `chat --ros --json`, from the replies and the recorded events of the turn."""
        turn = next((p for t, p in events if t == 'dialogue_turn'), {})
        products = list(turn.get('products') or [])
        for type_, payload in events:
            if type_ == 'recommendation':
                products += [p for p in payload.get('products') or [] if p not in products]
        return {'said': said, 'reply': ' '.join(r.text for r in replies),
                'lang': turn.get('language') or (replies[-1].language if replies else ''),
                'intent': turn.get('intent', replies[-1].intent if replies else ''), 'slots': turn.get('slots', {}),
                'products': products, 'guide_to': turn.get('guide_to'), 'tour': turn.get('tour'),
                'staff_called': bool(turn.get('staff_called')) or any(t == 'staff_request' for t, _ in events)}

    def leave(self) -> None:
        self.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=self.track_id,
                                             customer_id=self.customer_id))
        self.customers.wait_for_all_acked(Duration(seconds=2))


def run_ros_chat(member: str, lines: list[str] | None, timeout_s: float, json_out: bool = False) -> int:
    """Interactive (lines None: read stdin) or scripted chat with the running robot. With
    `json_out`, one JSON object per customer line (as the standalone chat) and notes on stderr."""
    import sys
    from retail_common.cli_output import print_json
    note = sys.stderr if json_out else sys.stdout
    import rclpy
    from retail_ros.executor import RobotExecutor
    from retail_ros.node_support import use_robot_dds_profile
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    use_robot_dds_profile()
    rclpy.init()
    node = ChatClient(member, json_out=json_out)
    executor = RobotExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not node.robot_listening():
            if time.monotonic() > deadline:
                print('retailbot chat: no robot is listening on /dialogue/utterances (start it with '
                      '`retailbot launch launch/robot.launch.yaml` or `make demo`; same ROS_DOMAIN_ID?)', flush=True,
                      file=note)
                return 1
            time.sleep(0.1)          # polling the ROS graph: there is no event for "a subscriber came"
        print(f'[talking to the robot as track {node.track_id}'
              + (f', member {node.customer_id} {node.name}' if node.customer_id else ', an anonymous shopper')
              + '. Empty line or Ctrl-D to leave.]', flush=True, file=note)
        if not node.appear(min(GREETING_WAIT_S, timeout_s)):
            print('[the robot did not greet (it may be busy with another customer); talking to it anyway]',
                  flush=True, file=note)
        for text in lines if lines is not None else _typed():
            if not text.strip():
                break
            replies_before, events_before = len(node.replies), len(node.turn_events)
            if not node.say(text, timeout_s):
                print('  [no answer from the robot]', flush=True, file=note)
            if json_out:
                node.settle(0.5, 3.0)       # a second reply (arrival, tour stop) may follow the first
                print_json(node.turn_json(text, node.replies[replies_before:], node.turn_events[events_before:]))
        if lines is not None:
            node.settle(2.0, timeout_s)
        node.leave()
        print('[customer left]', flush=True, file=note)
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
