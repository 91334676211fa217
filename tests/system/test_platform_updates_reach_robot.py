"""Data booked or changed on the platform after the robot started reaches the running nodes.

Real processes: the reference platform (HTTP on 127.0.0.1), the sync agent (downlink into
<data_dir>/platform, /sync/data_updates), the recommendation server and the dialogue manager,
all started on the store folder + data dir as the launch files do; the test holds a LiveStore
driven by watch_store like every node.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rclpy.node import Node
from std_srvs.srv import Trigger

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'sync'))
from sync_support import free_port, node_starter, provision_robot, robot_data, start_platform  # noqa: E402

from retail_common.live_store import LiveStore  # noqa: E402
from retail_ros.node_support import watch_store  # noqa: E402
from retail_interfaces.msg import CustomerEvent, RobotReply  # noqa: E402
from retail_interfaces.srv import Recommend  # noqa: E402
from rostest_support import console_script, stop_process, wait_for  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
TOKEN = 'live-store-token'
ROBOT = 'robot-live'
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _products(text: str, change=lambda price: price) -> list[dict]:
    """The catalog's rows as the platform's product master takes them, prices changed."""
    rows = [{k: v for k, v in row.items() if k} for row in csv.DictReader(io.StringIO(text))]
    for row in rows:
        row['price_cny'] = f'{change(float(row["price_cny"])):.2f}'
    return rows


class Probe(Node):
    def __init__(self, live: LiveStore, **kwargs) -> None:
        super().__init__('live_store_probe', **kwargs)
        self.swaps = []
        self.replies: list[RobotReply] = []
        self.lock = threading.Lock()
        watch_store(self, live, self.swaps.append)
        self.recommend = self.create_client(Recommend, '/recommendation/recommend')
        self.sync_now = self.create_client(Trigger, '/sync/sync_now')
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 20)
        self.create_subscription(RobotReply, '/dialogue/replies', self._on_reply, 20)

    def _on_reply(self, msg: RobotReply) -> None:
        with self.lock:
            self.replies.append(msg)

    def call(self, client, request, what: str):
        assert client.wait_for_service(timeout_sec=30), f'{what} service not available'
        future = client.call_async(request)
        wait_for(future.done, 20, what)
        return future.result()


@pytest.fixture
def robot(ros_env, tmp_path, processes):
    platform = start_platform(tmp_path / 'platform.sqlite3', free_port(), TOKEN)
    robot_token = provision_robot(platform, ROBOT, 'store-live')
    imported = subprocess.run([console_script('retailbot'), 'platform', 'member-import', '--db', str(platform.db),
                               '--history', str(DEMO / 'history.csv'), '--home-store', 'store-live', '--consent'],
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    with platform.client() as client:
        client.put('/v1/products', json={'products': _products(
            (DEMO / 'catalog.csv').read_text(encoding='utf-8-sig'))}).raise_for_status()
    store = tmp_path / 'store'
    shutil.copytree(DEMO, store)
    data, logs = robot_data(tmp_path, robot_token)
    start = node_starter(processes, ros_env, logs)

    start('retail_sync_agent', '/sync', f'platform_url:={platform.url}', f'robot_id:={ROBOT}',
          f'token_file:={data / "sync" / "token"}', f'outbox:={data / "sync" / "outbox.sqlite3"}',
          f'data_dir:={data / "platform"}', 'downlink_interval_s:=600.0')
    start('retail_recommendation_server', '/recommendation', f'store_dir:={store}', f'data_dir:={data}')
    start('retail_dialogue_manager', '/dialogue', f'store_dir:={store}', f'data_dir:={data}')
    yield platform, store, data, logs
    stop_process(platform.process)


def test_platform_bookings_and_prices_reach_the_running_robot(robot, ros_context, spin):
    platform, store, data, logs = robot
    live = LiveStore(store, data)
    probe = Probe(live, context=ros_context)
    spin(probe)
    # The agent's first download at start (the demo catalog, from the platform) reaches the store.
    wait_for(lambda: live.current().catalog.path == str(data / 'platform' / 'catalog.csv'), 60,
             "the platform's catalog in the LiveStore")
    assert live.current().appointments == ()

    # Every node is up (the manager listens, the recommender answers with the old prices) ...
    wait_for(lambda: probe.customers.get_subscription_count() > 0, 60, 'the manager listening to customers')
    old_text = (DEMO / 'catalog.csv').read_text(encoding='utf-8-sig')
    old_prices = {row['sku']: float(row['price_cny']) for row in csv.DictReader(io.StringIO(old_text))}
    before = wait_for(lambda: (a := probe.call(probe.recommend, Recommend.Request(category='phone', k=3),
                                               'a Recommend answer')).success and a, 60, 'the recommender ready')
    assert all(item.price_cny == old_prices[item.sku] for item in before.items)

    # ... when a VIP books on the platform.
    start = (datetime.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    with platform.client() as client:
        client.post('/v1/admin/appointments', json={
            'robot_id': ROBOT, 'customer': 'm-900777', 'time': start.isoformat(), 'purpose': '电视选购咨询',
            'note': json.dumps({'name': '齐先生', 'meeting_point': 'vip_lounge', 'staff': '李经理'},
                               ensure_ascii=False)}).raise_for_status()
    assert probe.call(probe.sync_now, Trigger.Request(), 'sync_now').success
    booked = wait_for(lambda: live.current().appointments_for('m-900777', datetime.now()), 30,
                      'the new appointment in the LiveStore')
    assert (booked[0].name, booked[0].purpose, booked[0].staff) == ('齐先生', '电视选购咨询', '李经理')

    # ... and the running dialogue manager greets that VIP with the appointment. (The manager hears
    # of the update on its own: the VIP comes back in view until it has.)
    tracks = iter(range(41, 100))

    def greeted():
        with probe.lock:
            found = next((r for r in probe.replies if '齐先生' in r.text and '电视选购咨询' in r.text), None)
        if found is None:
            track = next(tracks)
            probe.customers.publish(CustomerEvent(kind=CustomerEvent.LEFT, track_id=track - 1))
            probe.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=track,
                                                  customer_id='m-900777', display_name='齐先生', vip=True,
                                                  confidence=0.9))
        return found
    wait_for(greeted, 30, "the manager greeting the new VIP with the appointment's purpose", interval=1.0)

    # A price change on the platform reaches the recommendations.
    with platform.client() as client:
        client.put('/v1/products', json={'products': _products(old_text, lambda p: p + 1.0)}).raise_for_status()
    assert probe.call(probe.sync_now, Trigger.Request(), 'sync_now').success
    wait_for(lambda: live.current().catalog.products[0].price_cny == old_prices[live.current().catalog.products[0].sku] + 1,
             30, 'the new prices in the LiveStore')

    def new_prices():
        answer = probe.call(probe.recommend, Recommend.Request(category='phone', k=3), 'a Recommend answer')
        return answer.success and answer.items and all(
            abs(item.price_cny - (old_prices[item.sku] + 1.0)) < 0.005 for item in answer.items) and answer
    # (the server rebuilds its model on a new catalog: ~30 s on this shared 2-core machine)
    answer = wait_for(new_prices, 90, 'recommendations quoting the new prices')
    assert len(answer.items) == 3
