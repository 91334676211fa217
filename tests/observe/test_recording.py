"""The pure recording core: full .msg schemas, topic choice (never camera images), size bound, bad files."""
from __future__ import annotations

import io
import math

import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message
from sensor_msgs.msg import LaserScan
from tf2_msgs.msg import TFMessage
from geometry_msgs.msg import TransformStamped

from retail_observe.graph import definition_of
from retail_observe.msgdefs import DefinitionError, field_types, message_definition
from retail_observe.recording import (McapRecorder, RecordingError, check_duration, check_rate, choose_topics,
                                      read_messages, read_topics, replay_offset_s)


def test_definitions_carry_every_nested_type_once():
    text = definition_of('tf2_msgs/msg/TFMessage')
    first = [line for line in text.splitlines() if line.strip() and not line.startswith('#')][0]
    assert first.startswith('geometry_msgs/TransformStamped[] transforms')
    headers = [line for line in text.splitlines() if line.startswith('MSG: ')]
    assert headers == ['MSG: geometry_msgs/TransformStamped', 'MSG: std_msgs/Header',
                       'MSG: builtin_interfaces/Time', 'MSG: geometry_msgs/Transform',
                       'MSG: geometry_msgs/Vector3', 'MSG: geometry_msgs/Quaternion']


@pytest.mark.parametrize('line,found', [
    ('uint8 STOP=1', []), ('string NAME = "x"', []), ('float32[] ranges', []), ('string<=10 name', []),
    ('Header header', ['pkg/Header']), ('geometry_msgs/Pose[<=3] poses', ['geometry_msgs/Pose']),
    ('geometry_msgs/msg/Pose pose  # comment', ['geometry_msgs/Pose']), ('# only a comment', []),
])
def test_field_types_of_each_line_kind(line, found):
    assert field_types(line, 'pkg') == found


def test_a_missing_or_cyclic_definition_is_one_clear_error():
    with pytest.raises(DefinitionError, match='no definition of pkg/msg/B'):
        message_definition('pkg/msg/A', lambda p, n: 'B b\n' if n == 'A' else (_ for _ in ()).throw(OSError('gone')))
    cycle = message_definition('pkg/msg/A', lambda p, n: 'B b\n' if n == 'A' else 'A a\n')
    assert cycle == 'B b\n' + '=' * 80 + '\nMSG: pkg/B\nA a\n'
    with pytest.raises(DefinitionError, match='nest deeper'):
        message_definition('pkg/msg/A', lambda p, n: f'A{int(n[1:] or 0) + 1} x\n')
    with pytest.raises(DefinitionError, match='not a message type'):
        message_definition('LaserScan', lambda p, n: '')


GRAPH = [('/scan', ['sensor_msgs/msg/LaserScan']), ('/rosout', ['rcl_interfaces/msg/Log']),
         ('/camera/image', ['sensor_msgs/msg/Image']), ('/_hidden', ['std_msgs/msg/String']),
         ('/mixed', ['std_msgs/msg/String', 'std_msgs/msg/Int32']), ('/map', ['nav_msgs/msg/OccupancyGrid'])]


def test_topic_choice_leaves_out_images_housekeeping_and_mixed_types():
    choice = choose_topics(GRAPH, None)
    assert choice.record == {'/map': 'nav_msgs/msg/OccupancyGrid', '/scan': 'sensor_msgs/msg/LaserScan'}
    assert {topic for topic, _ in choice.skipped} == {'/camera/image', '/mixed'}
    asked = choose_topics(GRAPH, ['/rosout', '/later'])
    assert asked.record == {'/rosout': 'rcl_interfaces/msg/Log'} and asked.missing == ['/later']
    with pytest.raises(RecordingError, match='camera images are never recorded'):
        choose_topics(GRAPH, ['/camera/image'])


@pytest.mark.parametrize('bad', [0, -1, math.inf, math.nan, 1e9])
def test_bad_durations_and_rates_are_refused(bad):
    with pytest.raises(RecordingError, match='--duration'):
        check_duration(bad)
    with pytest.raises(RecordingError, match='--rate'):
        check_rate(bad if bad != 1e9 else 1e3)


def _scan(value: float) -> bytes:
    msg = LaserScan()
    msg.header.frame_id = 'laser'
    msg.ranges = [value, math.inf]
    return serialize_message(msg)


def test_a_recording_decodes_with_mcap_ros2_and_stops_at_its_size_bound(tmp_path):
    path = tmp_path / 'r.mcap'
    with open(path, 'wb') as stream:
        recorder = McapRecorder(stream, max_bytes=3 * len(_scan(1.0)))
        recorder.add_topic('/scan', 'sensor_msgs/msg/LaserScan', definition_of('sensor_msgs/msg/LaserScan'),
                           {'durability': 'volatile', 'reliability': 'best_effort'})
        tf = TFMessage(transforms=[TransformStamped(child_frame_id='base_link')])
        recorder.add_topic('/tf', 'tf2_msgs/msg/TFMessage', definition_of('tf2_msgs/msg/TFMessage'), {})
        assert recorder.write('/tf', serialize_message(tf), 5)
        written = [recorder.write('/scan', _scan(float(i)), 10 + i) for i in range(5)]
        recorder.finish()
    assert recorder.full and written.count(True) < 3
    with open(path, 'rb') as stream:
        decoded = [(c.topic, m) for _, c, _, m in make_reader(stream, decoder_factories=[DecoderFactory()])
                   .iter_decoded_messages(log_time_order=True)]
    assert decoded[0][0] == '/tf' and decoded[0][1].transforms[0].child_frame_id == 'base_link'
    assert [list(m.ranges)[0] for t, m in decoded if t == '/scan'] == [0.0, 1.0][:written.count(True)]
    assert math.isinf(decoded[1][1].ranges[1])
    topics = {t.topic: t for t in read_topics(path)}
    assert topics['/scan'].qos['reliability'] == 'best_effort'
    assert [m.log_time_ns for m in read_messages(path, ['/tf'])] == [5]


@pytest.mark.parametrize('content', [b'', b'garbage', b'not an mcap at all', b'\x89MCAP0\r\n' + b'\x00' * 40])
def test_a_corrupt_recording_is_one_line_error(tmp_path, content):
    path = tmp_path / 'bad.mcap'
    path.write_bytes(content)
    with pytest.raises(RecordingError, match='bad.mcap'):
        read_topics(path)
        list(read_messages(path))


def test_replay_offsets_scale_with_rate():
    assert replay_offset_s(3_000_000_000, 1_000_000_000, 2.0) == pytest.approx(1.0)
    assert replay_offset_s(0, 1, 1.0) == 0.0


def test_recorder_refuses_an_undeclared_topic():
    recorder = McapRecorder(io.BytesIO())
    with pytest.raises(RecordingError, match='/nope'):
        recorder.write('/nope', b'x', 1)
