"""The real dialogue manager node: a rolled-out `opening_hours` set live the way the sync agent does
(retail_sync.live_settings over the parameter services), checked by the node's ParamSpec (a bad
value refused whole, in one line), answered to a customer and reported on /diagnostics (which
the heartbeat carries to the platform)."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from retail_dialogue.manager_node import ManagerNode
from retail_interfaces.msg import RobotReply, Utterance
from retail_sync import live_settings
from retail_sync.agent_node import RclParamPort
from retail_sync.fleet import HOURS_STATUS, HeartbeatCore, Settings
from rostest_support import wait_for


def _hours_reported(statuses: list) -> list[dict]:
    return [{kv.key: kv.value for kv in s.values} for msg in statuses for s in msg.status if s.name == HOURS_STATUS]


def test_opening_hours_set_live_are_answered_and_reported(ros_context, spin):
    manager = ManagerNode(context=ros_context, namespace='dialogue')
    probe = Node('probe', context=ros_context)
    replies, diagnostics = [], []
    probe.create_subscription(RobotReply, '/dialogue/replies', replies.append, 10)
    probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 50)
    utterances = probe.create_publisher(Utterance, '/dialogue/utterances', 10)
    spin(manager, probe)
    port = RclParamPort(probe)
    assert wait_for(lambda: '/dialogue/manager' in port.running(), timeout=10)
    assert wait_for(lambda: _hours_reported(diagnostics), timeout=15)
    assert _hours_reported(diagnostics)[-1] == {'opening_hours': '10:00-22:00', 'source': 'store'}

    problem, skipped = live_settings.apply(live_settings.plan(Settings(opening_hours='10:00-01:00')), port)
    assert problem == '' and skipped == []
    assert wait_for(lambda: _hours_reported(diagnostics)[-1] == {'opening_hours': '10:00-01:00', 'source': 'live'},
                    timeout=10)
    # the heartbeat core reads that status as the sync agent does
    core = HeartbeatCore()
    for msg in diagnostics:
        for s in msg.status:
            core.on_status(s.name, 0, s.message, {kv.key: kv.value for kv in s.values}, 0.0)
    assert core.heartbeat(1.0).opening_hours == '10:00-01:00'

    # a bad value is refused whole by the node's ParamSpec rule, in one line; the hours stay
    reason = port.set_atomically('/dialogue/manager', {'opening_hours': '24:00-10:00'})
    assert "key 'opening_hours'" in reason and '24:00 is no time of day' in reason and '\n' not in reason
    assert port.get('/dialogue/manager', ['opening_hours']) == {'opening_hours': '10:00-01:00'}

    msg = Utterance(text='what time do you close', is_final=True, track_id=7)
    msg.header.frame_id = 'typed'
    utterances.publish(msg)
    assert wait_for(lambda: any(r.intent == 'ask_hours' for r in replies), timeout=10)
    said = next(r.text for r in replies if r.intent == 'ask_hours')
    assert '01:00 the next morning' in said and '10:00' in said, said
    probe.destroy_node()
    manager.destroy_node()
