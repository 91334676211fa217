"""Issue 23's two-store test: what a member said to robot A in store 1 shapes what robot B in
store 2 offers her the next day, and after "forget" neither the platform nor robot B has it.

Real parts: `retailbot platform serve` (HTTP on 127.0.0.1, SQLite) with stores s-1 and s-2 and a
robot credential each; robot A = the sync agent (outbox, upload), the recommendation server and
the dialogue manager of store 1's data dir; robot B = the recommendation server and dialogue
manager of store 2's data dir, fed by the robot's store downlink core (retail_sync.downlink,
the same calls the agent makes) and its /sync/data_updates message. The test plays the camera
(a recognised member's CustomerEvent, as the faces node publishes it) and the customer (her words
on /dialogue/utterances), and waits on real messages, each bounded.

Day 1 runs robot A's nodes; they stop; day 2 runs robot B's on the same ROS domain (one robot's
names at a time, as on two robots in two stores).
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from rclpy.node import Node
from std_srvs.srv import Trigger

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / 'platform'))
from platform_support import ADMIN, start_server  # noqa: E402

from retail_common import names  # noqa: E402
from retail_interfaces.msg import CustomerEvent, DataUpdate, InteractionEvent, RobotReply, Utterance  # noqa: E402
from retail_interfaces.srv import Recommend  # noqa: E402
from retail_platform.database import upgrade  # noqa: E402
from retail_platform.storage import Storage  # noqa: E402
from retail_ros.node_support import DATA_UPDATES_QOS  # noqa: E402
from retail_sync.downlink import StoreDownlink  # noqa: E402
from rostest_support import console_script, stop_process, wait_for  # noqa: E402

DEMO = TESTS.parent / 'config' / 'stores' / 'demo'
SHE = 'm-0001'
SAID = '我想要华为的笔记本，6000以下'
LAST_TIME = '上次您在看6000元以下的笔记本电脑，想要华为'
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


class Floor(Node):
    """The camera and the customer of the test, and what the robot says and records."""

    def __init__(self, **kwargs) -> None:
        super().__init__('two_store_floor', **kwargs)
        self.lock = threading.Lock()
        self.replies: list[RobotReply] = []
        self.events: list[InteractionEvent] = []
        self.customers = self.create_publisher(CustomerEvent, names.CUSTOMER_EVENTS, 20)
        self.utterances = self.create_publisher(Utterance, names.UTTERANCES, 20)
        self.updates = self.create_publisher(DataUpdate, names.DATA_UPDATES, DATA_UPDATES_QOS)
        self.create_subscription(RobotReply, names.REPLIES, self._keep(self.replies), 50)
        self.create_subscription(InteractionEvent, names.INTERACTION_EVENTS, self._keep(self.events), 100)
        self.recommend = self.create_client(Recommend, names.RECOMMEND)
        self.sync_now = self.create_client(Trigger, '/sync/sync_now')

    def _keep(self, into: list):
        def keep(msg) -> None:
            with self.lock:
                into.append(msg)
        return keep

    def clear(self) -> None:
        with self.lock:
            self.replies.clear()
            self.events.clear()

    def reply_with(self, text: str) -> RobotReply | None:
        with self.lock:
            return next((r for r in self.replies if text in r.text), None)

    def event(self, type_: str, customer: str) -> dict | None:
        with self.lock:
            found = [e for e in self.events if e.type == type_ and e.customer_pseudonym == customer]
        return json.loads(found[-1].payload_json) if found else None

    def recognised(self, track: int, customer: str = SHE, name: str = '王丽') -> None:
        self.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=track, customer_id=customer,
                                             display_name=name, vip=False, confidence=0.9))

    def appeared(self, track: int) -> None:
        self.customers.publish(CustomerEvent(kind=CustomerEvent.APPEARED, track_id=track))

    def says(self, track: int, text: str) -> None:
        self.utterances.publish(Utterance(text=text, language='zh', is_final=True, confidence=0.95,
                                          track_id=track))

    def call(self, client, request, what: str):
        assert client.wait_for_service(timeout_sec=60), f'{what}: service not available'
        future = client.call_async(request)
        wait_for(future.done, 30, what)
        return future.result()


@pytest.fixture
def chain(tmp_path):
    """The platform with stores s-1 and s-2, a robot in each, and the consenting member (store 2
    is her home store, so robot B's downlink carries her record)."""
    database = str(tmp_path / 'platform.sqlite3')
    storage = Storage(database)
    upgrade(storage.engine)
    storage.add_store('s-1', 'Xuhui store')
    storage.add_store('s-2', 'Pudong store')
    tokens = {'a': storage.issue_robot_token('robot-a', 's-1'), 'b': storage.issue_robot_token('robot-b', 's-2')}
    storage.close()
    server = start_server(database)
    with server.client() as admin:
        assert admin.put(f'/v1/admin/members/{SHE}', json={'consent': True, 'home_store': 's-2'}).status_code == 200
    yield server, database, tokens
    stop_process(server.process)


def _robot(processes, ros_env, logs: Path, data: Path, *, agent: tuple[str, str, str] | None = None) -> list:
    started = []

    def start(name: str, namespace: str, *params: str) -> None:
        args = [console_script(name), '--ros-args', '-r', f'__ns:={namespace}']
        for param in params:
            args += ['-p', param]
        started.append(processes(args, env=ros_env, stdout=(logs / f'{data.name}-{name}.log').open('w'),
                                  stderr=subprocess.STDOUT))
    if agent is not None:
        url, robot_id, token_file = agent
        start('retail_sync_agent', '/sync', f'platform_url:={url}', f'robot_id:={robot_id}',
              f'token_file:={token_file}', f'outbox:={data / "sync" / "outbox.sqlite3"}',
              f'data_dir:={data / "platform"}', 'downlink_interval_s:=600.0', 'batch_delay_s:=0.5')
    start('retail_recommendation_server', '/recommendation', f'store_dir:={DEMO}', f'data_dir:={data}')
    start('retail_dialogue_manager', '/dialogue', f'store_dir:={DEMO}', f'data_dir:={data}')
    return started


def _profile(server, database: str) -> tuple[int, list]:
    status = httpx.get(f'{server.url}/v1/members/{SHE}/profile', headers={'Authorization': f'Bearer {ADMIN}'},
                       timeout=30).status_code
    with sqlite3.connect(database) as db:
        kept = db.execute('SELECT customer FROM member_profiles').fetchall()
    return status, kept


def test_what_she_said_in_store_1_shapes_store_2_next_day_and_forget_removes_it(
        chain, ros_env, ros_context, spin, processes, tmp_path):
    server, database, tokens = chain
    floor = Floor(context=ros_context)
    spin(floor)
    logs = tmp_path / 'logs'
    logs.mkdir()

    # --- day 1, store 1: robot A hears what she wants and uploads it ------------------------------
    data_a = tmp_path / 'robot-a'
    (data_a / 'sync').mkdir(parents=True)
    (data_a / 'sync' / 'token').write_text(tokens['a'] + '\n')
    robot_a = _robot(processes, ros_env, logs, data_a,
                     agent=(server.url, 'robot-a', str(data_a / 'sync' / 'token')))
    wait_for(lambda: floor.customers.get_subscription_count() > 0, 90, 'robot A listening to the camera')
    tracks = iter(range(11, 60))

    def greeted():
        found = floor.reply_with('王丽')
        if found is None:
            floor.recognised(next(tracks))
        return found
    greeting = wait_for(greeted, 60, 'robot A greeting her by name', interval=1.0)
    assert '上次' not in greeting.text                      # nothing said before: no profile yet
    track = greeting.track_id
    floor.says(track, SAID)
    said = wait_for(lambda: floor.event('member_said', SHE), 30, "robot A recording what she said")
    assert (said['category'], said['max_price'], said['brands_wanted']) == ('laptop', 6000.0, ['Huawei'])
    # an anonymous shopper says the same: it counts in the funnel, builds no profile
    floor.appeared(70)
    wait_for(lambda: any(r.track_id == 70 for r in list(floor.replies)), 30, 'robot A greeting a shopper')
    floor.says(70, SAID)
    wait_for(lambda: floor.event('dialogue_turn', '') is not None, 30, "the shopper's turn")
    assert floor.event('member_said', '') is None

    def uploaded():
        floor.call(floor.sync_now, Trigger.Request(), 'sync_now on robot A')
        return _profile(server, database)[0] == 200
    wait_for(uploaded, 90, 'the platform keeping her profile from robot A\'s upload', interval=2.0)
    for process in robot_a:
        stop_process(process)
    floor.clear()

    # --- day 2, store 2: robot B's morning downlink, then she comes in ----------------------------
    data_b = tmp_path / 'robot-b'
    downlink = StoreDownlink(server.url, tokens['b'], 'robot-b', data_b / 'platform')
    try:
        morning = downlink.sync()
        assert morning.applied and morning.error is None, morning.error
        held = json.loads((data_b / 'platform' / 'profiles.json').read_text(encoding='utf-8'))
        assert held[SHE]['category'] == 'laptop' and held[SHE]['max_price'] == 6000
        _robot(processes, ros_env, logs, data_b)
        wait_for(lambda: floor.call(floor.recommend, Recommend.Request(category='laptop', k=3),
                                    'Recommend on robot B').success, 90, 'robot B recommending')
        tracks = iter(range(101, 160))

        def greeted_back():
            found = floor.reply_with(LAST_TIME)
            if found is None:
                floor.recognised(next(tracks))
            return found
        greeting = wait_for(greeted_back, 60, 'robot B greeting her with what she said in store 1', interval=1.0)
        floor.says(greeting.track_id, '推荐一台笔记本')
        first = wait_for(lambda: floor.event('recommendation', SHE), 60, "robot B's first recommendation for her")
        assert first['profile_used'] is True and first['skus']
        catalog = {p['sku']: p for p in _catalog_rows()}
        assert all(catalog[s]['category'] == 'laptop' and float(catalog[s]['price_cny']) <= 6000
                   for s in first['skus'])
        assert catalog[first['skus'][0]]['brand'] == 'Huawei'
        assert all(p['reason_zh'].startswith(LAST_TIME) for p in first['products'])
        wait_for(lambda: [r for r in list(floor.replies) if r.intent == 'recommend' and LAST_TIME in r.text], 30,
                 'the recommendation said with the reason naming what she said in store 1')

        # --- forget: the platform and robot B drop the profile ----------------------------------------
        with server.client() as admin:
            assert admin.post(f'/v1/admin/members/{SHE}/forget').status_code == 200
        assert _profile(server, database) == (404, [])
        evening = downlink.sync()
        assert evening.applied and evening.forgotten == [SHE], evening
        assert json.loads((data_b / 'platform' / 'profiles.json').read_text(encoding='utf-8')) == {}
        assert downlink.rows('members') == []
        floor.updates.publish(DataUpdate(kind='members', path=str(data_b / 'platform'),
                                         version=str(evening.version)))

        def plain():
            answer = floor.call(floor.recommend, Recommend.Request(customer_id=SHE, category='laptop', k=3),
                                'Recommend on robot B after forget')
            return answer.success and answer.items and all('上次' not in i.reason_zh for i in answer.items)
        wait_for(plain, 60, "robot B's recommendations without her profile")
    finally:
        downlink.close()
    assert _profile(server, database) == (404, [])
    # robot A held her profile (its agent's downlink got it after her upload) and was off at the
    # forget: back online, its downlink erases her (the agent's own code path, run once here)
    back = StoreDownlink(server.url, tokens['a'], 'robot-a', data_a / 'platform')
    try:
        assert back.sync().error is None
    finally:
        back.close()
    for folder in (data_a, data_b):
        assert not any(SHE in p.read_text(encoding='utf-8') for p in folder.rglob('profiles.json'))


def _catalog_rows() -> list[dict]:
    import csv
    with (DEMO / 'catalog.csv').open(encoding='utf-8-sig') as handle:
        return list(csv.DictReader(handle))
