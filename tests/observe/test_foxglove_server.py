"""The Foxglove WebSocket server, seen by an independent client (a raw `websockets` client speaking
foxglove.websocket.v1, decoding with the advertised schema through `mcap-ros2-support`)."""
from __future__ import annotations

import asyncio
import json
import math
import struct

import pytest
import websockets
from mcap_ros2._dynamic import generate_dynamic
from nav_msgs.msg import OccupancyGrid, Odometry
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan

from retail_observe.foxglove_view import DrivenPath
from retail_ros.qos import LATCHED

WANTED = {'/map', '/scan', '/navigation/driven_path'}


async def _watch(port: int, seconds: float) -> tuple[dict, dict]:
    """(advertised channels by topic, first decoded message by topic) within `seconds`."""
    got: dict = {}
    async with websockets.connect(f'ws://127.0.0.1:{port}', subprotocols=['foxglove.sdk.v1', 'foxglove.websocket.v1'],
                                  open_timeout=5) as ws:
        channels: dict = {}
        decoders: dict = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not WANTED <= set(got):
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - loop.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(frame, str):
                message = json.loads(frame)
                if message['op'] == 'advertise':
                    subs = []
                    for channel in message['channels']:
                        channels[channel['topic']] = channel
                        decoders[channel['id']] = (channel['topic'], generate_dynamic(channel['schemaName'],
                                                                                      channel['schema']))
                        subs.append({'id': channel['id'], 'channelId': channel['id']})
                    await ws.send(json.dumps({'op': 'subscribe', 'subscriptions': subs}))
            elif frame[0] == 1:
                sub_id, _ = struct.unpack_from('<IQ', frame, 1)
                topic, decoder = decoders[sub_id]
                schema_name = channels[topic]['schemaName']
                got.setdefault(topic, decoder[schema_name](frame[13:]))
    return channels, got


def test_a_client_lists_the_channels_and_receives_map_scan_and_driven_path(ros_context, spin):
    import rclpy
    from retail_observe.foxglove_node import FoxgloveNode
    from rclpy.parameter import Parameter
    server = FoxgloveNode(context=ros_context, parameter_overrides=[Parameter('port', value=0),
                                                                     Parameter('path_period_s', value=0.1)])
    talker = rclpy.create_node('talker', context=ros_context)
    grid = OccupancyGrid()
    grid.header.frame_id = 'map'
    grid.info.width, grid.info.height, grid.info.resolution = 2, 1, 0.05
    grid.data = [0, 100]
    map_pub = talker.create_publisher(OccupancyGrid, '/map', LATCHED)
    map_pub.publish(grid)            # before any client: a latched map reaches a client that comes later
    scan_pub = talker.create_publisher(LaserScan, '/scan', qos_profile_sensor_data)
    odom_pub = talker.create_publisher(Odometry, '/odom', 10)
    step = [0]

    def tick():
        step[0] += 1
        scan_pub.publish(LaserScan(ranges=[1.5, math.inf]))
        odom = Odometry()
        odom.header.frame_id = 'odom'
        odom.pose.pose.position.x = 0.1 * step[0]
        odom.pose.pose.orientation.w = 1.0
        odom_pub.publish(odom)
    talker.create_timer(0.05, tick)
    spin(server, talker)
    channels, got = asyncio.run(_watch(server.server.port, 15.0))
    assert {'/map', '/tf', '/tf_static', '/navigation/pose', '/scan', '/navigation/plan', '/perception/people',
            '/navigation/safety', '/navigation/driven_path'} <= set(channels)
    assert all(c['encoding'] == 'cdr' and c['schemaEncoding'] == 'ros2msg' for c in channels.values())
    assert channels['/scan']['schemaName'] == 'sensor_msgs/msg/LaserScan'
    assert WANTED <= set(got), sorted(got)
    assert list(got['/map'].data) == [0, 100]
    assert got['/scan'].ranges[0] == pytest.approx(1.5) and math.isinf(got['/scan'].ranges[1])
    assert got['/navigation/driven_path'].header.frame_id == 'odom' and got['/navigation/driven_path'].poses


def test_the_server_binds_loopback_by_default():
    from retail_observe.foxglove_node import SPECS
    assert {s.name: s.default for s in SPECS}['host'] == '127.0.0.1'


@pytest.mark.parametrize('poses,kept', [
    ([(0, 0, 0), (0.01, 0, 0), (0.2, 0, 0)], 2),                 # a small step is not a new pose
    ([(0, 0, 0), (0, 0, 0.5)], 2),                               # turning on the spot is
    ([(0, 0, 0), (math.nan, 0, 0), (math.inf, 1, 0)], 1),        # non-finite odometry is refused
])
def test_driven_path_keeps_real_moves_only(poses, kept):
    path = DrivenPath()
    for pose in poses:
        path.add(*pose)
    assert len(path.poses) == kept


def test_driven_path_is_bounded():
    path = DrivenPath(max_poses=10)
    for i in range(100):
        path.add(float(i), 0.0, 0.0)
    assert len(path.poses) == 10 and path.poses[-1][0] == 99.0


@pytest.mark.parametrize('args,expect', [
    ({}, None),
    ({'record_incidents': 'true'}, None),
    ({'foxglove': 'true'}, {'host': '127.0.0.1', 'port': '8765'}),
    ({'foxglove': 'true', 'foxglove_port': '9001', 'foxglove_host': '0.0.0.0'}, {'host': '0.0.0.0', 'port': '9001'}),
])
def test_robot_launch_runs_the_server_only_when_asked(args, expect):
    from retail_ros.launch_file import load_launch
    from rostest_support import REPO
    nodes = {n.fully_qualified_name: n for n in load_launch(REPO / 'launch' / 'robot.launch.yaml', args,
                                                             find_share=lambda p: str(REPO)).nodes}
    if expect is None:
        assert '/foxglove' not in nodes
        return
    node = nodes['/foxglove']
    assert node.pkg == 'retail_observe' and node.executable == 'retail_observe_foxglove' and node.respawn
    params = dict(value for kind, value in node.params if kind == 'param')
    assert {k: params[k] for k in expect} == expect
