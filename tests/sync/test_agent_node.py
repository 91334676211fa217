"""/sync/agent in-process on real DDS with a real platform: events in (only through RecordEvents),
uploaded without gaps in the per-robot sequence, data back; a damaged outbox set aside while the
agent keeps working."""
from __future__ import annotations

import json
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from retail_ros.event_sender import EventSender
from retail_interfaces.msg import DataUpdate, InteractionEvent
from retail_interfaces.srv import RecordEvents
from retail_sync.agent_node import SyncAgent
from retail_platform.app import export_events
from retail_sync.privacy import find_face_data
from rostest_support import stop_process, wait_for
from retail_common.catalog import load_catalog
from sync_support import (ROBOT, TOKEN, catalog_rows, free_port, guide_event, number, provision_robot,
                          start_platform, turn_event)

DATA = Path(__file__).resolve().parent.parent / 'data' / 'sync'


def _agent(ros_context, tmp_path, url, **extra):
    params = dict(robot_id=ROBOT, platform_url=url, token=TOKEN,
                  outbox=str(tmp_path / 'outbox.sqlite3'), data_dir=str(tmp_path / 'data'),
                  batch_delay_s=0.2, downlink_interval_s=600.0, diagnostics_period_s=0.2)
    params.update(extra)
    return SyncAgent(context=ros_context, namespace='sync',
                     parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _peer(ros_context, spin, agent, source: str):
    """A node beside the agent: an EventSender as `source` and the /diagnostics it hears."""
    peer = Node('store_day', context=ros_context)
    sender = EventSender(peer, source, retry_s=0.2)
    diagnostics: list[DiagnosticArray] = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    spin(agent, peer)
    return sender, diagnostics


def _call(client, events):
    future = client.call_async(RecordEvents.Request(events=events))
    wait_for(future.done, what='RecordEvents to answer')
    return future.result()


def _agent_status(diagnostics, predicate):
    for array in reversed(diagnostics):
        for status in array.status:
            if status.name == 'sync: agent':
                values = {kv.key: kv.value for kv in status.values}
                if predicate(status, values):
                    return status, values
    return None


def test_only_recorded_events_are_stored_uploaded_without_gaps_and_data_comes_back(
        ros_context, spin, platform, tmp_path):
    agent = _agent(ros_context, tmp_path, platform.url)
    peer = Node('store_day', context=ros_context)
    sender = EventSender(peer, 'dialogue/manager', retry_s=0.2)
    observer = peer.create_publisher(InteractionEvent, '/sync/interaction_events', 10)
    record = peer.create_client(RecordEvents, '/sync/record_events')
    updates: list[DataUpdate] = []
    diagnostics: list[DiagnosticArray] = []
    peer.create_subscription(DataUpdate, '/sync/data_updates', updates.append, 10)
    peer.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    sync_now = peer.create_client(Trigger, '/sync/sync_now')
    spin(agent, peer)
    assert record.wait_for_service(timeout_sec=10)

    ids = [sender.send(turn_event(i, '请问 洗衣机 在哪里'), customer=f'p-{i % 7}')
           for i in range(150)]
    # Topic-only events are for observers: never stored.
    for i in range(5):
        observer.publish(InteractionEvent(type='guide', source='navigation/guide',
                                          event_id=f'topic-{i}', payload_json='{"zone": "tv", "status": "started"}'))
    # A lost answer: the same events asked twice are stored once and spend no sequence number.
    repeat = [InteractionEvent(type='guide', source='navigation/guide', event_id=f'rep-{i}',
                               payload_json=json.dumps({'zone': 'tv', 'status': 'started', 'stops_visited': i})) for i in range(20)]
    for _ in range(3):
        answer = _call(record, repeat)
        assert sorted(answer.stored_ids) == sorted(m.event_id for m in repeat) and not answer.refused
    # Face data and a reused key with other content are refused, with the reason.
    answer = _call(record, [InteractionEvent(type='greeting', event_id='face-1',
                                             payload_json=json.dumps({'embedding': [0.01] * 128})),
                            InteractionEvent(type='guide', event_id='rep-0',
                                             payload_json='{"zone": "tv", "status": "started", "stops_visited": 999}')])
    assert not answer.stored_ids and [r.split(':')[0] for r in answer.refused] == ['face-1', 'rep-0']
    ids += [sender.send(guide_event(i)) for i in range(150, 300)]

    def stored():
        return list(export_events(platform.db, ROBOT))
    events = wait_for(lambda: len(stored()) >= 320 and stored(), timeout=60,
                      what='320 events uploaded to the platform')
    assert len(events) == 320
    by_id = {event['event_id']: event for event in events}
    assert set(ids) <= set(by_id) and {f'rep-{i}' for i in range(20)} <= set(by_id)
    assert not {'face-1', *(f'topic-{i}' for i in range(5))} & set(by_id)
    seqs = [event['seq'] for event in events]
    assert seqs == list(range(seqs[0], seqs[0] + 320)), 'gaps or doubles in the per-robot seq'
    assert by_id[ids[5]]['data'] == {**turn_event(5, '请问 洗衣机 在哪里').to_data(), 'source': 'dialogue/manager'}
    assert by_id[ids[5]]['customer'] == 'p-5'
    assert not [e for e in events if find_face_data(e['data'])]
    wait_for(lambda: agent.outbox.pending() == 0, what='the outbox to empty')
    _, values = wait_for(lambda: _agent_status(diagnostics, lambda s, v: v.get('backlog') == '0'
                                               and v['last_success_age_s'] != 'never'),
                         what='diagnostics with an empty backlog')
    assert values['quarantined'] == '0'

    # Data back: the store's products put on the platform arrive on demand (sync_now).
    provision_robot(platform)
    rows = catalog_rows(DATA / 'catalog_v1.csv')
    with platform.client() as admin:
        admin.put('/v1/products', json={'products': rows}).raise_for_status()
    assert sync_now.wait_for_service(timeout_sec=5)
    future = sync_now.call_async(Trigger.Request())
    wait_for(future.done, what='sync_now to answer')
    assert future.result().success
    update = wait_for(lambda: next((u for u in updates if u.kind == 'catalog'), None),
                      timeout=15, what='a catalog DataUpdate')
    assert Path(update.path) == tmp_path / 'data' / 'catalog.csv' and update.version
    catalog = load_catalog(update.path)
    assert {p.sku: p.price_cny for p in catalog.products} == {
        r['sku']: float(r['price_cny']) for r in rows} and not catalog.issues


def test_agent_keeps_events_while_the_platform_is_away_and_delivers_when_it_is_back(
        ros_context, spin, tmp_path):
    port = free_port()
    agent = _agent(ros_context, tmp_path, f'http://127.0.0.1:{port}', backoff_max_s=0.5)
    sender, diagnostics = _peer(ros_context, spin, agent, 'navigation/guide')
    for i in range(50):
        sender.send(guide_event(i))
    wait_for(lambda: agent.outbox is not None and agent.outbox.pending() == 50,
             what='50 events kept in the outbox')
    wait_for(lambda: _agent_status(diagnostics, lambda s, v: s.level == b'\x01'
                                   and 'platform away' in s.message),
             what='a WARN diagnostic while the platform is away')
    platform = start_platform(tmp_path / 'platform.sqlite3', port)
    try:
        wait_for(lambda: len(list(export_events(platform.db, ROBOT))) == 50, timeout=20,
                 what='the kept events delivered once the platform is back')
        assert [number(e['data']) for e in export_events(platform.db, ROBOT)] == list(range(50))
        wait_for(lambda: agent.outbox.pending() == 0, what='the outbox to empty')
    finally:
        stop_process(platform.process)


def test_a_damaged_outbox_is_set_aside_and_the_agent_keeps_working(ros_context, spin, platform,
                                                                  tmp_path):
    damaged = tmp_path / 'outbox.sqlite3'
    damaged.write_bytes(b'\x00garbage after a power cut' * 1000)
    agent = _agent(ros_context, tmp_path, platform.url)
    sender, diagnostics = _peer(ros_context, spin, agent, 'dialogue/manager')
    status, values = wait_for(lambda: _agent_status(diagnostics, lambda s, v: s.level == b'\x02'),
                              what='an ERROR diagnostic about the outbox')
    assert 'damaged' in status.message and 'set aside' in status.message
    [aside] = [p for p in tmp_path.iterdir() if '.damaged-' in p.name and not p.name.endswith(('-wal', '-shm'))]
    assert aside.read_bytes().startswith(b'\x00garbage')
    assert str(aside) in status.message
    for i in range(10):
        sender.send(turn_event(i))
    wait_for(lambda: len(list(export_events(platform.db, ROBOT))) == 10, timeout=20,
             what='new events stored in the fresh outbox and uploaded')
    assert not sender.pending


def test_a_full_disk_loses_nothing_and_says_disk_full(ros_context, spin, tmp_path):
    """With the outbox's file full, RecordEvents acknowledges nothing (the sender keeps the
    events) and diagnostics say ERROR "disk full"; once there is room every event is stored."""
    agent = _agent(ros_context, tmp_path, f'http://127.0.0.1:{free_port()}')
    sender, diagnostics = _peer(ros_context, spin, agent, 'dialogue/manager')
    db = agent.outbox._db
    db.execute(f'PRAGMA max_page_count = {db.execute("PRAGMA page_count").fetchone()[0] + 1}')
    for i in range(30):
        sender.send(turn_event(i, '洗衣机 在哪里 ' * 60, products=40))
    status, _ = wait_for(lambda: _agent_status(diagnostics, lambda s, v: s.level == b'\x02'),
                         what='an ERROR diagnostic about the full disk')
    assert 'disk full' in status.message
    assert len(sender.pending) > 0
    db.execute('PRAGMA max_page_count = 1073741823')                # room again
    wait_for(lambda: not sender.pending, 20, 'every kept event stored once there is room')
    assert sorted(number(json.loads(e.data)) for e in agent.outbox.read_batch(100, 1 << 30)) == list(range(30))
    wait_for(lambda: _agent_status(diagnostics, lambda s, v: 'disk full' not in s.message
                                   and v.get('outbox_error') == ''), what='the ERROR to clear')


def test_sequence_numbers_refused_as_reused_are_kept_and_an_error(ros_context, spin, tmp_path):
    """A platform answering `seq_reused` (another outbox of this robot id already sent those
    numbers): the events are kept in quarantine and diagnostics say ERROR, with the count."""
    from test_upload_acks import ScriptedPlatform

    def answer(events, stored):
        return 200, {}, {'acked': 0, 'results': [
            {'event_id': e['event_id'], 'status': 'rejected', 'reason': 'seq_reused'}
            for e in events]}
    server = ScriptedPlatform(answer)
    try:
        agent = _agent(ros_context, tmp_path, server.url)
        sender, diagnostics = _peer(ros_context, spin, agent, 'dialogue/manager')
        for i in range(3):
            sender.send(turn_event(i))
        status, values = wait_for(
            lambda: _agent_status(diagnostics, lambda s, v: s.level == b'\x02'
                                  and v.get('seq_reused') == '3'),
            what='an ERROR diagnostic about reused sequence numbers')
        assert 'sequence numbers were already used' in status.message
        assert values['quarantined'] == '3' and values['backlog'] == '0'
        assert {body['stream_id'] for _, body in server.requests} == {values['stream_id']}
        wait_for(lambda: not sender.pending, what='every event acknowledged to its sender')
    finally:
        server.close()


def test_a_token_revoked_mid_backlog_resumes_with_the_new_token_without_a_sync_now(
        ros_context, spin, platform, tmp_path):
    """Session 13: after a 401/403/404 the agent stopped uploading until someone called
    /sync/sync_now; a technician who installed a new token file (or a proxy that refused during
    a deploy) left the robot's backlog growing until its limits dropped events. Now it reads the
    token file again and retries every `refused_retry_s`."""
    from retail_platform.storage import Storage
    token_file = tmp_path / 'token'
    token_file.write_text(provision_robot(platform) + '\n')
    agent = _agent(ros_context, tmp_path, platform.url, token='', token_file=str(token_file),
                   refused_retry_s=1.0, backoff_max_s=0.5)
    sender, diagnostics = _peer(ros_context, spin, agent, 'navigation/guide')
    for i in range(20):
        sender.send(guide_event(i))
    wait_for(lambda: len(list(export_events(platform.db, ROBOT))) == 20, timeout=30,
             what='the first 20 events uploaded')
    storage = Storage(str(platform.db))
    try:
        assert storage.revoke_robot(ROBOT) == 1
        for i in range(20, 40):
            sender.send(guide_event(i))
        wait_for(lambda: _agent_status(diagnostics, lambda s, v: s.level == b'\x02'
                                       and 'uploads stopped' in s.message),
                 timeout=30, what='an ERROR: the platform refused the token')
        assert agent.outbox.pending() == 20
        token_file.write_text(storage.issue_robot_token(ROBOT, 'store-test', replace=True) + '\n')
    finally:
        storage.close()
    wait_for(lambda: len(list(export_events(platform.db, ROBOT))) == 40, timeout=30,
             what='the backlog uploaded with the new token (no sync_now)')
    assert [number(e['data']) for e in export_events(platform.db, ROBOT)] == list(range(40))
