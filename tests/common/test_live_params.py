"""Live parameters and store reloads on a real rclpy node."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile

from retail_common.live_store import LiveStore
from retail_ros.node_support import declare_params, watch_store
from retail_ros.params import ParamSpec
from rostest_support import wait_for

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
SPECS = [
    ParamSpec('max_vx', 0.45, 'forward speed limit [m/s]', min=0.05, max=1.0, read_only=False),
    ParamSpec('mode', 'fast', 'how to drive', choices=('fast', 'slow'), read_only=False),
    ParamSpec('store_dir', '', 'store folder'),
]


@pytest.fixture
def node(ros_context):
    node = Node('guide', namespace='navigation', context=ros_context)
    yield node
    node.destroy_node()


def test_a_live_parameter_is_validated_like_the_params_file_and_applied(node):
    changes = []
    p = declare_params(node, SPECS, on_change=lambda name, value: changes.append((name, value)))
    result = node.set_parameters([Parameter('max_vx', value=0.2)])[0]
    assert result.successful and p.max_vx == 0.2 and changes == [('max_vx', 0.2)]
    result = node.set_parameters([Parameter('max_vx', value=1)])[0]          # a whole number is a float
    assert result.successful and p.max_vx == 1.0 and isinstance(p.max_vx, float)
    assert node.get_parameter('max_vx').value == 1.0

    refused = node.set_parameters([Parameter('max_vx', value=3.0)])[0]
    assert not refused.successful
    assert refused.reason == "set_parameters: node /navigation/guide: key 'max_vx': 3.0 is above the maximum 1.0"
    refused = node.set_parameters([Parameter('max_vx', value='fast')])[0]
    assert not refused.successful and "key 'max_vx': expected a number, got the text 'fast'" in refused.reason
    refused = node.set_parameters([Parameter('mode', value='reverse')])[0]
    assert not refused.successful and "'reverse' is not one of 'fast', 'slow'" in refused.reason
    assert p.max_vx == 1.0 and p.mode == 'fast' and len(changes) == 2
    assert node.get_parameter('max_vx').value == 1.0


def test_every_other_parameter_is_read_only(node):
    p = declare_params(node, SPECS)
    refused = node.set_parameters([Parameter('store_dir', value='/elsewhere')])[0]
    assert not refused.successful and 'read-only' in refused.reason and 'store_dir' in refused.reason
    assert p.store_dir == '' and node.describe_parameter('store_dir').read_only
    assert not node.describe_parameter('max_vx').read_only


def test_watch_store_reloads_on_a_data_update(ros_context, spin, tmp_path):
    from retail_common import names
    from retail_interfaces.msg import DataUpdate
    store_dir = tmp_path / 'store'
    shutil.copytree(DEMO, store_dir)
    consumer = Node('consumer', context=ros_context)
    agent = Node('agent', namespace='sync', context=ros_context)
    live = LiveStore(store_dir, tmp_path / 'data')
    swapped = []
    watch_store(consumer, live, on_swap=swapped.append)
    publisher = agent.create_publisher(DataUpdate, names.DATA_UPDATES,
                                       QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    spin(consumer, agent)
    platform = tmp_path / 'data' / 'platform'
    platform.mkdir(parents=True)
    (platform / 'appointments.json').write_text(
        '[{"id": 1, "customer": "vip-9", "time": "2026-03-02T10:00:00", "note": "{\\"name\\": \\"Kit\\"}"}]',
        encoding='utf-8')
    publisher.publish(DataUpdate(kind='appointments', path=str(platform / 'appointments.json'), version='1'))
    wait_for(lambda: swapped, 10, 'the store swap')
    assert swapped[0] is live.current() and [a.name for a in live.current().appointments] == ['Kit']
