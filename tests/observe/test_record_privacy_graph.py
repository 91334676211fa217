"""On a real graph, both ways a recording is made (`retailbot record`, the incident recorder whose files
are uploaded to the platform) write a greeted member pseudonymously: neither her name, her words nor
her member id (an alias of that file only), so forgetting her has nothing to find in recordings."""
from __future__ import annotations

import json
import subprocess

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.parameter import Parameter

from retail_common import names
from retail_interfaces.msg import BaseSafety, CustomerEvent, RobotReply
from retail_ros.qos import LATCHED, REPLIES_QOS
from rostest_support import console_script, wait_for

NAME, MEMBER = '王芳', 'm-000002'
GREETING = '王女士您好，欢迎回来'


def _member_talker(node):
    events = node.create_publisher(CustomerEvent, names.CUSTOMER_EVENTS, 10)
    replies = node.create_publisher(RobotReply, names.REPLIES, REPLIES_QOS)

    def tick():
        events.publish(CustomerEvent(kind=CustomerEvent.IDENTIFIED, track_id=7, customer_id=MEMBER,
                                     display_name=NAME, vip=True, confidence=0.9))
        replies.publish(RobotReply(text=GREETING, language='zh', intent='greet', track_id=7))
    node.create_timer(0.1, tick)


def _check(path):
    with open(path, 'rb') as stream:
        decoded = [(channel.topic, msg) for _, channel, _, msg in
                   make_reader(stream, decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
    events = [msg for topic, msg in decoded if topic == names.CUSTOMER_EVENTS]
    replies = [msg for topic, msg in decoded if topic == names.REPLIES]
    assert events and replies
    assert {(m.customer_id, m.display_name, m.track_id) for m in events} == {('alias-1', '', 7)}
    assert {(m.text, m.intent) for m in replies} == {(f'[{len(GREETING)} characters]', 'greet')}
    assert not any(NAME in repr(msg) or '王' in repr(msg) or MEMBER in repr(msg) for _, msg in decoded)


def test_retailbot_record_writes_a_greeted_member_pseudonymously(ros_context, spin, ros_env, tmp_path):
    import rclpy
    talker = rclpy.create_node('talker', context=ros_context)
    _member_talker(talker)
    spin(talker)
    out = tmp_path / 'member.mcap'
    done = subprocess.run([console_script('retailbot'), 'record', '--out', str(out), '--duration', '5',
                           '--topics', names.CUSTOMER_EVENTS, names.REPLIES, '--json'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)['topics'][names.REPLIES] > 0
    _check(out)


def test_an_incident_file_holds_a_greeted_member_pseudonymously(ros_context, spin, tmp_path):
    import rclpy
    from retail_observe.incident_node import IncidentRecorderNode
    talker = rclpy.create_node('talker', context=ros_context)
    _member_talker(talker)
    safety = talker.create_publisher(BaseSafety, names.SAFETY, LATCHED)
    recorder = IncidentRecorderNode(context=ros_context, parameter_overrides=[
        Parameter('data_dir', value=str(tmp_path)), Parameter('before_s', value=1.0),
        Parameter('after_s', value=1.0)])
    spin(talker, recorder)
    wait_for(lambda: sum(topic == names.REPLIES for topic, *_ in recorder.buffer.ring) > 3, 20,
             'greetings in the ring')
    safety.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    written = wait_for(lambda: recorder.written, 20, 'the incident file')
    _check(written[0])


def test_an_undecodable_member_message_is_left_out_and_said(ros_context, spin, ros_env, tmp_path):
    import rclpy
    from rclpy.serialization import serialize_message
    talker = rclpy.create_node('talker', context=ros_context)
    events = talker.create_publisher(CustomerEvent, names.CUSTOMER_EVENTS, 10)
    good = serialize_message(CustomerEvent(customer_id=MEMBER, display_name=NAME))
    hostile = good[:12] + b'\xff\xff\xff\x7f' + NAME.encode()      # a string length far past the end
    talker.create_timer(0.1, lambda: events.publish(hostile))        # raw CDR, as a broken node might send
    spin(talker)
    out = tmp_path / 'hostile.mcap'
    done = subprocess.run([console_script('retailbot'), 'record', '--out', str(out), '--duration', '4',
                           '--topics', names.CUSTOMER_EVENTS, '--json'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary['topics'][names.CUSTOMER_EVENTS] == 0
    assert any(note.startswith(f'{names.CUSTOMER_EVENTS}: ') and 'could not be decoded to pseudonymise' in note
               for note in summary['notes']), summary['notes']
    with open(out, 'rb') as stream:
        assert not list(make_reader(stream).iter_messages())
