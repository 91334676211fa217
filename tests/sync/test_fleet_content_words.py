"""Greetings and tours rolled out from the platform reach what the running robot says and does:
the real platform process, the real /sync/agent, the real /dialogue/manager (and for the tour the
real /navigation/guide against a kinematic base) on DDS. The agent swaps the version in
(desired.json in the platform data the store model overlays); the nodes reload their store on the
DataUpdate: the next greeting is the rolled-out one, the tour offered is the rolled-out one with
its narrations. A later version whose tour names a zone the store does not have is refused whole,
the rollout halts with the reason, and the robot keeps speaking the last good version."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_dialogue.manager_node import DEFAULT_STORE, ManagerNode
from retail_interfaces.msg import CustomerEvent, PlaceArrival, RobotReply, Utterance
from retail_platform.storage import Storage
from retail_sync.agent_node import SyncAgent
from rostest_support import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from guide_support import KinematicBase  # noqa: E402

from retail_navigation.guide_node import GuideNode  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
ROBOT = 'robot-words'
GREETINGS = {'anonymous': {'zh': '欢迎来到冬季特卖！', 'en': 'Welcome to the winter sale!'},
             'member': {'zh': '{name}您好，会员今天九折！'}}
TOUR = {'name': 'express', 'stops': [
    {'zone': 'service_desk', 'narration': {'zh': '冬季特卖的服务台在这里。', 'en': 'The winter sale desk.'}},
    {'zone': 'dock', 'narration': {'zh': '这是机器人的充电桩。', 'en': 'My charging dock.'}}]}


class Shopper(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('shopper', **kwargs)
        self.lock = threading.Lock()
        self.replies: list[RobotReply] = []
        self.arrivals: list[str] = []
        self.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 50)
        self.create_subscription(PlaceArrival, '/navigation/arrivals', self._on_arrival, 10)
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 10)
        self.utterances = self.create_publisher(Utterance, '/dialogue/utterances', 10)

    def _on_reply(self, msg: RobotReply) -> None:
        with self.lock:
            self.replies.append(msg)

    def _on_arrival(self, msg: PlaceArrival) -> None:
        with self.lock:
            self.arrivals.append(msg.zone)

    def said_to(self, track: int) -> list[str]:
        with self.lock:
            return [r.text for r in self.replies if r.track_id == track]

    def greeting(self, track: int, member: str = '', name: str = '') -> str:
        """A new customer in front of the robot: what it greets them with."""
        kind = CustomerEvent.IDENTIFIED if member else CustomerEvent.APPEARED
        self.customers.publish(CustomerEvent(kind=kind, track_id=track, customer_id=member, display_name=name))
        [text] = wait_for(lambda: self.said_to(track)[:1], timeout=30, what=f'the greeting of track {track}')
        return text

    def leave(self, track: int) -> None:
        self.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=track))


def _robot(ros_context, spin, platform, tmp_path, *, with_guide: bool):
    storage = Storage(str(platform.db))
    storage.add_store('s-1', 'Store one')
    token = storage.issue_robot_token(ROBOT, 's-1')
    storage.close()
    robot_data = tmp_path / 'robot'
    params = dict(robot_id=ROBOT, platform_url=platform.url, token=token,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(robot_data / 'platform'),
                  store_dir=DEFAULT_STORE, downlink_interval_s=600.0, diagnostics_period_s=0.5,
                  fleet_period_s=1.0)
    nodes: list[Node] = [SyncAgent(context=ros_context, namespace='sync',
                                   parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])]
    store = [Parameter('store_dir', value=DEFAULT_STORE), Parameter('data_dir', value=str(robot_data))]
    manager = ManagerNode(context=ros_context, parameter_overrides=store)
    shopper = Shopper(context=ros_context)
    nodes += [manager, shopper]
    guide = None
    if with_guide:
        guide = GuideNode(context=ros_context, namespace='navigation', parameter_overrides=[
            *store, Parameter('max_vx', value=0.8), Parameter('tour_dwell_s', value=1.0),
            Parameter('localization', value=False), Parameter('cmd_vel_topic', value='/cmd_vel'),
            Parameter('scan_topic', value='')])
        nodes += [KinematicBase(context=ros_context), guide]
    spin(*nodes)
    admin = platform.client()
    wait_for(lambda: admin.get('/v1/stores/s-1/fleet').json()['robots'], timeout=30,
             what='the robot\'s heartbeat on the platform')
    wait_for(lambda: shopper.count_subscribers('/dialogue/utterances')
             and manager.count_publishers('/perception/customer_events')
             and (guide is None or (guide._pose is not None and manager.tour_client.server_is_ready())),
             timeout=30, what='the robot ready')
    return admin, shopper, guide


def _roll_out(admin, content: dict) -> dict:
    """A new version of group g's desired state, rolled out to it: (version, rollout)."""
    admin.put('/v1/admin/fleet/groups/g', json={'robots': [ROBOT]}).raise_for_status()
    answer = admin.post('/v1/admin/fleet/groups/g/desired', json={'content': content})
    answer.raise_for_status()
    version = answer.json()['version']
    rollout = admin.post('/v1/admin/fleet/groups/g/rollouts', json={'version': version, 'soak_s': 0})
    rollout.raise_for_status()
    return {'version': version, 'rollout': rollout.json()['id']}


def _running(admin, version: int) -> None:
    wait_for(lambda: admin.get('/v1/stores/s-1/fleet').json()['robots'][0]['heartbeat'][
        'desired_version'] == version, timeout=30, what=f'the robot running v{version}')


def test_a_rolled_out_greeting_is_spoken_from_the_next_greeting(ros_context, spin, platform, tmp_path):
    admin, shopper, _ = _robot(ros_context, spin, platform, tmp_path, with_guide=False)
    assert shopper.greeting(21) == '您好，欢迎光临！请问有什么可以帮您？'      # built in, before the rollout
    shopper.leave(21)

    good = _roll_out(admin, {'greetings': GREETINGS})
    _running(admin, good['version'])
    # the nodes reload on the DataUpdate: from the next greeting on, the rolled-out words
    tracks = iter(range(22, 60))

    def next_greeting_is_rolled_out() -> bool:
        track = next(tracks)
        text = shopper.greeting(track)
        shopper.leave(track)
        return text == GREETINGS['anonymous']['zh']

    wait_for(next_greeting_is_rolled_out, timeout=30, what='the rolled-out greeting spoken')
    assert shopper.greeting(61, 'm-61', '王丽') == '王丽您好，会员今天九折！'

    # a version whose tour names a zone this store does not have: refused whole, halted, v1 kept
    bad = _roll_out(admin, {'greetings': {'anonymous': {'zh': '全场免费！'}},
                            'tours': [{'name': 'ski', 'stops': [{'zone': 'ski_slope'}]}]})
    halted = wait_for(lambda: (lambda r: r['state'] == 'halted' and r)(
        admin.get(f'/v1/admin/fleet/rollouts/{bad["rollout"]}').json()), timeout=30,
        what='the rollout halted by the robot\'s refusal')
    assert 'ski_slope' in halted['reason'] and 'known zone' in halted['reason']
    beat = admin.get('/v1/stores/s-1/fleet').json()['robots'][0]['heartbeat']
    assert beat['desired_version'] == good['version'] and 'ski_slope' in beat['desired_error']
    assert shopper.greeting(62) == GREETINGS['anonymous']['zh']

    # a greeting with a placeholder the robot does not have: the platform refuses it (the model)
    refused = admin.post('/v1/admin/fleet/groups/g/desired',
                         json={'content': {'greetings': {'member': {'en': 'Hi {first_name}'}}}})
    assert refused.status_code == 422 and 'content.greetings.member.en' in refused.text
    assert 'first_name' in refused.text
    admin.close()


def test_a_rolled_out_tour_is_the_one_driven_and_narrated(ros_context, spin, platform, tmp_path):
    admin, shopper, guide = _robot(ros_context, spin, platform, tmp_path, with_guide=True)
    good = _roll_out(admin, {'tours': [TOUR]})
    _running(admin, good['version'])
    wait_for(lambda: next(iter(guide.zones.tours)) == 'express', timeout=30, what='the guide\'s store reloaded')
    shopper.greeting(31)
    shopper.utterances.publish(Utterance(text='带我参观一下', is_final=True, confidence=1.0, track_id=31))
    for stop in TOUR['stops']:
        wait_for(lambda stop=stop: any(stop['narration']['zh'] in t for t in shopper.said_to(31)),
                 timeout=60, what=f'the narration at {stop["zone"]}')
    assert shopper.arrivals[:2] == ['service_desk', 'dock']
    admin.close()
