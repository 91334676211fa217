"""`/navigation/collision_monitor`: passes the guide's velocity command on to the base, or not.

Thin adapter around collision_monitor.CollisionMonitor: subscribes `cmd_in_topic` (the guide's
own command topic, geometry_msgs/Twist) and the lidar (`scan_topic`, sensor_msgs/LaserScan; the
laser's mount base_link -> laser is read once from /tf_static, `laser_pose` is used only when none
comes within `laser_tf_timeout_s`; scans wait for it, the robot stopped meanwhile) and publishes the checked command on `/cmd_vel`:
unchanged (clamped to the limits), scaled down in the slowdown polygon, zero in the stop polygon,
with a scan that is stale BY ITS HEADER STAMP against this node's clock (frozen, late, future or
zero stamps), with too many invalid beams ahead, with more than one publisher on the scan topic
(two lidars in one frame cannot be told apart), or for a non-finite or absurd command.
When the guide stops sending, the monitor stops too (the base's watchdog stops the motors).
Publishes `~/state` (std_msgs/String, transient local: pass, slowdown, stop, stale, blind,
invalid_command) on every change and `/diagnostics` (with the reason of the last stop). It reads
nothing but the raw scan: no map, no costmap, no localisation.
"""
from __future__ import annotations

import math
from dataclasses import replace

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
from retail_navigation.collision_monitor import CollisionMonitor, MonitorConfig, ScanSource, SourceConfig
from retail_navigation.frames import BASE_LINK, LASER
from retail_ros.tf_support import StaticMount

PARAMS = [
    ParamSpec('cmd_in_topic', names.GUIDE_CMD_VEL, 'the guide\'s velocity command (geometry_msgs/Twist)'),
    ParamSpec('cmd_out_topic', names.CMD_VEL, 'checked command to the base driver'),
    ParamSpec('scan_topic', names.SCAN, 'sensor_msgs/LaserScan of the lidar'),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw], used only when no '
              'base_link -> laser comes on /tf_static within laser_tf_timeout_s', type='float_list'),
    ParamSpec('laser_tf_timeout_s', 2.0, 'wait this long for the lidar mount on /tf_static before using laser_pose [s]',
              min=0.1, max=60.0),
    ParamSpec('laser_frame', 'laser', 'frame_id the scans must carry (\'\' = any): a scan in another frame '
              '(a second lidar on the topic) is refused and stops the robot'),
    ParamSpec('robot_radius', 0.18, 'radius of the base [m]', min=0.05, max=1.0),
    ParamSpec('stop_margin_m', 0.10, 'stop polygon reach beyond the front at rest [m] (live: from the next '
              'command on)', min=0.0, max=2.0, read_only=False),
    ParamSpec('stop_time_s', 0.5, 'stop polygon grows by speed x this [s]', min=0.0, max=5.0),
    ParamSpec('slowdown_margin_m', 0.45, 'slowdown polygon reach beyond the front at rest [m]', min=0.0, max=5.0),
    ParamSpec('slowdown_time_s', 1.5, 'slowdown polygon grows by speed x this [s]', min=0.0, max=10.0),
    ParamSpec('slowdown_width_margin_m', 0.10, 'slowdown polygon half width beyond the robot radius [m] (keep it '
              'below the guide\'s safety_margin: shelves the plan keeps clear of must not slow every aisle)',
              min=0.0, max=2.0),
    ParamSpec('slowdown_ratio', 0.4, 'speed share kept in the slowdown polygon', min=0.0, max=1.0),
    ParamSpec('min_points', 2, 'laser points needed inside a polygon', type='int', min=1, max=100),
    ParamSpec('scan_timeout_s', 0.5, 'a scan older than this BY ITS STAMP stops the robot (Nav2 source_timeout) [s]',
              min=0.05, max=5.0),
    ParamSpec('stamp_future_tolerance_s', 0.1, 'a scan stamped further ahead of this node\'s clock stops the robot [s]',
              min=0.0, max=2.0),
    ParamSpec('max_invalid_ahead_share', 0.5, 'more invalid (NaN) beams than this share in the way: no driving',
              min=0.0, max=1.0),
    ParamSpec('max_beam_gap_deg', 5.0, 'widest angle of the way ahead (60 degrees either side) no beam may leave '
              'unlooked at: a cropped or sparse scan is blind there [deg]', min=0.1, max=120.0),
    ParamSpec('max_vx', 0.7, 'forward commands are clamped to this [m/s]', min=0.0, max=2.0),
    ParamSpec('max_reverse_vx', 0.2, 'reverse commands are clamped to this [m/s]', min=0.0, max=2.0),
    ParamSpec('max_wz', 1.5, 'turn commands are clamped to this [rad/s]', min=0.0, max=6.3),
    ParamSpec('absurd_factor', 2.0, 'a command beyond this many times its limit is refused (stop)', min=1.0, max=100.0),
]



class CollisionMonitorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('collision_monitor', **kwargs)
        self.params = cfg = declare_params(self, PARAMS, on_change=self._apply_live_params)
        if len(cfg.laser_pose) != 4:
            raise ConfigError(f'{self.get_fully_qualified_name()}: laser_pose must be [x, y, z, yaw], '
                              f'got {list(cfg.laser_pose)}')
        self.monitor = CollisionMonitor(MonitorConfig(
            robot_radius=cfg.robot_radius, stop_margin_m=cfg.stop_margin_m, stop_time_s=cfg.stop_time_s,
            slowdown_margin_m=cfg.slowdown_margin_m, slowdown_time_s=cfg.slowdown_time_s,
            slowdown_width_margin_m=cfg.slowdown_width_margin_m,
            slowdown_ratio=cfg.slowdown_ratio, min_points=cfg.min_points, max_vx=cfg.max_vx,
            max_reverse_vx=cfg.max_reverse_vx, max_wz=cfg.max_wz, absurd_factor=cfg.absurd_factor),
            SourceConfig(source_timeout_s=cfg.scan_timeout_s, future_tolerance_s=cfg.stamp_future_tolerance_s,
                         max_invalid_ahead_share=cfg.max_invalid_ahead_share,
                         max_beam_gap=math.radians(cfg.max_beam_gap_deg),
                         body_radius=cfg.robot_radius + MonitorConfig.body_margin_m))
        lx, ly, _, lyaw = cfg.laser_pose
        self.sources = [ScanSource(cfg.scan_topic, (lx, ly, lyaw), self.monitor.source, frame=cfg.laser_frame)]
        self.laser_mount = StaticMount(self, BASE_LINK, LASER, (lx, ly, lyaw), 'laser_pose', cfg.laser_tf_timeout_s,
                                       on_decided=self._on_mount)
        self._state = ''
        self._last_reason = ''
        self.counts = {'pass': 0, 'slowdown': 0, 'stop': 0, 'stale': 0, 'blind': 0, 'invalid_command': 0,
                       'clamped': 0, 'scans_refused': 0}
        self.out_pub = self.create_publisher(Twist, cfg.cmd_out_topic, 10)
        self.state_pub = self.create_publisher(String, '~/state', LATCHED)
        self.diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(Twist, cfg.cmd_in_topic, self._on_cmd, 10)
        self.scan_sub = self.create_subscription(LaserScan, cfg.scan_topic, self._on_scan, qos_profile_sensor_data)
        self.create_timer(1.0, self._publish_diagnostics)
        self._set_state('stale')
        self.get_logger().info(f'ready: {cfg.cmd_in_topic} -> {cfg.cmd_out_topic}, checked on {cfg.scan_topic}')

    def _apply_live_params(self, _name: str, _value) -> None:
        """`stop_margin_m` changed (set_parameters, a desired state's safety_distance_m): checked
        against its ParamSpec bounds by declare_params; the next command is judged with it."""
        self.monitor.set_stop_margin(self.params.stop_margin_m)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_mount(self, mount: tuple[float, float, float]) -> None:
        for source in self.sources:
            source.mount = mount

    def _on_scan(self, msg: LaserScan, source: ScanSource | None = None) -> None:
        if self.laser_mount.value is None:
            return                     # where the laser sits is not known yet: no scan, the robot stays stopped
        source = source or self.sources[0]
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9    # judged by this, never by arrival
        refused = source.update(stamp, msg.ranges, msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max,
                                now_s=self._now(), frame_id=msg.header.frame_id)
        if refused:
            self.counts['scans_refused'] += 1
            self.get_logger().warning(f'{source.name}: {refused}', throttle_duration_sec=5.0)

    def _observe(self, now: float) -> list:
        """What every source tells now; a scan topic with more than one publisher is not usable: two
        lidars in one frame (a driver started twice) cannot be told apart, and a command would be
        judged on whichever scan came last."""
        observations = [s.observe(now) for s in self.sources]
        publishers = self.count_publishers(self.scan_sub.topic_name)
        if publishers > 1:
            problem = f'{publishers} publishers on {self.scan_sub.topic_name} (two lidars in one frame?)'
            observations = [replace(o, problem=o.problem or problem) for o in observations]
        return observations

    def _on_cmd(self, msg: Twist) -> None:
        now = self._now()
        decision = self.monitor.decide(msg.linear.x, msg.angular.z, self._observe(now))
        self.counts[decision.action] += 1
        self.counts['clamped'] += int(decision.clamped)
        out = Twist()
        out.linear.x, out.angular.z = float(decision.vx), float(decision.wz)
        self.out_pub.publish(out)
        if decision.action not in ('pass', 'slowdown'):
            self._last_reason = decision.reason
        if decision.action == 'invalid_command':
            self.get_logger().error(decision.reason, throttle_duration_sec=2.0)
        if decision.action != self._state and (decision.vx or decision.wz or decision.action != 'pass'):
            if decision.action in ('stop', 'stale', 'blind'):
                self.get_logger().warning(f'{decision.action}: {decision.reason}', throttle_duration_sec=2.0)
            self._set_state(decision.action)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_pub.publish(String(data=state))

    def _publish_diagnostics(self) -> None:
        now = self._now()
        problems = [o.problem for o in self._observe(now) if o.problem]
        stamps = [s.stamp for s in self.sources if s.stamp]
        age = now - max(stamps) if stamps else math.inf
        values = dict(self.counts, state=self._state, last_stop_reason=self._last_reason,
                      scan_age_by_stamp_s=f'{age:.2f}' if math.isfinite(age) else 'never')
        if problems:
            level = DiagnosticStatus.ERROR
            message = f'laser not usable, the robot will not drive: {"; ".join(problems)}'
        elif self._state == 'invalid_command':
            level, message = DiagnosticStatus.ERROR, f'refused a velocity command: {self._last_reason}'
        elif self._state == 'blind':
            level, message = DiagnosticStatus.WARN, f'cannot see the way: {self._last_reason}'
        elif self._state == 'stop':
            level, message = DiagnosticStatus.WARN, 'stopped for something close ahead'
        else:
            level, message = DiagnosticStatus.OK, 'watching the way ahead'
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status('navigation/collision_monitor', level, message, values)]
        self.diag_pub.publish(array)


main = main_for(CollisionMonitorNode)
