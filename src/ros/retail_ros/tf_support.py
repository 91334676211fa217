"""TF for the thin nodes: build `geometry_msgs/TransformStamped`, publish `/tf` and `/tf_static`, and
read one transform out of `/tf` (no tf2_ros buffer: the nodes need two planar transforms only).

`tf2_msgs` comes from the full ROS 2 install on a robot, and in the pip environment from
`robot_ws/tf2_msgs` (same definition; no PyPI wheel exists, see its README).
QoS as tf2_ros uses it: `/tf` reliable, depth 100; `/tf_static` reliable, transient local, depth 1
per publisher (all static transforms of a node go in one message).
"""

from __future__ import annotations

import math

from collections.abc import Callable

from geometry_msgs.msg import TransformStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from retail_ros.qos import LATCHED
from retail_common import names

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
TF_STATIC_QOS = LATCHED

__all__ = ['TFMessage', 'TF_QOS', 'TF_STATIC_QOS', 'StaticMount', 'transform', 'planar', 'yaw_of']


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


class StaticMount:
    """A sensor mount (parent -> child, planar) read once from `/tf_static`, as the base driver or
    the simulator publishes it; the node's parameter is used only when no such transform arrives
    within `timeout_s`. One log line says which is used. `value` is None until then (a node does
    not use the sensor meanwhile); `on_decided(value)` is called once."""

    def __init__(
        self,
        node,
        parent: str,
        child: str,
        fallback: tuple[float, float, float],
        param: str,
        timeout_s: float = 2.0,
        on_decided: Callable[[tuple[float, float, float]], None] | None = None,
        callback_group=None,
    ) -> None:
        self.node, self.parent, self.child = node, parent, child
        self.fallback, self.param, self.timeout_s = fallback, param, timeout_s
        self.on_decided = on_decided
        self.value: tuple[float, float, float] | None = None
        self.source = ''
        self._sub = node.create_subscription(
            TFMessage, names.TF_STATIC, self._on_static, TF_STATIC_QOS, callback_group=callback_group
        )
        self._timer = node.create_timer(timeout_s, self._on_timeout, callback_group=callback_group)

    def _on_static(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            if self.value is None and t.header.frame_id == self.parent and t.child_frame_id == self.child:
                x, y, yaw = planar(t)
                if all(map(math.isfinite, (x, y, yaw))):
                    self._decide((x, y, yaw), f'{self.parent} -> {self.child} from /tf_static')

    def _on_timeout(self) -> None:
        if self.value is None:
            self._decide(
                self.fallback,
                f'parameter {self.param} (no {self.parent} -> {self.child} on /tf_static within {self.timeout_s:g} s)',
            )

    def _decide(self, value: tuple[float, float, float], source: str) -> None:
        self.node.destroy_timer(self._timer)
        self.node.get_logger().info(
            f'{self.child} mount: {source}: x {value[0]:.3f} m, y {value[1]:.3f} m, yaw {value[2]:.3f} rad'
        )
        if self.on_decided is not None:
            self.on_decided(value)
        # Last: whoever sees `value` (another thread) sees the node already using it (a CI run
        # read the filter's mount between the two and found the parameter's).
        self.source = source
        self.value = value
