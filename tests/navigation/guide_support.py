"""Test helpers for the guide node: a kinematic base that answers /cmd_vel with /odom, an action
client node, and a guide started on a (published) localisation."""
from __future__ import annotations

import math
import threading

from geometry_msgs.msg import Pose, PoseArray, Twist
from nav_msgs.msg import Odometry
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String

from rostest_support import wait_for

from retail_interfaces.action import GuideTo, Tour
from retail_interfaces.msg import BaseSafety, PlaceArrival
from retail_ros.qos import LATCHED


class KinematicBase(Node):
    """Integrates /cmd_vel (unicycle, no limits) at 50 Hz and publishes /odom from (0, 0, 0),
    stamped with its clock (`frozen_stamp`: a driver republishing with its last stamp)."""

    def __init__(self, **kwargs) -> None:
        super().__init__('kinematic_base', **kwargs)
        self.lock = threading.Lock()
        self.x = self.y = self.theta = 0.0
        self.vx = self.wz = 0.0
        self.commands: list[tuple[float, float]] = []
        self.odometry_on = True            # False: the base goes on moving but no /odom comes out
        self.frozen_stamp = None           # a builtin_interfaces/Time put on every /odom instead of now
        self.pub = self.create_publisher(Odometry, '/odom', 10)
        self.create_subscription(Twist, '/cmd_vel', self._on_cmd, 10)
        self.create_timer(0.02, self._step)

    def _on_cmd(self, msg: Twist) -> None:
        with self.lock:
            self.vx, self.wz = msg.linear.x, msg.angular.z
            self.commands.append((self.vx, self.wz))

    def _step(self) -> None:
        with self.lock:
            dt = 0.02
            self.x += self.vx * math.cos(self.theta) * dt
            self.y += self.vx * math.sin(self.theta) * dt
            self.theta += self.wz * dt
            msg = Odometry()
            msg.header.stamp = self.frozen_stamp or self.get_clock().now().to_msg()
            msg.header.frame_id, msg.child_frame_id = 'odom', 'base_link'
            msg.pose.pose.position.x, msg.pose.pose.position.y = self.x, self.y
            msg.pose.pose.orientation.z = math.sin(self.theta / 2)
            msg.pose.pose.orientation.w = math.cos(self.theta / 2)
            msg.twist.twist.linear.x, msg.twist.twist.angular.z = self.vx, self.wz
        if self.odometry_on:
            self.pub.publish(msg)


class Client(Node):
    """The guide's actions, its arrivals and feedback; publishes people and the base's safety."""

    def __init__(self, **kwargs) -> None:
        super().__init__('guide_test_client', **kwargs)
        self.guide = ActionClient(self, GuideTo, '/navigation/guide_to')
        self.tour = ActionClient(self, Tour, '/navigation/tour')
        self.arrivals: list[PlaceArrival] = []
        self.feedback: list = []
        self.create_subscription(PlaceArrival, '/navigation/arrivals', self.arrivals.append, 10)
        self.people = self.create_publisher(PoseArray, '/perception/people', 10)
        self.safety = self.create_publisher(BaseSafety, '/navigation/safety', LATCHED)

    def send(self, client, goal):
        assert client.wait_for_server(timeout_sec=10.0), 'action server not available'
        future = client.send_goal_async(goal, feedback_callback=lambda f: self.feedback.append(f.feedback))
        wait_for(future.done, 10.0, 'goal acceptance')
        handle = future.result()
        assert handle.accepted
        return handle


def people_at(*points, frame: str = 'map', node: Node | None = None) -> PoseArray:
    """A /perception/people message with people at `points`; stamped now by `node`'s clock if given."""
    msg = PoseArray()
    msg.header.frame_id = frame
    if node is not None:
        msg.header.stamp = node.get_clock().now().to_msg()
    for x, y in points:
        pose = Pose()
        pose.position.x, pose.position.y = x, y
        msg.poses.append(pose)
    return msg


def result_of(handle, timeout):
    future = handle.get_result_async()
    wait_for(future.done, timeout, 'action result')
    return future.result().result


def start_localised(ros_context, spin, store):
    """The guide node with localisation on (it waits for map -> odom), a kinematic base, a client."""
    from retail_navigation.guide_node import GuideNode
    overrides = [Parameter('store_dir', value=str(store)), Parameter('max_vx', value=0.8),
                 Parameter('cmd_vel_topic', value='/cmd_vel'), Parameter('scan_topic', value='')]
    base = KinematicBase(context=ros_context)
    guide = GuideNode(context=ros_context, namespace='navigation', parameter_overrides=overrides)
    client = Client(context=ros_context)
    spin(base, guide, client)
    wait_for(lambda: guide._odom_pose is not None, 10, 'odometry reaching the guide')
    return base, guide, client


def guiding_on_localisation(ros_context, spin, store, zone: str = 'kitchen'):
    """A localised guide driving to `zone`: the localisation state `tracking` and map -> odom on
    /tf at 10 Hz (odometry's origin on the dock). Returns (base, guide, client, goal handle,
    say_state(state) publishing a localisation state, the /tf timer)."""
    from retail_ros.tf_support import TF_QOS, TFMessage, transform
    base, guide, client = start_localised(ros_context, spin, store)
    tf = client.create_publisher(TFMessage, '/tf', TF_QOS)
    state = client.create_publisher(String, '/navigation/localization_state', LATCHED)
    state.publish(String(data='tracking'))
    timer = client.create_timer(0.1, lambda: tf.publish(TFMessage(transforms=[
        transform(client.get_clock().now().to_msg(), 'map', 'odom', 0.7, 6.5, math.pi)])))
    wait_for(lambda: guide._pose is not None, 10, 'map -> odom reaching the guide')
    handle = client.send(client.guide, GuideTo.Goal(zone=zone))
    wait_for(lambda: base.vx > 0.1, 15, 'the robot driving')
    return base, guide, client, handle, lambda data: state.publish(String(data=data)), timer
