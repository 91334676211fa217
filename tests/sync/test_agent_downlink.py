"""The store downlink through the running robot: real processes (the reference platform over HTTP,
the sync agent, the faces node with a real encrypted gallery) on real DDS, and a probe node.

A snapshot, then a price change as a delta, reach the files the nodes read (with a DataUpdate);
a consenting member recognised by the camera and not cached is fetched on demand; the robot goes
offline, its agent restarts (the held version is kept), a member is forgotten on the platform
meanwhile; back online, the robot erases the member from its cache, the face gallery and its
outbox, confirms, and the platform shows the confirmation and holds no event naming them.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import threading

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_srvs.srv import Trigger

from retail_common.catalog import load_catalog
from retail_interfaces.msg import CustomerEvent, DataUpdate
from retail_ros.event_sender import EventSender
from retail_ros.qos import latched
from rostest_support import console_script, stop_process, wait_for
from sync_support import ROBOT, free_port, guide_event, node_starter, provision_robot, robot_data, start_platform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def product(sku: str, price: str = '10') -> dict:
    return dict(sku=sku, name_zh=f'商品{sku}', name_en=f'Product {sku}', aliases='', category='snacks',
                category_zh='零食', brand='Acme', brand_zh='极美', price_cny=price, zone='aisle-1',
                stock='5', tags='', promotion='', promotion_en='')


class Probe(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('downlink_probe', **kwargs)
        self.lock = threading.Lock()
        self.updates: list[DataUpdate] = []
        self.agent_values: dict = {}
        self.create_subscription(DataUpdate, '/sync/data_updates', self._on_update, latched(10))
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 20)
        self.sync_now = self.create_client(Trigger, '/sync/sync_now')
        self.customers = self.create_publisher(CustomerEvent, '/perception/customer_events', 20)
        self.sender = EventSender(self, 'dialogue/manager', retry_s=0.5)

    def _on_update(self, msg: DataUpdate) -> None:
        with self.lock:
            self.updates.append(msg)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'sync: agent':
                with self.lock:
                    self.agent_values = {kv.key: kv.value for kv in status.values}

    def update(self, kind: str, after: int = 0) -> DataUpdate | None:
        with self.lock:
            return next((u for u in self.updates[after:] if u.kind == kind), None)

    def seen(self) -> int:
        with self.lock:
            return len(self.updates)

    def sync(self) -> None:
        assert self.sync_now.wait_for_service(timeout_sec=30), '/sync/sync_now not available'
        future = self.sync_now.call_async(Trigger.Request())
        wait_for(future.done, 20, 'sync_now to answer')


def gallery_with(folder, key: bytes, *members: str):
    from retail_perception.gallery import Gallery, GalleryStore
    store = GalleryStore(folder, key)
    gallery = Gallery()
    rng = np.random.default_rng(7)
    for member in members:
        base = rng.normal(size=128).astype(np.float32)
        gallery.enroll(member, member, False, 'consent-form-1', np.stack([base, base + 0.01]))
    store.save(gallery)
    return store


def outbox_customers(path) -> list[str]:
    with sqlite3.connect(f'file:{path}?mode=ro', uri=True) as db:
        return [r[0] for r in db.execute('SELECT customer FROM events UNION ALL '
                                         'SELECT customer FROM quarantine')]


def forget_status(db) -> dict:
    done = subprocess.run([console_script('retailbot'), 'platform', 'forget-member', '--db', str(db),
                           '--member-id', 'm-gone', '--status', '--json'],
                          capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def test_downlink_member_on_demand_and_forget_reach_every_part_of_the_robot(
        ros_env, ros_context, spin, processes, tmp_path):
    from retail_perception.gallery import new_key_text
    port = free_port()
    platform = start_platform(tmp_path / 'platform.sqlite3', port)
    token = provision_robot(platform)                          # ROBOT in store-test
    provision_robot(platform, 'robot-far', 'store-far')
    with platform.client() as admin:
        admin.put('/v1/products', json={'products': [product('P-1'), product('P-2'), product('P-3')]}
                  ).raise_for_status()
        for member, home, sku in (('m-home', 'store-test', 'P-1'), ('m-gone', 'store-test', 'P-2'),
                                  ('m-far', 'store-far', 'P-3')):
            admin.put(f'/v1/admin/members/{member}', json={
                'consent': True, 'home_store': home,
                'history': [{'sku': sku, 'ts': '2026-11-01', 'qty': 1, 'price_cny': 10}]}
            ).raise_for_status()
    key = new_key_text()
    (tmp_path / 'gallery.key').write_text(key)
    gallery = gallery_with(tmp_path / 'faces', bytes.fromhex(key), 'm-home', 'm-gone', 'm-far')
    data, logs = robot_data(tmp_path, token)
    outbox = data / 'sync' / 'outbox.sqlite3'
    start = node_starter(processes, ros_env, logs)

    def start_agent():
        return start('retail_sync_agent', '/sync', f'platform_url:={platform.url}', f'robot_id:={ROBOT}',
                     f'token_file:={data / "sync" / "token"}', f'outbox:={outbox}',
                     f'data_dir:={data / "platform"}', 'downlink_interval_s:=600.0',
                     'diagnostics_period_s:=0.5', 'backoff_max_s:=1.0', 'fleet_period_s:=0.0')
    start('retail_perception_faces', '/perception', f'gallery_dir:={tmp_path / "faces"}',
          f'key_file:={tmp_path / "gallery.key"}', 'detector:=hog')
    agent = start_agent()
    probe = Probe(context=ros_context)
    spin(probe)
    history = data / 'platform' / 'history.csv'

    # 1. The first answer is the store's snapshot: its products and the members it has a reason
    #    to know (home store), not the other store's member.
    first = wait_for(lambda: probe.update('catalog'), 60, 'the snapshot catalog DataUpdate')
    assert sorted(p.sku for p in load_catalog(first.path).products) == ['P-1', 'P-2', 'P-3']
    assert probe.update('histories')
    text = history.read_text()
    assert 'm-home,P-1' in text and 'm-gone,P-2' in text and 'm-far' not in text

    # 2. A store price change comes as a delta: only the catalog is rewritten.
    with platform.client() as admin:
        admin.put('/v1/stores/store-test/products/P-2', json={'price_cny': 7.5}).raise_for_status()
    mark = probe.seen()
    probe.sync()
    second = wait_for(lambda: probe.update('catalog', mark), 30, 'the delta catalog DataUpdate')
    assert int(second.version) > int(first.version)
    assert {p.sku: p.price_cny for p in load_catalog(second.path).products}['P-2'] == 7.5
    assert probe.update('histories', mark) is None, 'a price change rewrote the members'

    # 3. A consenting member of another store recognised here: fetched on demand and cached.
    wait_for(lambda: probe.customers.get_subscription_count() > 0, 30, 'the agent listening to faces')
    probe.customers.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=7,
                                          customer_id='m-far', display_name='m-far', confidence=0.9))
    wait_for(lambda: 'm-far,P-3' in history.read_text(), 30, "m-far's record fetched on demand")
    wait_for(lambda: probe.update('histories', mark), 10, 'the histories DataUpdate')

    # 4. Offline for a while: events naming members wait in the outbox; the agent restarts and
    #    keeps the version it held; a member is forgotten on the platform meanwhile.
    held = second.version
    stop_process(platform.process)
    for i in range(3):
        probe.sender.send(guide_event(i), customer='m-gone')
    for i in range(3, 5):
        probe.sender.send(guide_event(i), customer='m-home')
    wait_for(lambda: sorted(outbox_customers(outbox)) == ['m-gone'] * 3 + ['m-home'] * 2, 30,
             'five events waiting in the outbox')
    stop_process(agent)
    agent = start_agent()
    wait_for(lambda: probe.agent_values.get('downlink_error', '').startswith('platform unreachable')
             and probe.agent_values.get('downlink_version') == held, 60,
             'the restarted agent holding its version while the platform is away')
    assert 'm-far,P-3' in history.read_text(), 'the cached member is kept offline'
    asked = subprocess.run([console_script('retailbot'), 'platform', 'forget-member', '--db',
                            str(platform.db), '--member-id', 'm-gone', '--json'],
                           capture_output=True, text=True, timeout=60)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)['pending'] == [ROBOT]

    # 5. Back online: erased everywhere on the robot, then confirmed by id.
    platform = start_platform(platform.db, port)
    try:
        probe.sync()
        status = wait_for(lambda: (s := forget_status(platform.db)) and s['complete'] and s, 60,
                          'the robot confirming the forget')
        robot = next(r for r in status['robots'] if r['robot_id'] == ROBOT)
        assert robot['confirmed'] and 'gallery entry erased' in robot['detail']
        assert 'outbox event(s) removed' in robot['detail']
        assert set(gallery.load().members) == {'m-home', 'm-far'}
        assert 'm-gone' not in history.read_text()
        assert 'm-gone' not in outbox_customers(outbox)
        # the other member's events still arrive; none names the forgotten one
        wait_for(lambda: sum(e['customer'] == 'm-home' for e in platform.export()) == 2, 60,
                 "m-home's events uploaded")
        assert not [e for e in platform.export() if e['customer'] == 'm-gone']
        assert probe.agent_values.get('forget_pending') == '0' or wait_for(
            lambda: probe.agent_values.get('forget_pending') == '0', 10, 'no forget pending')
    finally:
        stop_process(platform.process)


def test_a_forget_the_faces_node_could_not_do_yet_is_done_once_it_is_up(
        ros_env, ros_context, spin, processes, tmp_path):
    """The platform asks to forget a member while the faces node is not up (a robot starting, the
    node restarting): the erasure is tried again within seconds, not at the next downlink check
    (ten minutes here), and confirmed once the face is erased."""
    from retail_perception.gallery import new_key_text
    port = free_port()
    platform = start_platform(tmp_path / 'platform.sqlite3', port)
    token = provision_robot(platform)
    with platform.client() as admin:
        admin.put('/v1/products', json={'products': [product('P-1')]}).raise_for_status()
        for member in ('m-home', 'm-gone'):
            admin.put(f'/v1/admin/members/{member}', json={
                'consent': True, 'home_store': 'store-test',
                'history': [{'sku': 'P-1', 'ts': '2026-11-01', 'qty': 1, 'price_cny': 10}]}).raise_for_status()
    key = new_key_text()
    (tmp_path / 'gallery.key').write_text(key)
    gallery = gallery_with(tmp_path / 'faces', bytes.fromhex(key), 'm-home', 'm-gone')
    data, logs = robot_data(tmp_path, token)
    start = node_starter(processes, ros_env, logs)
    try:
        start('retail_sync_agent', '/sync', f'platform_url:={platform.url}', f'robot_id:={ROBOT}',
              f'token_file:={data / "sync" / "token"}', f'outbox:={data / "sync" / "outbox.sqlite3"}',
              f'data_dir:={data / "platform"}', 'downlink_interval_s:=600.0', 'diagnostics_period_s:=0.5',
              'fleet_period_s:=0.0')
        probe = Probe(context=ros_context)
        spin(probe)
        wait_for(lambda: probe.update('catalog'), 60, 'the snapshot')
        asked = subprocess.run([console_script('retailbot'), 'platform', 'forget-member', '--db',
                                str(platform.db), '--member-id', 'm-gone', '--json'],
                               capture_output=True, text=True, timeout=60)
        assert asked.returncode == 0, asked.stderr
        probe.sync()
        wait_for(lambda: 'not answering' in probe.agent_values.get('downlink_error', ''), 60,
                 'the agent reporting the faces node not answering')
        assert not forget_status(platform.db).get('complete')
        start('retail_perception_faces', '/perception', f'gallery_dir:={tmp_path / "faces"}',
              f'key_file:={tmp_path / "gallery.key"}', 'detector:=hog')
        wait_for(lambda: (s := forget_status(platform.db)) and s['complete'], 90,
                 'the forget confirmed once the faces node is up, without a downlink check')
        assert set(gallery.load().members) == {'m-home'}
    finally:
        stop_process(platform.process)
