"""EventSender: events a node produces while the sync agent is away reach the outbox when it
comes (the agent started late, restarted, killed), each exactly once."""
from __future__ import annotations

from rclpy.node import Node
from rclpy.parameter import Parameter

from retail_sync.agent_node import SyncAgent
from retail_common.event_sender import EventSender
from retail_sync.outbox import Outbox
from rostest_support import wait_for


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
        sender.send('dialogue_turn', {'turn': i, 'text': '电视在哪里'}, customer=f'p-{i}')
    assert len(sender.pending) == 5                        # nobody to acknowledge them yet

    agent = _agent(ros_context, outbox, tmp_path)
    spin(agent)
    wait_for(lambda: not sender.pending, 20, 'the agent acknowledging every waiting event')
    sender.send('guide', {'zone': 'kitchen'})
    wait_for(lambda: not sender.pending, 10, 'the next event acknowledged')
    stored = _stored(outbox)
    assert [s[0] for s in stored] == ['dialogue_turn'] * 5 + ['guide']
    assert stored[0][1] == 'p-0' and '"turn":0' in stored[0][2].replace(' ', '') and '电视在哪里' in stored[0][2]

    agent.destroy_node()                                    # the agent stops (crash, restart)
    wait_for(lambda: not sender.client.service_is_ready(), 10, 'the agent gone')
    sender.send('call_staff', {'reason': 'help'})
    assert sender.pending
    agent = _agent(ros_context, outbox, tmp_path)
    spin(agent)
    wait_for(lambda: not sender.pending, 20, 'the restarted agent acknowledging the event')
    assert [s[0] for s in _stored(outbox)] == ['dialogue_turn'] * 5 + ['guide', 'call_staff']


def test_a_full_queue_drops_the_oldest_and_says_so(ros_context):
    node = Node('manager', namespace='dialogue', context=ros_context)
    sender = EventSender(node, 'dialogue/manager', max_pending=3)
    ids = [sender.send('dialogue_turn', {'turn': i}) for i in range(5)]
    assert list(sender.pending) == ids[2:] and sender.dropped == 2
    node.destroy_node()
