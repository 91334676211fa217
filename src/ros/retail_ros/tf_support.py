"""TF for the thin nodes: build `geometry_msgs/TransformStamped`, publish `/tf` and `/tf_static`, and
read one transform out of `/tf` (no tf2_ros buffer: the nodes need two planar transforms only).

`tf2_msgs` comes from the full ROS 2 install on a robot, and in the pip environment from
`robot_ws/tf2_msgs` (same definition; no PyPI wheel exists, see its README).
QoS as tf2_ros uses it: `/tf` reliable, depth 100; `/tf_static` reliable, transient local, depth 1
per publisher (all static transforms of a node go in one message).
"""
from __future__ import annotations

import math

from geometry_msgs.msg import TransformStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from retail_ros.qos import LATCHED

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = LATCHED

__all__ = ['TFMessage', 'TF_QOS', 'TF_STATIC_QOS', 'transform', 'planar', 'yaw_of']


def transform(stamp, parent: str, child: str, x: float, y: float, yaw: float, z: float = 0.0) -> TransformStamped:
    """parent -> child: the child frame's origin and heading in the parent frame."""
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = float(x), float(y), float(z)
    t.transform.rotation.z = math.sin(yaw / 2.0)
    t.transform.rotation.w = math.cos(yaw / 2.0)
    return t


def yaw_of(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def planar(t: TransformStamped) -> tuple[float, float, float]:
    """(x, y, yaw) of a transform."""
    return t.transform.translation.x, t.transform.translation.y, yaw_of(t.transform.rotation)
