"""`/navigation/collision_monitor`: passes the guide's velocity command on to the base, or not.

Thin adapter around collision_monitor.CollisionMonitor: subscribes `cmd_in_topic` (the guide's
own command topic, geometry_msgs/Twist) and the lidar (`scan_topic`, sensor_msgs/LaserScan; the
laser sits at `laser_pose` on the robot) and publishes the checked command on `/cmd_vel`:
unchanged, scaled down in the slowdown polygon, zero in the stop polygon or with a stale scan.
When the guide stops sending, the monitor stops too (the base's watchdog stops the motors).
Publishes `~/state` (std_msgs/String, transient local: pass, slowdown, stop, stale) on every change and
`/diagnostics`. It reads nothing but the raw scan: no map, no costmap, no localisation.
"""
from __future__ import annotations

import math
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.node_support import ConfigError, declare_params, diagnostic_status, main_for
from retail_ros.params import ParamSpec
from retail_navigation.collision_monitor import CollisionMonitor, MonitorConfig
from retail_navigation.lidar import scan_points

PARAMS = [
    ParamSpec('cmd_in_topic', names.GUIDE_CMD_VEL, 'the guide\'s velocity command (geometry_msgs/Twist)'),
    ParamSpec('cmd_out_topic', names.CMD_VEL, 'checked command to the base driver'),
    ParamSpec('scan_topic', names.SCAN, 'sensor_msgs/LaserScan of the lidar'),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw]', type='float_list'),
    ParamSpec('robot_radius', 0.18, 'radius of the base [m]', min=0.05, max=1.0),
    ParamSpec('stop_margin_m', 0.10, 'stop polygon reach beyond the front at rest [m]', min=0.0, max=2.0),
    ParamSpec('stop_time_s', 0.5, 'stop polygon grows by speed x this [s]', min=0.0, max=5.0),
    ParamSpec('slowdown_margin_m', 0.45, 'slowdown polygon reach beyond the front at rest [m]', min=0.0, max=5.0),
    ParamSpec('slowdown_time_s', 1.5, 'slowdown polygon grows by speed x this [s]', min=0.0, max=10.0),
    ParamSpec('slowdown_ratio', 0.4, 'speed share kept in the slowdown polygon', min=0.0, max=1.0),
    ParamSpec('min_points', 2, 'laser points needed inside a polygon', type='int', min=1, max=100),
    ParamSpec('scan_timeout_s', 0.5, 'an older scan stops the robot [s]', min=0.05, max=5.0),
]



class CollisionMonitorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('collision_monitor', **kwargs)
        self.params = cfg = declare_params(self, PARAMS)
        if len(cfg.laser_pose) != 4:
            raise ConfigError(f'{self.get_fully_qualified_name()}: laser_pose must be [x, y, z, yaw], '
                              f'got {list(cfg.laser_pose)}')
        self.monitor = CollisionMonitor(MonitorConfig(
            robot_radius=cfg.robot_radius, stop_margin_m=cfg.stop_margin_m, stop_time_s=cfg.stop_time_s,
            slowdown_margin_m=cfg.slowdown_margin_m, slowdown_time_s=cfg.slowdown_time_s,
            slowdown_ratio=cfg.slowdown_ratio, min_points=cfg.min_points, scan_timeout_s=cfg.scan_timeout_s))
        lx, ly, _, lyaw = cfg.laser_pose
        self._mount = (lx, ly, math.cos(lyaw), math.sin(lyaw))
        self._points: np.ndarray | None = None
        self._scan_time = -math.inf
        self._state = ''
        self.counts = {'pass': 0, 'slowdown': 0, 'stop': 0, 'stale': 0}
        self.out_pub = self.create_publisher(Twist, cfg.cmd_out_topic, 10)
        self.state_pub = self.create_publisher(String, '~/state', LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(Twist, cfg.cmd_in_topic, self._on_cmd, 10)
        self.create_subscription(LaserScan, cfg.scan_topic, self._on_scan, qos_profile_sensor_data)
        self.create_timer(1.0, self._publish_diagnostics)
        self._set_state('stale')
        self.get_logger().info(f'ready: {cfg.cmd_in_topic} -> {cfg.cmd_out_topic}, checked on {cfg.scan_topic}')

    def _on_scan(self, msg: LaserScan) -> None:
        local = scan_points(np.asarray(msg.ranges, dtype=np.float64), msg.angle_min, msg.angle_increment,
                            msg.range_min, msg.range_max)
        lx, ly, c, s = self._mount
        points = np.empty_like(local)
        points[:, 0] = lx + c * local[:, 0] - s * local[:, 1]
        points[:, 1] = ly + s * local[:, 0] + c * local[:, 1]
        self._points = points
        self._scan_time = time.monotonic()     # arrival time: a scan from a stalled driver ages here

    def _on_cmd(self, msg: Twist) -> None:
        decision = self.monitor.decide(msg.linear.x, msg.angular.z, self._points,
                                       time.monotonic() - self._scan_time)
        self.counts[decision.action] += 1
        out = Twist()
        out.linear.x, out.angular.z = float(decision.vx), float(decision.wz)
        self.out_pub.publish(out)
        if decision.action != self._state and (decision.vx or decision.wz or decision.action != 'pass'):
            if decision.action in ('stop', 'stale'):
                self.get_logger().warning(f'{decision.action}: {decision.reason}', throttle_duration_sec=2.0)
            self._set_state(decision.action)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_pub.publish(String(data=state))

    def _publish_diagnostics(self) -> None:
        age = time.monotonic() - self._scan_time
        values = dict(self.counts, state=self._state,
                      scan_age_s=f'{age:.2f}' if math.isfinite(age) else 'never')
        if age > self.params.scan_timeout_s:
            level, message = DiagnosticStatus.ERROR, 'no fresh laser scan: the robot will not drive'
        elif self._state == 'stop':
            level, message = DiagnosticStatus.WARN, 'stopped for something close ahead'
        else:
            level, message = DiagnosticStatus.OK, 'watching the way ahead'
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status('navigation/collision_monitor', level, message, values)]
        self.diag_pub.publish(array)


main = main_for(CollisionMonitorNode)
