"""/sync/agent in-process on real DDS with a real platform: events in, uploaded, data back."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from retail_interfaces.msg import DataUpdate, InteractionEvent
from retail_sync.agent_node import EVENTS_QOS, SyncAgent
from retail_sync.platform_app import export_events
from retail_sync.privacy import find_face_data
from rostest_support import stop_process, wait_for
from sync_support import ROBOT, TOKEN, free_port, start_platform

DATA = Path(__file__).resolve().parent.parent / 'data' / 'sync'


def test_agent_takes_events_into_the_outbox_uploads_them_and_brings_data_back(
        ros_context, spin, platform, tmp_path):
    agent = SyncAgent(context=ros_context, namespace='sync', parameter_overrides=[
        Parameter('robot_id', value=ROBOT), Parameter('platform_url', value=platform.url),
        Parameter('token', value=platform.token),
        Parameter('outbox', value=str(tmp_path / 'outbox.sqlite3')),
        Parameter('data_dir', value=str(tmp_path / 'data')),
        Parameter('batch_delay_s', value=0.2), Parameter('downlink_interval_s', value=600.0),
        Parameter('diagnostics_period_s', value=0.2)])
    peer = Node('store_day', context=ros_context)
    publisher = peer.create_publisher(InteractionEvent, '/sync/interaction_events', EVENTS_QOS)
    updates: list[DataUpdate] = []
    diagnostics: list[DiagnosticArray] = []
    peer.create_subscription(DataUpdate, '/sync/data_updates', updates.append, 10)
    peer.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    sync_now = peer.create_client(Trigger, '/sync/sync_now')
    spin(agent, peer)
    wait_for(lambda: publisher.get_subscription_count() > 0, what='the agent to subscribe')

    ids = [str(uuid.uuid4()) for _ in range(200)]
    for i, event_id in enumerate(ids):
        publisher.publish(InteractionEvent(
            type='dialogue_turn', customer_pseudonym=f'p-{i % 7}', event_id=event_id,
            source='dialogue/manager',
            payload_json=json.dumps({'i': i, 'text': '请问 洗衣机 在哪里'}, ensure_ascii=False)))
    publisher.publish(InteractionEvent(type='greeting', event_id='face-1', source='perception/faces',
                                       payload_json=json.dumps({'embedding': [0.01] * 128})))
    publisher.publish(InteractionEvent(type='guide', source='navigation/guide',
                                       payload_json='{"zone": "kitchen"}'))   # id filled in

    def stored():
        return list(export_events(platform.db, ROBOT))
    events = wait_for(lambda: len(stored()) >= 201 and stored(), timeout=30,
                      what='201 events uploaded to the platform')
    assert len(events) == 201
    by_id = {event['event_id']: event for event in events}
    assert set(ids) <= set(by_id) and 'face-1' not in by_id
    assert by_id[ids[5]]['data'] == {'i': 5, 'text': '请问 洗衣机 在哪里',
                                     'source': 'dialogue/manager'}
    assert by_id[ids[5]]['customer'] == 'p-5'
    assert [by_id[i]['data']['i'] for i in ids] == list(range(200))       # in order
    assert not [e for e in events if find_face_data(e['data'])]
    assert agent.outbox.pending() == 0

    def agent_status():
        for array in diagnostics:
            for status in array.status:
                if status.name == 'sync: agent':
                    values = {kv.key: kv.value for kv in status.values}
                    if values['backlog'] == '0' and values['last_success_age_s'] != 'never':
                        return values
        return None
    values = wait_for(agent_status, what='diagnostics with an empty backlog')
    assert values['quarantined'] == '0'

    # Data back: a catalog uploaded to the platform arrives on demand (sync_now).
    with platform.client() as admin:
        admin.put('/v1/admin/catalog', content=(DATA / 'catalog_v1.csv').read_bytes()).raise_for_status()
    assert sync_now.wait_for_service(timeout_sec=5)
    future = sync_now.call_async(Trigger.Request())
    wait_for(future.done, what='sync_now to answer')
    assert future.result().success
    update = wait_for(lambda: next((u for u in updates if u.kind == 'catalog'), None),
                      timeout=15, what='a catalog DataUpdate')
    assert Path(update.path) == tmp_path / 'data' / 'catalog.csv' and update.version
    assert Path(update.path).read_bytes() == (DATA / 'catalog_v1.csv').read_bytes()


def test_agent_keeps_events_while_the_platform_is_away_and_delivers_when_it_is_back(
        ros_context, spin, tmp_path):
    port = free_port()
    agent = SyncAgent(context=ros_context, namespace='sync', parameter_overrides=[
        Parameter('robot_id', value=ROBOT), Parameter('platform_url', value=f'http://127.0.0.1:{port}'),
        Parameter('token', value=TOKEN), Parameter('outbox', value=str(tmp_path / 'outbox.sqlite3')),
        Parameter('data_dir', value=str(tmp_path / 'data')), Parameter('batch_delay_s', value=0.1),
        Parameter('backoff_max_s', value=0.5), Parameter('diagnostics_period_s', value=0.2)])
    peer = Node('store_day', context=ros_context)
    publisher = peer.create_publisher(InteractionEvent, '/sync/interaction_events', EVENTS_QOS)
    diagnostics: list[DiagnosticArray] = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    spin(agent, peer)
    wait_for(lambda: publisher.get_subscription_count() > 0, what='the agent to subscribe')
    for i in range(50):
        publisher.publish(InteractionEvent(type='guide', source='navigation/guide',
                                           payload_json=json.dumps({'i': i, 'zone': 'kitchen'})))
    wait_for(lambda: agent.outbox.pending() == 50, what='50 events kept in the outbox')

    def warned():
        return any(s.name == 'sync: agent' and s.level == b'\x01' and 'platform away' in s.message
                   for array in diagnostics for s in array.status)
    wait_for(warned, what='a WARN diagnostic while the platform is away')
    platform = start_platform(tmp_path / 'platform.sqlite3', port)
    try:
        wait_for(lambda: len(list(export_events(platform.db, ROBOT))) == 50, timeout=20,
                 what='the kept events delivered once the platform is back')
        assert [e['data']['i'] for e in export_events(platform.db, ROBOT)] == list(range(50))
        wait_for(lambda: agent.outbox.pending() == 0, what='the outbox to empty')
    finally:
        stop_process(platform.process)
