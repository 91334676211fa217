"""EventSender: events a node produces while the sync agent is away reach the outbox when it
comes (the agent started late, restarted, killed), each exactly once."""
from __future__ import annotations

from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_sync.agent_node import SyncAgent
from retail_common.event_sender import EventSender
from retail_sync.outbox import Outbox
from retail_common.events import GuideMission, StaffRequest
from rostest_support import wait_for
from sync_support import turn_event


def _agent(ros_context, outbox, tmp_path):
    return SyncAgent(context=ros_context, namespace='sync', parameter_overrides=[
        Parameter('platform_url', value='http://127.0.0.1:9'),      # platform away: events stay
        Parameter('outbox', value=str(outbox)), Parameter('data_dir', value=str(tmp_path / 'data')),
        Parameter('downlink_interval_s', value=600.0)])


def _stored(path):
    outbox = Outbox(path)
    try:
        return [(e.type, e.customer, e.data) for e in outbox.read_batch(1000)]
    finally:
        outbox.close()


def test_events_sent_while_the_agent_is_away_reach_the_outbox_once_it_is_back(ros_context, spin, tmp_path):
    outbox = tmp_path / 'outbox.sqlite3'
    node = Node('manager', namespace='dialogue', context=ros_context)
    sender = EventSender(node, 'dialogue/manager', retry_s=0.2)
    spin(node)
    for i in range(5):
        sender.send(turn_event(i, '电视在哪里'), customer=f'p-{i}')
    assert len(sender.pending) == 5                        # nobody to acknowledge them yet

    agent = _agent(ros_context, outbox, tmp_path)
    spin(agent)
    wait_for(lambda: not sender.pending, 20, 'the agent acknowledging every waiting event')
    sender.send(GuideMission(zone='kitchen', status='started'))
    wait_for(lambda: not sender.pending, 10, 'the next event acknowledged')
    stored = _stored(outbox)
    assert [s[0] for s in stored] == ['dialogue_turn'] * 5 + ['guide']
    assert stored[0][1] == 'p-0' and '"sku":"P-0"' in stored[0][2].replace(' ', '') and '电视在哪里' in stored[0][2]

    agent.destroy_node()                                    # the agent stops (crash, restart)
    wait_for(lambda: not sender.client.service_is_ready(), 10, 'the agent gone')
    sender.send(StaffRequest(reason='help'))
    assert sender.pending
    agent = _agent(ros_context, outbox, tmp_path)
    spin(agent)
    wait_for(lambda: not sender.pending, 20, 'the restarted agent acknowledging the event')
    assert [s[0] for s in _stored(outbox)] == ['dialogue_turn'] * 5 + ['guide', 'staff_request']


def test_a_full_queue_drops_the_oldest_and_says_so(ros_context):
    node = Node('manager', namespace='dialogue', context=ros_context)
    sender = EventSender(node, 'dialogue/manager', max_pending=3)
    ids = [sender.send(turn_event(i)) for i in range(5)]
    assert list(sender.pending) == ids[2:] and sender.dropped == 2
    node.destroy_node()


def test_an_agent_that_never_answers_then_dies_neither_deadlocks_nor_loses_events(
        ros_context, ros_env, spin, processes, tmp_path):
    """The sender's request times out while the agent hangs (the stale call is cancelled),
    the agent is killed, a new one comes: every event is stored once, and the sender's node
    still stops at once on SIGTERM."""
    import signal
    import subprocess
    import sys
    import threading
    from pathlib import Path

    peers = str(Path(__file__).with_name('ros_peers.py'))
    hung = processes([sys.executable, peers, 'hung-agent'], env=ros_env, stdout=subprocess.PIPE,
                     text=True)
    sender = processes([sys.executable, peers, 'sender', '40'], env=ros_env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sender_lines: list[str] = []
    threading.Thread(target=lambda: sender_lines.extend(iter(sender.stdout.readline, '')),
                     daemon=True).start()
    assert 'request' in hung.stdout.readline()              # the agent took the request...
    wait_for(lambda: sum(l.startswith('pending 40') for l in sender_lines) >= 6, 20,
             'the sender to keep waiting past its answer timeout')
    hung.kill()                                             # ...and dies without answering
    hung.wait()
    wait_for(lambda: sum(l.startswith('pending 40') for l in sender_lines) >= 12, 20,
             'the sender to carry on after the agent died')

    outbox = tmp_path / 'outbox.sqlite3'
    agent = _agent(ros_context, outbox, tmp_path)
    spin(agent)
    wait_for(lambda: 'pending 0\n' in sender_lines[-3:], 30, 'every event acknowledged')
    stored = _stored(outbox)
    assert sorted(int(s[1].removeprefix('p-')) for s in stored) == list(range(40))
    sender.send_signal(signal.SIGTERM)
    assert sender.wait(timeout=15) == 0, ''.join(sender_lines[-20:])
