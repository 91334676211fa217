"""Navigation in simulation, every part real: base simulator with shop-floor drift on a pty, lidar,
shoppers, the base driver on pyserial, localisation, collision monitor and guide over DDS.

- the TF tree has odom -> base_link (/tf, driver), base_link -> laser (/tf_static, driver) and
  map -> odom (/tf, localisation);
- guiding to a far zone ends within tolerance of the ground truth, where the pure odometry of the
  same drive is off by more;
- a shopper crossing the robot's way makes it slow down or stop, and it never touches anyone.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_guide_node import Client, result_of  # noqa: E402

from retail_interfaces.action import GuideTo  # noqa: E402
from retail_navigation.base_driver_node import BaseDriverNode  # noqa: E402
from retail_common.store import load_store  # noqa: E402
from retail_navigation.base_sim import Drift, SimConfig, SimulatedBase  # noqa: E402
from retail_navigation.collision_monitor_node import CollisionMonitorNode  # noqa: E402
from retail_navigation.guide_node import GuideNode  # noqa: E402
from retail_navigation.lidar import LidarConfig, SimLidar  # noqa: E402
from retail_navigation.localization import compose  # noqa: E402
from retail_navigation.localization_node import LocalizationNode  # noqa: E402
from retail_navigation.maps import load_map  # noqa: E402
from retail_navigation.pty_sim import PtySimulator  # noqa: E402
from retail_navigation.sim_node import SimNode  # noqa: E402
from retail_navigation.sim_world import SimWorld  # noqa: E402
from retail_ros.tf_support import TF_QOS, TF_STATIC_QOS, TFMessage  # noqa: E402
from rostest_support import wait_for  # noqa: E402

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
LASER = [0.10, 0.0, 0.20, 0.0]
pytestmark = pytest.mark.timeout(150)


class Watcher(Node):
    """Records TF frames and the collision monitor's states."""

    def __init__(self, **kwargs) -> None:
        super().__init__('nav_watcher', **kwargs)
        self.tf: set[tuple[str, str]] = set()
        self.static: set[tuple[str, str]] = set()
        self.monitor_states: list[str] = []
        self.create_subscription(TFMessage, '/tf', lambda m: self.tf.update(
            (t.header.frame_id, t.child_frame_id) for t in m.transforms), TF_QOS)
        self.create_subscription(TFMessage, '/tf_static', lambda m: self.static.update(
            (t.header.frame_id, t.child_frame_id) for t in m.transforms), TF_STATIC_QOS)
        self.create_subscription(String, '/navigation/collision_monitor/state',
                                 lambda m: self.monitor_states.append(m.data), LATCHED)


def bring_up(ros_context, spin, tmp_path, world=None, drift_seed=4):
    store_map = load_map(DEMO / 'map.yaml')
    zones = load_store(DEMO).zones
    dock = zones['dock'].pose
    floor = world.world_map if world is not None else store_map
    base = SimulatedBase(floor, dock, SimConfig(dock_pose=dock, drift=Drift.shop_floor(drift_seed)), world=world)
    sim = PtySimulator(base, tmp_path / 'base').start()
    lidar = SimLidar(floor, LidarConfig(mount=(LASER[0], LASER[1], LASER[3])), seed=1)
    common = [Parameter('laser_pose', value=LASER)]
    nodes = [
        SimNode(sim, lidar, 10.0, context=ros_context, namespace='navigation'),
        BaseDriverNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('port', value=str(sim.link)), Parameter('max_vx', value=0.7)]),
        LocalizationNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('store_dir', value=str(DEMO)), Parameter('pose_file', value=str(tmp_path / 'pose.json'))]),
        CollisionMonitorNode(context=ros_context, namespace='navigation', parameter_overrides=common),
        GuideNode(context=ros_context, namespace='navigation', parameter_overrides=common + [
            Parameter('store_dir', value=str(DEMO)), Parameter('max_vx', value=0.7)]),
    ]
    client, watcher = Client(context=ros_context), Watcher(context=ros_context)
    spin(*nodes, client, watcher)
    driver, guide = nodes[1], nodes[4]
    assert driver.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert driver.trigger_activate() == TransitionCallbackReturn.SUCCESS
    wait_for(lambda: guide._pose is not None, 20, 'the guide to know where it is on the map')
    return sim, driver, guide, client, watcher, zones


@pytest.fixture
def stack(ros_context, spin, tmp_path):
    started = []

    def _up(**kwargs):
        parts = bring_up(ros_context, spin, tmp_path, **kwargs)
        started.append(parts[0])
        return parts
    yield _up
    for sim in started:
        sim.stop()


def test_tf_tree_and_guiding_far_with_drift_ends_on_the_truth_where_odometry_alone_would_not(stack):
    sim, driver, guide, client, watcher, zones = stack()
    wait_for(lambda: {('odom', 'base_link'), ('map', 'odom')} <= watcher.tf, 10, 'odom and map transforms on /tf')
    wait_for(lambda: ('base_link', 'laser') in watcher.static, 10, 'the laser mount on /tf_static')
    assert ('base_link', 'camera') in watcher.static
    target = zones['kitchen'].pose                            # ~27 m across the store from the dock
    result = result_of(client.send(client.guide, GuideTo.Goal(zone='kitchen')), 110)
    assert result.success and result.reason == 'arrived', result.reason
    truth = sim.state()['pose']
    assert math.hypot(truth[0] - target[0], truth[1] - target[1]) < 0.25
    believed = guide._pose
    assert math.hypot(believed[0] - truth[0], believed[1] - truth[1]) < 0.15
    odom = driver.core.pose
    dead_reckoning = compose(zones['dock'].pose, (odom.x, odom.y, odom.theta))
    odometry_error = math.hypot(dead_reckoning[0] - truth[0], dead_reckoning[1] - truth[1])
    assert odometry_error > 0.2, f'pure odometry ended only {odometry_error:.2f} m off'
    assert odometry_error > 2 * math.hypot(believed[0] - truth[0], believed[1] - truth[1])


def test_a_shopper_crossing_makes_the_robot_slow_or_stop_and_nobody_is_touched(stack):
    store_map = load_map(DEMO / 'map.yaml')
    world = SimWorld(store_map, [(12.0, 1.5)], people=1, seed=2)
    shopper = world.shoppers[0]
    # waiting beside the front aisle, then crossing it (y 1.2 -> 5.8 at x 8.0) while the robot drives along it
    shopper.x, shopper.y, shopper.state, shopper.until = 8.0, 5.8, 'browsing', 1e9
    sim, driver, guide, client, watcher, zones = stack(world=world)
    handle = client.send(client.guide, GuideTo.Goal(target_pose=_pose(14.0, 3.2)))
    wait_for(lambda: sim.state()['pose'][0] > 5.5, 40, 'the robot driving along the front aisle')
    with sim._lock:
        shopper.path, shopper.state, shopper.speed = [(8.0, 1.0)], 'walking', 0.6
    result = result_of(handle, 90)
    assert result.success, result.reason
    assert world.contacts == 0
    assert {'slowdown', 'stop'} & set(watcher.monitor_states) or any(
        f.state in ('waiting_for_obstacle', 'replanning') for f in client.feedback)


def _pose(x, y):
    from geometry_msgs.msg import PoseStamped
    goal = PoseStamped()
    goal.header.frame_id = 'map'
    goal.pose.position.x, goal.pose.position.y = x, y
    goal.pose.orientation.w = 1.0
    return goal
