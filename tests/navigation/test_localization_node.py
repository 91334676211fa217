"""The localisation node over DDS: start pose (saved pose vs dock, chosen by the first scan), map -> odom
on /tf, /navigation/pose, the relocalise service, the pose saved on shutdown."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import LaserScan
from std_srvs.srv import Trigger

from retail_navigation.lidar import LidarConfig, SimLidar
from retail_navigation.localization import compose
from retail_navigation.localization_node import LocalizationNode, save_pose
from retail_navigation.maps import load_map
from retail_ros.tf_support import TF_QOS, TFMessage, planar
from rostest_support import wait_for

DEMO = Path(__file__).resolve().parents[2] / 'config' / 'stores' / 'demo'
DOCK = (0.7, 6.5, math.pi)
pytestmark = pytest.mark.timeout(90)


class FakeRobot(Node):
    """Odometry at the origin and lidar scans of a robot standing at `truth` on the demo map."""

    def __init__(self, truth, **kwargs) -> None:
        super().__init__('fake_robot', **kwargs)
        self.truth = truth
        self.lidar = SimLidar(load_map(DEMO / 'map.yaml'), LidarConfig(mount=(0.1, 0.0, 0.0)), seed=1)
        self.odom = self.create_publisher(Odometry, '/odom', 10)
        self.scan = self.create_publisher(LaserScan, '/scan', 10)
        self.map_to_odom = None
        self.poses: list[PoseWithCovarianceStamped] = []
        self.create_subscription(TFMessage, '/tf', self._on_tf, TF_QOS)
        self.create_subscription(PoseWithCovarianceStamped, '/navigation/pose', self.poses.append, 10)
        self.create_timer(0.02, self._tick_odom)
        self.create_timer(0.1, self._tick_scan)

    def _on_tf(self, msg) -> None:
        for t in msg.transforms:
            if (t.header.frame_id, t.child_frame_id) == ('map', 'odom'):
                self.map_to_odom = planar(t)

    def _tick_odom(self) -> None:
        msg = Odometry()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id, msg.child_frame_id = 'odom', 'base_link'
        msg.pose.pose.orientation.w = 1.0
        self.odom.publish(msg)

    def _tick_scan(self) -> None:
        c = self.lidar.config
        msg = LaserScan()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = 'laser'
        msg.angle_min, msg.angle_increment = c.angle_min, c.angle_increment
        msg.angle_max = c.angle_min + c.angle_increment * (c.beams - 1)
        msg.range_min, msg.range_max = c.range_min, c.range_max
        msg.ranges = self.lidar.scan(self.truth).tolist()
        self.scan.publish(msg)


def start(ros_context, spin, tmp_path, truth):
    robot = FakeRobot(truth, context=ros_context)
    node = LocalizationNode(context=ros_context, namespace='navigation', parameter_overrides=[
        Parameter('store_dir', value=str(DEMO)), Parameter('pose_file', value=str(tmp_path / 'last_pose.json')),
        Parameter('laser_pose', value=[0.1, 0.0, 0.2, 0.0])])
    spin(robot, node)
    return robot, node


def test_restart_on_the_dock_after_a_saved_pose_elsewhere_starts_on_the_dock(ros_context, spin, tmp_path):
    save_pose(tmp_path / 'last_pose.json', (12.0, 3.0, 0.0), 'map.yaml')   # where it was switched off
    robot, node = start(ros_context, spin, tmp_path, DOCK)                  # ... but it stands on the dock
    wait_for(lambda: robot.map_to_odom is not None and robot.poses, 20, 'map -> odom and /navigation/pose')
    pose = compose(robot.map_to_odom, (0.0, 0.0, 0.0))
    assert math.hypot(pose[0] - DOCK[0], pose[1] - DOCK[1]) < 0.1
    assert robot.poses[-1].header.frame_id == 'map'


def test_the_saved_pose_is_used_when_the_scan_matches_it_and_saved_again_on_shutdown(ros_context, spin, tmp_path):
    where = (12.0, 3.0, 0.3)
    save_pose(tmp_path / 'last_pose.json', where, 'map.yaml')
    robot, node = start(ros_context, spin, tmp_path, where)
    wait_for(lambda: robot.map_to_odom is not None, 20, 'map -> odom')
    pose = compose(robot.map_to_odom, (0.0, 0.0, 0.0))
    assert math.hypot(pose[0] - where[0], pose[1] - where[1]) < 0.1
    (tmp_path / 'last_pose.json').unlink()
    node.destroy_node()
    saved = json.loads((tmp_path / 'last_pose.json').read_text())['pose']
    assert math.hypot(saved[0] - where[0], saved[1] - where[1]) < 0.1


def test_relocalise_service_finds_a_robot_carried_elsewhere(ros_context, spin, tmp_path):
    truth = (19.0, 4.0, 1.0)                                   # not where it starts (the dock)
    robot, node = start(ros_context, spin, tmp_path, truth)
    client = robot.create_client(Trigger, '/navigation/relocalise')
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    wait_for(future.done, 10, 'the relocalise answer')
    assert future.result().success
    wait_for(lambda: robot.map_to_odom is not None and math.hypot(
        robot.map_to_odom[0] - truth[0], robot.map_to_odom[1] - truth[1]) < 0.2, 30,
        'the robot found at its true place')
