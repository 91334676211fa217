"""A live parameter on the running robot: `max_vx` set on the guide while it drives the simulated
base (real driver over a pty) changes the driving speed at once; a bad value is refused with the
params file's reason; a read-only parameter cannot be changed."""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'navigation'))
from nav_base_support import base_sim  # noqa: E402,F401 (fixture)

from retail_interfaces.action import GuideTo  # noqa: E402
from retail_navigation.base_driver_node import BaseDriverNode  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from retail_navigation.maps import load_map  # noqa: E402
from retail_common.store import load_store  # noqa: E402
from rostest_support import wait_for  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
pytestmark = pytest.mark.timeout(150)


class Operator(Node):
    """What a technician's `ros2 param set` and a watching tool do: parameter service calls and
    listening to /cmd_vel and /odom."""

    def __init__(self, **kwargs) -> None:
        super().__init__('operator', **kwargs)
        self.lock = threading.Lock()
        self.commands: list[tuple[float, float]] = []     # (monotonic time, vx)
        self.speeds: list[tuple[float, float]] = []       # (monotonic time, measured forward speed)
        self.create_subscription(Twist, '/cmd_vel', self._on_cmd, 50)
        self.create_subscription(Odometry, '/odom', self._on_odom, 50)
        self.params = AsyncParameterClient(self, '/navigation/guide')
        self.guide = ActionClient(self, GuideTo, '/navigation/guide_to')

    def _on_cmd(self, msg: Twist) -> None:
        with self.lock:
            self.commands.append((time.monotonic(), msg.linear.x))

    def _on_odom(self, msg: Odometry) -> None:
        with self.lock:
            self.speeds.append((time.monotonic(), msg.twist.twist.linear.x))

    def since(self, series: str, start: float) -> list[float]:
        with self.lock:
            return [v for t, v in getattr(self, series) if t >= start]

    def set(self, **values):
        assert self.params.wait_for_services(timeout_sec=10.0)
        future = self.params.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        wait_for(future.done, 10, 'the set_parameters answer')
        return future.result().results


def test_max_vx_set_on_the_running_guide_changes_the_driving_speed(ros_context, spin, base_sim):
    dock = load_store(DEMO).zones['dock'].pose
    sim = base_sim(load_map(DEMO / 'map.yaml'), dock, dock_pose=dock)
    driver = BaseDriverNode(context=ros_context, namespace='navigation',
                            parameter_overrides=[Parameter('port', value=str(sim.link))])
    # odometry only, straight to /cmd_vel: no lidar in this test (no localisation, no collision monitor)
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(DEMO)), Parameter('localization', value=False),
                                           Parameter('cmd_vel_topic', value='/cmd_vel'),
                                           Parameter('scan_topic', value='')])
    operator = Operator(context=ros_context)
    spin(driver, guide, operator)
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: guide._pose is not None, 10, 'odometry reaching the guide')

    assert operator.guide.wait_for_server(timeout_sec=10.0)
    sent = operator.guide.send_goal_async(GuideTo.Goal(zone='kitchen'))   # the far end of the store
    wait_for(sent.done, 10, 'goal acceptance')
    assert sent.result().accepted
    start = time.monotonic()
    wait_for(lambda: max(operator.since('commands', start), default=0.0) > 0.35, 30,
             'the guide driving at its configured 0.45 m/s')

    results = operator.set(max_vx=0.2)
    assert results[0].successful, results[0].reason
    changed = time.monotonic()
    # Measured from the next commands on: at most 0.2 m/s, still driving.
    wait_for(lambda: len(operator.since('commands', changed + 0.3)) >= 20, 10, 'two seconds of commands')
    after = operator.since('commands', changed + 0.3)
    assert max(after) <= 0.2 + 1e-6 and max(after) > 0.1, after
    wait_for(lambda: len(operator.since('speeds', changed + 1.0)) >= 20, 10, 'odometry after the change')
    measured = operator.since('speeds', changed + 1.0)
    assert statistics.median(measured) <= 0.22, measured      # the base really goes slower
    assert guide.params.max_vx == 0.2

    refused = operator.set(max_vx=5.0)[0]
    assert not refused.successful
    assert refused.reason == "set_parameters: node /navigation/guide: key 'max_vx': 5.0 is above the maximum 1.0"
    read_only = operator.set(store_dir='/elsewhere')[0]
    assert not read_only.successful and 'read-only' in read_only.reason
    assert guide.params.max_vx == 0.2 and guide.params.store_dir == str(DEMO)
    handle = sent.result()
    cancel = handle.cancel_goal_async()
    wait_for(cancel.done, 10, 'the cancel answer')


def test_the_running_guide_takes_new_zones_and_tours_on_a_data_update(ros_context, spin, tmp_path):
    """A store's zones.yaml edited while the robot runs is used from the next goal on, after the
    sync's next data update (a broken edit keeps the store in use: tests/common/test_live_store.py)."""
    import shutil
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from retail_common import names
    from retail_interfaces.msg import DataUpdate
    store = tmp_path / 'store'
    shutil.copytree(DEMO, store)
    guide = GuideNode(context=ros_context, namespace='navigation',
                      parameter_overrides=[Parameter('store_dir', value=str(store)),
                                           Parameter('data_dir', value=str(tmp_path / 'data'))])
    agent = Node('agent', namespace='sync', context=ros_context)
    updates = agent.create_publisher(DataUpdate, names.DATA_UPDATES,
                                     QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    spin(guide, agent)
    assert guide.zones.zones['vip_lounge'].name_en == 'VIP Lounge'
    text = (store / 'zones.yaml').read_text(encoding='utf-8')
    (store / 'zones.yaml').write_text(text.replace('name_en: VIP Lounge', 'name_en: Members Lounge'), encoding='utf-8')
    updates.publish(DataUpdate(kind='catalog', path='', version='2'))
    wait_for(lambda: guide.zones.zones['vip_lounge'].name_en == 'Members Lounge', 10, 'the new zone names in the guide')
