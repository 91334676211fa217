"""`retailbot record` and `retailbot replay` on a real graph: what is recorded decodes with the `mcap`
reader and the `mcap-ros2-support` decoder unchanged, and a replay arrives on a subscriber."""
from __future__ import annotations

import json
import math
import subprocess

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, LaserScan

from retail_ros.qos import LATCHED
from rostest_support import console_script, wait_for


def _publishers(node):
    scan_pub = node.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
    map_pub = node.create_publisher(OccupancyGrid, '/map', LATCHED)
    image_pub = node.create_publisher(Image, '/camera/image_raw', 10)
    grid = OccupancyGrid()
    grid.header.frame_id = 'map'
    grid.info.width, grid.info.height, grid.info.resolution = 2, 1, 0.05
    grid.data = [0, 100]
    map_pub.publish(grid)
    count = [0]

    def tick():
        count[0] += 1
        scan = LaserScan()
        scan.header.frame_id = 'laser'
        scan.header.stamp = node.get_clock().now().to_msg()
        scan.ranges = [float(count[0]), math.inf]
        scan_pub.publish(scan)
        image_pub.publish(Image(height=1, width=1, encoding='mono8', step=1, data=[7]))
    node.create_timer(0.05, tick)


def test_record_then_replay_a_real_graph(ros_context, spin, ros_env, tmp_path):
    import rclpy
    import rclpy.parameter
    talker = rclpy.create_node('talker', context=ros_context)
    _publishers(talker)
    spin(talker)
    out = tmp_path / 'graph.mcap'
    done = subprocess.run([console_script('retailbot'), 'record', '--out', str(out), '--duration', '6', '--json'],
                          env=ros_env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary['topics']['/scan'] > 5 and summary['topics']['/map'] == 1
    assert '/camera/image_raw' not in summary['topics']
    assert any('/camera/image_raw' in note and 'never recorded' in note for note in summary['notes'])

    with open(out, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        decoded = [(channel.topic, schema.name, msg) for schema, channel, _, msg in reader.iter_decoded_messages()]
    grids = [msg for topic, _, msg in decoded if topic == '/map']
    assert list(grids[0].data) == [0, 100] and grids[0].info.width == 2
    scans = [msg for topic, name, msg in decoded if topic == '/scan' and name == 'sensor_msgs/msg/LaserScan']
    firsts = [s.ranges[0] for s in scans]
    assert firsts == sorted(firsts) and all(math.isinf(s.ranges[1]) for s in scans)
    talker.destroy_node()

    received: list[float] = []
    maps: list[list[int]] = []
    listener = rclpy.create_node('listener', context=ros_context)
    listener.create_subscription(LaserScan, '/scan', lambda m: received.append(m.ranges[0]), qos_profile_sensor_data)
    listener.create_subscription(OccupancyGrid, '/map', lambda m: maps.append(list(m.data)), LATCHED)
    spin(listener)
    sim = rclpy.create_node('sim_time_node', context=ros_context,
                            parameter_overrides=[rclpy.parameter.Parameter('use_sim_time', value=True)])
    spin(sim)
    # rate 2: 3 s of scans, most of them after the listener's discovery even under load (at rate 4
    # a loaded CI machine's discovery took most of the 1.5 s the scans lasted)
    replay = subprocess.run([console_script('retailbot'), 'replay', str(out), '--rate', '2', '--clock', '--json'],
                            env=ros_env, capture_output=True, text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert json.loads(replay.stdout)['published'] == len(decoded)
    wait_for(lambda: maps and all(m == [0, 100] for m in maps) and len(received) >= len(scans) // 2, 10,
             f'the replayed map and scans ({len(maps)} maps, {len(received)} of {len(scans)} scans)')
    assert received == sorted(received) and set(received) <= set(firsts)
    # --clock: a use_sim_time node's clock is the recording's time (seconds ago), not now
    first_s = scans[0].header.stamp.sec + scans[0].header.stamp.nanosec / 1e9
    last_s = scans[-1].header.stamp.sec + scans[-1].header.stamp.nanosec / 1e9
    wait_for(lambda: first_s <= sim.get_clock().now().nanoseconds / 1e9 <= last_s + 0.5, 10, 'the recording time')


def test_bad_files_and_arguments_are_one_line(ros_env, tmp_path):
    bad = tmp_path / 'bad.mcap'
    bad.write_bytes(b'garbage')
    for args, code, words in [(['replay', str(bad)], 1, 'bad.mcap'),
                              (['replay', str(bad), '--rate', '0'], 2, '--rate'),
                              (['record', '--out', str(tmp_path / 'x.mcap'), '--duration', '-1'], 2, '--duration'),
                              (['record', '--out', str(tmp_path / 'no' / 'x.mcap'), '--duration', '1'], 1, 'cannot write')]:
        done = subprocess.run([console_script('retailbot'), *args], env=ros_env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == code and words in done.stderr and 'Traceback' not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
