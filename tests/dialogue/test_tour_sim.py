"""Issue 13: a tour in simulation — the real manager, the real guide and base driver on the simulated
base over a pty — narrates every stop it reaches, answers a question on the way, and ends when the
customer says "stop" mid-way (the Tour goal is cancelled and the base stops)."""
from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import pytest
import yaml
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from nav_base_support import base_sim  # noqa: E402,F401 (fixture)

from retail_common.store import load_store  # noqa: E402
from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode  # noqa: E402
from retail_interfaces.msg import CustomerEvent, RobotReply, Utterance  # noqa: E402
from retail_navigation.base_driver_node import BaseDriverNode  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from retail_navigation.maps import load_map  # noqa: E402
from rostest_support import wait_for  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
TRACK = 21


class Customer(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('customer', **kwargs)
        self.lock = threading.Lock()
        self.replies: list[RobotReply] = []
        self.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 50)
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)
        self.utterances = self.create_publisher(Utterance, '/dialogue/utterances', 10)

    def _on_reply(self, msg: RobotReply) -> None:
        with self.lock:
            self.replies.append(msg)

    def texts(self) -> list[str]:
        with self.lock:
            return [r.text for r in self.replies if r.track_id == TRACK]

    def say(self, text: str) -> None:
        self.utterances.publish(Utterance(text=text, is_final=True, confidence=1.0, track_id=TRACK))


def _short_tour_store(tmp_path: Path) -> Path:
    """The demo store with a showroom tour of three neighbouring zones (a short drive); the file keeps
    its order (the first tour listed is the one offered)."""
    store = tmp_path / 'store'
    shutil.copytree(DEFAULT_STORE, store)
    zones = yaml.safe_load((store / 'zones.yaml').read_text(encoding='utf-8'))
    keep = {stop['zone']: stop for stop in zones['tours']['showroom']}
    zones['tours']['showroom'] = [keep['phones'], keep['computers'], keep['cameras_gaming']]
    (store / 'zones.yaml').write_text(yaml.safe_dump(zones, allow_unicode=True, sort_keys=False), encoding='utf-8')
    return store


def test_tour_in_simulation_narrates_each_stop_and_stops_mid_way(ros_context, spin, base_sim, tmp_path):
    store_dir = _short_tour_store(tmp_path)
    store = load_store(store_dir)
    phones = store.zones['phones'].pose
    start = (phones[0] - 1.0, phones[1], 0.0)
    sim = base_sim(load_map(store_dir / 'map.yaml'), start)
    driver = BaseDriverNode(context=ros_context, namespace='navigation',
                            parameter_overrides=[Parameter('port', value=str(sim.link))])
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(store_dir)),
                                           Parameter('initial_pose', value=list(start)),
                                           Parameter('tour_dwell_s', value=1.0),
                                           # odometry only, straight to /cmd_vel: no lidar in this test
                                           Parameter('localization', value=False),
                                           Parameter('cmd_vel_topic', value='/cmd_vel'),
                                           Parameter('scan_topic', value='')])
    manager = ManagerNode(context=ros_context, parameter_overrides=[Parameter('store_dir', value=str(store_dir))])
    customer = Customer(context=ros_context)
    spin(driver, guide, manager, customer)
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: guide._pose is not None and manager.tour_client.server_is_ready()
             and customer.count_subscribers('/dialogue/utterances'), 20, 'the robot ready')
    customer.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=TRACK))
    wait_for(customer.texts, 10, 'the greeting')

    stops = store.tours['showroom']
    customer.say('带我参观一下')
    wait_for(lambda: any('一共3站' in t for t in customer.texts()), 10, 'the tour announced')
    wait_for(lambda: any(stops[0].narration_zh in t for t in customer.texts()), 60, 'narration at the first stop')
    customer.say('iPhone 16多少钱')                                     # a question on the way
    wait_for(lambda: any('5999元' in t for t in customer.texts()), 10, 'the answer mid-tour')
    wait_for(lambda: any(stops[1].narration_zh in t for t in customer.texts()), 60,
             'narration at the second stop: the tour went on after the answer')
    customer.say('结束参观')
    wait_for(lambda: any('参观到这里结束' in t for t in customer.texts()), 10, 'the end of the tour said')
    wait_for(lambda: guide._mission is None, 15, 'the guide to end the tour mission')
    assert not any(stops[2].narration_zh in t for t in customer.texts())
    assert sum(stop.narration_zh in t for stop in stops for t in customer.texts()) == 2
    assert TRACK in manager.core.sessions and manager.core.sessions[TRACK].tour is None
