"""The incident recorder on a real graph: a bumper press leaves an MCAP file of the seconds before
and after it, readable by the `mcap` reader and the `mcap-ros2-support` decoder."""
from __future__ import annotations

import math

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

from retail_interfaces.msg import BaseSafety
from retail_ros.qos import LATCHED
from rostest_support import wait_for


def test_a_bumper_press_is_written_with_the_seconds_around_it(ros_context, spin, tmp_path):
    import rclpy
    from retail_observe.incident_node import IncidentRecorderNode
    talker = rclpy.create_node('talker', context=ros_context)
    scan_pub = talker.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
    safety_pub = talker.create_publisher(BaseSafety, '/navigation/safety', LATCHED)
    talker.create_timer(0.05, lambda: scan_pub.publish(LaserScan(ranges=[2.0, math.inf])))
    recorder = IncidentRecorderNode(context=ros_context, parameter_overrides=[
        Parameter('data_dir', value=str(tmp_path)), Parameter('before_s', value=1.0),
        Parameter('after_s', value=1.0)])
    spin(talker, recorder)
    wait_for(lambda: len(recorder.buffer.ring) > 10, 20, 'scans in the ring')
    safety_pub.publish(BaseSafety(bumper_centre=True, latched=True, reason='bumper'))
    written = wait_for(lambda: recorder.written, 20, 'the incident file')
    assert written[0].name.endswith('-bumper.mcap') and written[0].parent == tmp_path / 'incidents'
    with open(written[0], 'rb') as stream:
        decoded = [(c.topic, m, msg.log_time) for _, c, msg, m in
                   make_reader(stream, decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
    scans = [(m, t) for topic, m, t in decoded if topic == '/scan']
    assert len(scans) > 10 and all(m.ranges[0] == 2.0 for m, _ in scans)
    assert (scans[-1][1] - scans[0][1]) / 1e9 <= 2.0 + 0.1
    assert any(topic == '/navigation/safety' and m.bumper_centre for topic, m, _ in decoded)
    assert not list((tmp_path / 'incidents').glob('*.part'))


def test_robot_launch_runs_the_incident_recorder_only_when_asked():
    from retail_ros.launch_file import load_launch
    from rostest_support import REPO
    for flag, expect in (('false', False), ('true', True)):
        nodes = {n.fully_qualified_name: n for n in load_launch(REPO / 'launch' / 'robot.launch.yaml',
                                                                 {'record_incidents': flag},
                                                                 find_share=lambda p: str(REPO)).nodes}
        assert ('/incident_recorder' in nodes) == expect
        if expect:
            assert nodes['/incident_recorder'].respawn
