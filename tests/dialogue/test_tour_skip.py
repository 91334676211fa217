"""Issue 24: "skip this stop" on a tour — the real manager and the real guide node (against a
kinematic base) on DDS: the manager calls the guide's SkipTourStop service, the robot never drives
to the skipped stop and heads to the one after it; the skipped stop is not narrated."""
from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest
import yaml
from rclpy.node import Node
from rclpy.parameter import Parameter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from guide_support import KinematicBase  # noqa: E402

from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode  # noqa: E402
from retail_interfaces.msg import CustomerEvent, PlaceArrival, RobotReply, Utterance  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from rostest_support import wait_for  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
TRACK = 31
STOPS = {'service_desk': ('这里是服务台。', 'This is the service desk.'),
         'entrance': ('这里是入口。', 'This is the entrance.'),
         'dock': ('这里是充电桩。', 'This is the charging dock.')}


class Customer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('customer', **kwargs)
        self.lock = threading.Lock()
        self.replies: list[str] = []
        self.arrivals: list[str] = []
        self.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 50)
        self.create_subscription(PlaceArrival, '/navigation/arrivals', self._on_arrival, 10)
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)
        self.utterances = self.create_publisher(Utterance, '/dialogue/utterances', 10)

    def _on_reply(self, msg: RobotReply) -> None:
        with self.lock:
            self.replies.append(msg.text)

    def _on_arrival(self, msg: PlaceArrival) -> None:
        with self.lock:
            self.arrivals.append(msg.zone)

    def texts(self) -> list[str]:
        with self.lock:
            return list(self.replies)

    def said(self, text: str) -> bool:
        return any(text in t for t in self.texts())

    def say(self, text: str) -> None:
        self.utterances.publish(Utterance(text=text, is_final=True, confidence=1.0, track_id=TRACK))


def _store(tmp_path: Path) -> Path:
    """The demo store whose first (offered) tour is service desk -> entrance -> dock."""
    store = tmp_path / 'store'
    shutil.copytree(DEFAULT_STORE, store)
    zones = yaml.safe_load((store / 'zones.yaml').read_text(encoding='utf-8'))
    zones['tours'] = {'three': [{'zone': z, 'narration': {'zh': zh, 'en': en}} for z, (zh, en) in STOPS.items()],
                      **zones['tours']}
    (store / 'zones.yaml').write_text(yaml.safe_dump(zones, allow_unicode=True, sort_keys=False), encoding='utf-8')
    return store


def _robot(ros_context, spin, tmp_path: Path, *extra: Parameter):
    """The real guide (against a kinematic base) and the real manager on the demo store with the
    three-stop tour, a greeted customer in front of them."""
    store_dir = _store(tmp_path)
    base = KinematicBase(context=ros_context)
    guide = GuideNode(context=ros_context, namespace='navigation', parameter_overrides=[
        Parameter('store_dir', value=str(store_dir)), Parameter('max_vx', value=0.8), *extra,
        Parameter('localization', value=False), Parameter('cmd_vel_topic', value='/cmd_vel'),
        Parameter('scan_topic', value='')])
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter('store_dir', value=str(store_dir))])
    customer = Customer(context=ros_context)
    spin(base, guide, manager, customer)
    wait_for(lambda: guide._pose is not None and manager.guide_client.server_is_ready()
             and manager.tour_client.server_is_ready() and manager.skip_client.service_is_ready()
             and customer.count_subscribers('/dialogue/utterances'), 30, 'the robot ready')
    customer.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=TRACK))
    wait_for(customer.texts, 10, 'the greeting')
    return base, guide, manager, customer


@pytest.mark.parametrize('words', ['跳过下一站', 'skip the next stop'])
def test_a_skipped_stop_is_not_driven_to_and_the_robot_heads_to_the_next(ros_context, spin, tmp_path, words):
    base, guide, manager, customer = _robot(ros_context, spin, tmp_path, Parameter('tour_dwell_s', value=2.0))
    english = words.startswith('skip')
    pick = 1 if english else 0
    customer.say('show me around' if english else '带我参观一下')
    wait_for(lambda: customer.said(STOPS['service_desk'][pick]), 60, 'narration at the first stop')
    customer.say(words)
    wait_for(lambda: customer.said('skip' if english else '跳过'), 10, 'the skip acknowledged')
    wait_for(lambda: customer.said(STOPS['dock'][pick]), 60, 'narration at the stop after the skipped one')
    wait_for(lambda: guide._mission is None, 15, 'the tour to end')
    assert customer.arrivals == ['service_desk', 'dock']          # the robot never went to the entrance
    assert not customer.said(STOPS['entrance'][pick])
    assert manager.core.sessions[TRACK].tour is None


def test_a_new_destination_while_guiding_replaces_the_goal_and_only_it_is_announced(ros_context, spin, tmp_path):
    base, guide, manager, customer = _robot(ros_context, spin, tmp_path)
    customer.say('带我去出口')
    wait_for(lambda: base.vx > 0.1, 20, 'the robot driving to the exit')
    customer.say('算了，带我去服务台')
    wait_for(lambda: customer.arrivals, 60, 'an arrival')
    wait_for(lambda: customer.said('我们到了，这里是服务台'), 10, 'the arrival said')
    wait_for(lambda: guide._mission is None and not manager._goals, 10, 'the mission over')
    assert customer.arrivals == ['service_desk']
    arrived = [t for t in customer.texts() if '到了' in t]
    assert arrived and all('出口' not in t for t in arrived), arrived
    assert not any('没能' in t or '抱歉' in t for t in customer.texts()), customer.texts()


def test_the_same_destination_asked_again_while_guiding_is_still_announced(ros_context, spin, tmp_path):
    """The first goal is cancelled and replaced; its 'cancelled' result (same zone) must not end
    the new goal's conversation, so the arrival of the new goal is said."""
    base, guide, manager, customer = _robot(ros_context, spin, tmp_path)
    customer.say('带我去服务台')
    wait_for(lambda: base.vx > 0.1, 20, 'the robot driving to the service desk')
    customer.say('带我去服务台')
    wait_for(lambda: customer.arrivals, 60, 'an arrival')
    wait_for(lambda: customer.said('我们到了，这里是服务台'), 10, 'the arrival said')
    assert customer.arrivals == ['service_desk']
