"""`/navigation/base`: the mobile base on its serial port, as a ROS 2 lifecycle node.

Thin adapter: parameters, topics and the lifecycle; the rules are in base_driver.DriverCore and
the serial handling in serial_base.SerialBase. configure opens the port (and keeps retrying if it
is not there yet), activate lets cmd_vel drive the base, deactivate stops it.

Interface: subscribes /cmd_vel (Twist); publishes /odom (Odometry, odom -> base_link, 50 Hz) and
the same transform on /tf (tf2_msgs/TFMessage), base_link -> laser and base_link -> camera on
/tf_static (transient local, from `laser_pose` / `camera_pose`),
/navigation/safety (BaseSafety, transient local, on change), /navigation/battery (BatteryState),
/navigation/dock_ir (UInt8MultiArray [right, centre, left], protocol.DOCK_* bits), /diagnostics;
service /navigation/reset_safety (Trigger) clears a latched stop once the sensors are clear.
A command on /cmd_vel while more than one node publishes there is refused and stops the base (two
commanders: the base would follow whichever spoke last).
"""
from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry as OdometryMsg
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import BatteryState
from std_msgs.msg import UInt8MultiArray
from std_srvs.srv import Trigger

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.node_support import ConfigError, declare_params, diagnostic_status, main_for
from retail_ros.params import ParamSpec
from retail_interfaces.msg import BaseSafety
from retail_navigation import protocol as p
from retail_navigation.base_driver import Backoff, DriverCore, DriverLimits, FeedbackResult
from retail_navigation.serial_base import LinkState, SerialBase, describe_link
from retail_ros.tf_support import TF_QOS, TF_STATIC_QOS, TFMessage, transform

PARAMS = [
    ParamSpec('port', '/dev/ttyUSB0', 'serial device of the base (115200 8N1)'),
    ParamSpec('autostart', True, 'configure and activate right after start'),
    ParamSpec('odom_frame', 'odom', 'frame of the odometry pose'),
    ParamSpec('base_frame', 'base_link', 'frame of the robot body'),
    ParamSpec('max_vx', 0.5, 'forward speed limit [m/s]', min=0.0, max=0.7),
    ParamSpec('max_reverse_vx', 0.15, 'reverse speed limit [m/s] (no bumper at the back)', min=0.0, max=0.7),
    ParamSpec('max_wz', 1.5, 'turn rate limit [rad/s]', min=0.0, max=math.pi),
    ParamSpec('accel_x', 0.6, 'linear acceleration limit [m/s^2]', min=0.01, max=5.0),
    ParamSpec('accel_wz', 2.5, 'angular acceleration limit [rad/s^2]', min=0.01, max=20.0),
    ParamSpec('watchdog_s', 0.6, 'stop when no cmd_vel came for this long [s]', min=0.05, max=5.0),
    ParamSpec('feedback_timeout_s', 0.5, 'stop when the base has been silent this long [s]', min=0.05, max=5.0),
    ParamSpec('stall_s', 0.3, 'wheels over-current (stalled: pushing against something, no rear bumper) this long: '
              'a safety stop, latched like the bumper [s]', min=0.05, max=2.0),
    ParamSpec('control_rate_hz', 20.0, 'how often the command is re-sent [Hz]', min=10.0, max=100.0),
    ParamSpec('use_gyro', True, 'heading from the gyro (else from the wheels)'),
    ParamSpec('reconnect_initial_s', 0.2, 'first reconnect delay [s]', min=0.01, max=10.0),
    ParamSpec('reconnect_max_s', 3.0, 'longest reconnect delay [s]', min=0.1, max=60.0),
    ParamSpec('battery_full_v', 16.5, 'battery voltage when full [V]', min=1.0, max=60.0),
    ParamSpec('battery_low_v', 14.0, 'low battery: dock soon [V]', min=1.0, max=60.0),
    ParamSpec('battery_critical_v', 13.2, 'critical battery [V]', min=1.0, max=60.0),
    ParamSpec('diagnostics_period_s', 1.0, 'diagnostics and battery period [s]', min=0.1, max=60.0),
    ParamSpec('publish_tf', True, 'publish odom -> base_link on /tf and the sensor mounts on /tf_static'),
    ParamSpec('laser_frame', 'laser', 'frame of the lidar (frame_id of its LaserScan)'),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw] (m, rad)', type='float_list'),
    ParamSpec('camera_frame', 'camera', 'frame of the camera'),
    ParamSpec('camera_pose', [0.12, 0.0, 1.20, 0.0], 'base_link -> camera [x, y, z, yaw] (m, rad)',
              type='float_list'),
]



class BaseDriverNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        self.link: SerialBase | None = None      # before Node.__init__: a failed start still shuts down cleanly
        self._active = False
        super().__init__('base', **kwargs)
        self.params = declare_params(self, PARAMS)
        cfg = self.params
        self.core = DriverCore(DriverLimits(cfg.max_vx, cfg.max_reverse_vx, cfg.max_wz, cfg.accel_x,
                                            cfg.accel_wz, cfg.watchdog_s, cfg.feedback_timeout_s, cfg.stall_s),
                               use_gyro=cfg.use_gyro)
        self.odom_pub = self.create_publisher(OdometryMsg, names.ODOM, 10)
        self.safety_pub = self.create_publisher(BaseSafety, 'safety', LATCHED)
        self.battery_pub = self.create_publisher(BatteryState, 'battery', 10)
        self.dock_ir_pub = self.create_publisher(UInt8MultiArray, 'dock_ir', 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        for key in ('laser_pose', 'camera_pose'):
            if len(getattr(cfg, key)) != 4:
                raise ConfigError(f'{self.get_fully_qualified_name()}: {key} must be [x, y, z, yaw], '
                                  f'got {list(getattr(cfg, key))}')
        self.tf_pub = self.create_publisher(TFMessage, names.TF, TF_QOS) if cfg.publish_tf else None
        if cfg.publish_tf:
            self.tf_static_pub = self.create_publisher(TFMessage, names.TF_STATIC, TF_STATIC_QOS)
            stamp = self.get_clock().now().to_msg()
            self.tf_static_pub.publish(TFMessage(transforms=[
                transform(stamp, cfg.base_frame, frame, x, y, yaw, z)
                for frame, (x, y, z, yaw) in ((cfg.laser_frame, cfg.laser_pose), (cfg.camera_frame, cfg.camera_pose))]))
        self.cmd_sub = self.create_subscription(Twist, names.CMD_VEL, self._on_cmd_vel, 10)
        self.create_service(Trigger, 'reset_safety', self._on_reset_safety)
        self.create_timer(cfg.diagnostics_period_s, self._on_slow_timer)
        self._publish_safety()

    # --- lifecycle ----------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        cfg = self.params
        self.link = SerialBase(cfg.port, self.core, control_rate_hz=cfg.control_rate_hz,
                               backoff=Backoff(cfg.reconnect_initial_s, cfg.reconnect_max_s),
                               on_feedback=self._on_feedback, on_link=self._on_link).start()
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = True
        self._publish_safety()             # what the latch holds now, whatever came while inactive
        if self.link is not None:
            self.link.commanding = True
        if self.link is not None and self.link.state != LinkState.CONNECTED:
            self.get_logger().info(f'base driving enabled; cmd_vel drives the base once it answers on {self.link.port}')
        else:
            self.get_logger().info('base driving enabled (cmd_vel accepted)')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_driving()
        self.get_logger().info('base driving disabled; motors stopped')
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        self._release()
        super().destroy_node()

    def _stop_driving(self) -> None:
        self._active = False
        if self.link is not None:
            self.link.stop_motion()
            self.link.commanding = False

    def _release(self) -> None:
        if self.link is not None:
            self._stop_driving()
            self.link.on_link = None     # at shutdown the ROS context (and its logger) may be gone
            self.link.close()
            self.link = None

    # --- ROS side -----------------------------------------------------------------------------

    def _on_cmd_vel(self, msg: Twist) -> None:
        if not self._active or self.link is None:
            return
        publishers = self.count_publishers(self.cmd_sub.topic_name)     # remapped: its real name
        if publishers > 1:
            # Two commanders (a teleop or a replay beside the collision monitor): the base would drive
            # on whichever spoke last, a stop of one undone by the other 50 ms later. Hold still.
            self.link.stop_motion()
            self.get_logger().error(
                f'{publishers} publishers on {self.cmd_sub.topic_name}: commands refused, base stopped until only one '
                'is left (the collision monitor)', throttle_duration_sec=5.0)
            return
        self.link.set_velocity(msg.linear.x, msg.angular.z)

    def _on_reset_safety(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        lock = self.link.core_lock if self.link is not None else None
        if lock is not None:
            with lock:
                response.success, response.message = self.core.reset_safety()
        else:
            response.success, response.message = self.core.reset_safety()
        if response.success:
            self.get_logger().info(f'safety reset: {response.message}')
        else:
            self.get_logger().warning(f'safety reset refused: {response.message}')
        self._publish_safety()
        return response

    def _on_link(self, state: LinkState, message: str) -> None:
        # rclpy wants one severity per call site: two calls, not one with a chosen method.
        if state in (LinkState.CONNECTED, LinkState.CONNECTING, LinkState.CLOSED):
            self.get_logger().info(f'base link {state.value}: {message}')
        elif state == LinkState.MISSING:
            self.get_logger().error(f'{message}; the rest of the robot keeps running, the base cannot move')
        else:
            self.get_logger().warning(f'base link {state.value}: {message}')

    def _on_feedback(self, result: FeedbackResult) -> None:
        if result.malformed:
            self.get_logger().warning(f'skipped a malformed sub-payload: {result.malformed[0]}',
                                   throttle_duration_sec=5.0)
        if result.odometry_jump:
            self.get_logger().warning(f'odometry: {result.odometry_jump}', throttle_duration_sec=5.0)
        if result.odometry and self._active:
            self._publish_odom()
        if result.safety_changed:          # active or not: the latch holds the base after activation too
            safety = self.core.safety
            if safety.latched and safety.triggered:
                self.get_logger().error(f'base stopped for safety ({safety.describe_sensors()}); '
                                        'motors held until clear and reset_safety is called')
            self._publish_safety()

    def _publish_odom(self) -> None:
        pose = self.core.pose
        msg = OdometryMsg()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.odom_frame
        msg.child_frame_id = self.params.base_frame
        msg.pose.pose.position.x = pose.x
        msg.pose.pose.position.y = pose.y
        msg.pose.pose.orientation.z = math.sin(pose.theta / 2.0)
        msg.pose.pose.orientation.w = math.cos(pose.theta / 2.0)
        msg.twist.twist.linear.x = pose.vx
        msg.twist.twist.angular.z = pose.wz
        for cov, (lin, ang) in ((msg.pose.covariance, (0.01, 0.02)), (msg.twist.covariance, (0.01, 0.02))):
            cov[0] = cov[7] = lin
            cov[14] = cov[21] = cov[28] = 1e6      # z, roll, pitch: not observed (planar base)
            cov[35] = ang
        self.odom_pub.publish(msg)
        if self.tf_pub is not None:
            self.tf_pub.publish(TFMessage(transforms=[transform(
                msg.header.stamp, msg.header.frame_id, msg.child_frame_id, pose.x, pose.y, pose.theta)]))

    def _publish_safety(self) -> None:
        s = self.core.safety
        msg = BaseSafety()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.params.base_frame
        msg.bumper_left, msg.bumper_centre, msg.bumper_right = (
            bool(s.bumper & p.BUMPER_LEFT), bool(s.bumper & p.BUMPER_CENTRE), bool(s.bumper & p.BUMPER_RIGHT))
        msg.cliff_left, msg.cliff_centre, msg.cliff_right = (
            bool(s.cliff & p.CLIFF_LEFT), bool(s.cliff & p.CLIFF_CENTRE), bool(s.cliff & p.CLIFF_RIGHT))
        msg.wheel_drop_left = bool(s.wheel_drop & p.WHEEL_DROP_LEFT)
        msg.wheel_drop_right = bool(s.wheel_drop & p.WHEEL_DROP_RIGHT)
        msg.latched = s.latched
        msg.reason = s.reason
        self.safety_pub.publish(msg)

    def _on_slow_timer(self) -> None:
        if self.link is None:
            return
        if self.link.state in (LinkState.MISSING, LinkState.DISCONNECTED):
            self.get_logger().warning(describe_link(self.link.port, self.link.state, self.link.stats.last_error),
                                      throttle_duration_sec=30.0, skip_first=True)
        basic = self.core.basic
        if self._active and basic is not None:
            self._publish_battery(basic)
            ir = self.core.docking_ir
            if ir is not None:
                self.dock_ir_pub.publish(UInt8MultiArray(data=[ir.right, ir.centre, ir.left]))
        self._publish_diagnostics()

    def _publish_battery(self, basic: p.BasicSensorData) -> None:
        cfg = self.params
        msg = BatteryState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.voltage = basic.battery_v
        msg.current = math.nan
        msg.charge = msg.capacity = msg.design_capacity = math.nan
        msg.temperature = math.nan
        span = cfg.battery_full_v - cfg.battery_critical_v
        msg.percentage = min(1.0, max(0.0, (basic.battery_v - cfg.battery_critical_v) / span)) if span > 0 else math.nan
        if basic.charger in (p.CHARGER_DOCKED_CHARGING, p.CHARGER_ADAPTER_CHARGING):
            msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_CHARGING
        elif basic.charger in (p.CHARGER_DOCKED_CHARGED, p.CHARGER_ADAPTER_CHARGED):
            msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_FULL
        else:
            msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        msg.power_supply_health = (BatteryState.POWER_SUPPLY_HEALTH_DEAD if basic.battery_v <= cfg.battery_critical_v
                                   else BatteryState.POWER_SUPPLY_HEALTH_GOOD)
        msg.power_supply_technology = BatteryState.POWER_SUPPLY_TECHNOLOGY_LION
        msg.present = True
        msg.location = 'base'
        self.battery_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        link, core = self.link, self.core
        assert link is not None            # the slow timer returns before without a link
        decoder = link.decoder
        publishers = self.count_publishers(self.cmd_sub.topic_name)
        values = {
            'port': link.port, 'link_state': link.state.value, 'frames_ok': decoder.frames_ok,
            'frames_bad': decoder.frames_bad, 'frame_error_rate': f'{decoder.error_rate:.4f}',
            'bytes_skipped': decoder.bytes_skipped, 'connects': link.stats.connects,
            'disconnects': link.stats.disconnects, 'watchdog_stops': core.watchdog_stops,
            'safety_latched': core.safety.latched,
            'cmd_vel_publishers': publishers,
            'over_current': core.basic.over_current if core.basic is not None else '',
            'hardware_version': core.info.hardware_version,
            'firmware_version': core.info.firmware_version, 'unique_id': core.info.unique_id,
            'last_error': link.stats.last_error,
        }
        if core.basic is not None:
            values['battery_v'] = f'{core.basic.battery_v:.1f}'
        if link.state != LinkState.CONNECTED:
            level, message = DiagnosticStatus.ERROR, describe_link(link.port, link.state, link.stats.last_error)
        elif core.safety.latched:
            level, message = DiagnosticStatus.WARN, f'safety stop latched: {core.safety.reason}'
        elif publishers > 1:
            level, message = DiagnosticStatus.ERROR, (f'{publishers} publishers on {self.cmd_sub.topic_name}: '
                                                      'commands refused, base stopped')
        elif decoder.error_rate > 0.05:
            level, message = DiagnosticStatus.WARN, f'noisy serial line: {100 * decoder.error_rate:.1f} % bad frames'
        elif core.basic is not None and core.basic.battery_v <= self.params.battery_low_v:
            level, message = DiagnosticStatus.WARN, f'battery low: {core.basic.battery_v:.1f} V'
        else:
            level, message = DiagnosticStatus.OK, f'base connected on {link.port}'
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status('navigation/base: serial link', level, message, values,
                                          hardware_id=core.info.unique_id)]
        self.diag_pub.publish(array)


main = main_for(BaseDriverNode)
