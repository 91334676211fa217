"""Test helpers for the guide node: a kinematic base that answers /cmd_vel with /odom."""
from __future__ import annotations

import math
import threading

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node


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
