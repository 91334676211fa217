"""`/navigation/guide`: walks customers to places — the GuideTo and Tour action servers.

Thin adapter: the decisions are taken by `supervisor.Supervisor` (goals, safety stop, odometry
and localisation pauses, docking, staff requests, outcome events, who is the customer) and
`guide.Mission` (planning, following, waiting, replanning, tour stops). This node converts
messages into the supervisor's `Inputs`, calls `step()` at `control_rate_hz` and carries out the
commands of its `Tick`.

- actions `/navigation/guide_to` (GuideTo) and `/navigation/tour` (Tour); one mission at a time:
  a new goal replaces the running one (which ends `preempted`); service
  `/navigation/skip_tour_stop` (SkipTourStop): the running tour leaves that stop out;
- drives its own command topic `cmd_vel_topic` (Twist, `/navigation/guide/cmd_vel`; the collision
  monitor passes it on to `/cmd_vel`); reads `/odom`, `/navigation/safety` (BaseSafety: a latched
  stop ends the mission with `safety_stop` and holds everything until staff reset the base; a
  bumper hit becomes an obstacle), `/navigation/battery` (BatteryState: docking when idle and low)
  and the people seen by perception (`people_topic`, geometry_msgs/PoseArray, in the base frame
  or `map_frame`; judged by their stamps: older than `people_stale_s`, future or zero stamps are
  not used; without a fresh message for `people_timeout_s` a mission drives at `near_people_vx`);
- publishes `/map` (OccupancyGrid, transient local), `plan` (nav_msgs/Path) and `arrivals`
  (PlaceArrival, at every GuideTo goal and tour stop); sends a `guide` event (status `ended`,
  one per mission) and `staff_request` events;
- marks what the lidar sees that is not on the map (`scan_topic`; the lidar's mount base_link -> laser
  read once from /tf_static, `laser_pose` only when none comes within `laser_tf_timeout_s`) in
  the costmap's obstacle layer,
  reading the ranges as REP-117 says (-inf: an obstacle at range_min; +inf: free; NaN and
  out-of-range: ignored) and only from scans fresh by their header stamp.

Stamps: odometry and scans are judged by their header stamps against this node's clock (the
supervisor decides: a stale, frozen, future or zero stamp pauses the mission with the base
stopped), never by when they arrived.

Frames: with `localization` on, the map pose is `map_frame -> odom_frame` (from /tf, published by
/navigation/localization) ∘ odom; without it the robot starts at `initial_pose` (default: the
dock zone) and its map pose is initial_pose ∘ odom.
"""
from __future__ import annotations

import math
import threading
import time
from array import array
from pathlib import Path
from collections.abc import Callable
from typing import Any

from geometry_msgs.msg import PoseArray, PoseStamped, Quaternion, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path as PathMsg
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import BatteryState, LaserScan
from std_msgs.msg import String

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.event_sender import EventSender
from retail_common.events import EventPayload
from retail_ros.node_support import ConfigError, declare_params, live_store_for, main_for, watch_store
from retail_ros.params import ParamSpec
from retail_common.store import StoreError
from retail_interfaces.action import GuideTo, Tour
from retail_interfaces.msg import BaseSafety, PlaceArrival
from retail_interfaces.srv import SkipTourStop
from retail_navigation import frames
from retail_navigation.costmap import Costmap
from retail_navigation.follower import FollowerConfig
from retail_navigation.guide import GuideConfig, Outcome, Stop
from retail_navigation.laserscan import MAX_BEAMS, stamp_problem, stamp_s
from retail_navigation.maps import MapError, load_map
from retail_navigation.planner import GlobalPlanner, densify
from retail_navigation.supervisor import (Arrived, Battery, Drive, EndGoal, Feedback, Goal, Inputs, Log,
                                          ShowPath, Supervisor, SupervisorConfig, Tick, WAIT_STATES, bumper_marks,
                                          map_pose)
from retail_ros.tf_support import TF_QOS, StaticMount, TFMessage, planar
from retail_navigation.zones import load_zones_store

PARAMS = [
    ParamSpec('store_dir', '', 'store folder with map.yaml and zones.yaml'),
    ParamSpec('data_dir', '', "robot data folder: the platform's data in <data_dir>/platform overlays the store"),
    ParamSpec('map_yaml', '', 'map file (default: <store_dir>/map.yaml)'),
    ParamSpec('zones_yaml', '', 'zones file (default: <store_dir>/zones.yaml)'),
    ParamSpec('initial_pose', [0.0], 'map pose [x, y, theta] where odometry started (default: the dock zone)',
              type='float_list'),
    ParamSpec('robot_radius', 0.18, 'radius of the base [m]', min=0.05, max=1.0),
    ParamSpec('safety_margin', 0.12, 'extra distance kept from shelves and walls [m]', min=0.0, max=1.0),
    ParamSpec('control_rate_hz', 10.0, 'cmd_vel rate while guiding [Hz]', min=5.0, max=50.0),
    ParamSpec('max_vx', 0.45, 'guiding speed [m/s]', min=0.05, max=1.0, read_only=False),
    ParamSpec('near_people_vx', 0.45, 'speed cap while a person is within person_slow_m of the robot [m/s]',
              min=0.05, max=0.6, read_only=False),
    ParamSpec('max_wz', 1.2, 'turn rate limit [rad/s]', min=0.1, max=3.0, read_only=False),
    ParamSpec('goal_tolerance_m', 0.15, 'how close to a stop counts as there [m]', min=0.02, max=1.0, read_only=False),
    ParamSpec('goal_yaw_tolerance_rad', 0.25, 'heading tolerance at a stop [rad]', min=0.01, max=3.2, read_only=False),
    ParamSpec('replan_after_s', 2.0, 'wait this long for a blocked way before replanning [s]', min=0.1, max=60.0, read_only=False),
    ParamSpec('blocked_timeout_s', 15.0, 'give up (result blocked) after this long blocked [s]', min=0.5, max=600.0, read_only=False),
    ParamSpec('person_decay_s', 2.0, 'a person not seen again is forgotten after [s]', min=0.1, max=60.0),
    ParamSpec('bumper_decay_s', 30.0, 'an obstacle the bumper hit is forgotten after [s]', min=1.0, max=3600.0),
    ParamSpec('people_topic', names.PEOPLE, 'people positions (geometry_msgs/PoseArray)'),
    ParamSpec('people_stale_s', 1.0, 'people older than this BY THEIR STAMP are not marked (a late face '
              'pipeline would place them where they were) [s]', min=0.05, max=10.0, read_only=False),
    ParamSpec('people_timeout_s', 2.0, 'no people message (empty ones count) fresh by its stamp for this long: '
              'guide at near_people_vx, who is near is not known [s]', min=0.1, max=60.0, read_only=False),
    ParamSpec('default_tour', 'showroom', 'tour used when a Tour goal names none'),
    ParamSpec('tour_dwell_s', 3.0, 'pause at each tour stop for the narration [s]', min=0.0, max=600.0, read_only=False),
    ParamSpec('dock_below_fraction', 0.2, 'battery share below which the robot docks when idle (0: never)',
              min=0.0, max=1.0, read_only=False),
    ParamSpec('dock_retry_s', 30.0, 'wait after a failed docking before the next try, doubled each time [s]',
              min=1.0, max=3600.0, read_only=False),
    ParamSpec('dock_attempts', 3, 'failed dockings in one low-battery episode before staff are called',
              type='int', min=1, max=20, read_only=False),
    ParamSpec('staff_repeat_s', 600.0, 'the same staff request is not sent again sooner [s]',
              min=10.0, max=86400.0, read_only=False),
    ParamSpec('odom_stale_s', 1.0, 'odometry older than this pauses the mission and stops the base [s]',
              min=0.1, max=10.0, read_only=False),
    ParamSpec('odom_resume_s', 0.5, 'a paused mission drives on after odometry is fresh this long [s]',
              min=0.0, max=10.0, read_only=False),
    ParamSpec('odom_timeout_s', 10.0, 'a paused mission ends (no_odometry) when odometry stays away this long [s]',
              min=0.2, max=120.0, read_only=False),
    ParamSpec('scan_stale_s', 0.5, 'a scan older than this BY ITS STAMP pauses the mission and stops the base [s]',
              min=0.05, max=10.0, read_only=False),
    ParamSpec('scan_resume_s', 0.5, 'a paused mission drives on after scans are fresh this long [s]',
              min=0.0, max=10.0, read_only=False),
    ParamSpec('scan_timeout_s', 10.0, 'a paused mission ends (no_lidar) when no fresh scan comes this long [s]',
              min=0.2, max=120.0, read_only=False),
    ParamSpec('stamp_future_tolerance_s', 0.1, 'odometry or a scan stamped further ahead of this node\'s clock '
              'is stale [s]', min=0.0, max=2.0, read_only=False),
    ParamSpec('degraded_speed_factor', 0.5, 'share of max_vx while the localisation is degraded',
              min=0.05, max=1.0, read_only=False),
    ParamSpec('cmd_vel_topic', names.GUIDE_CMD_VEL, 'the guide\'s velocity command (to the collision monitor)'),
    ParamSpec('localization', True, 'map pose from /navigation/localization (map -> odom on /tf); '
              'false: initial_pose ∘ odometry'),
    ParamSpec('localization_timeout_s', 15.0, 'a mission waiting this long for localisation ends (not_localised) [s]',
              min=0.5, max=600.0),
    ParamSpec('map_frame', frames.MAP, 'frame of the store map (paths, arrivals, goals, /map)'),
    ParamSpec('odom_frame', frames.ODOM, 'frame of the odometry (the localisation publishes map_frame -> it)'),
    ParamSpec('scan_topic', names.SCAN, 'lidar (sensor_msgs/LaserScan) for the costmap obstacle layer; empty: none'),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw], used only when no '
              'base_link -> laser comes on /tf_static within laser_tf_timeout_s', type='float_list'),
    ParamSpec('laser_tf_timeout_s', 2.0, 'wait this long for the lidar mount on /tf_static before using laser_pose [s]',
              min=0.1, max=60.0),
    ParamSpec('scan_decay_s', 3.0, 'a lidar obstacle not seen again is forgotten after [s]', min=0.1, max=600.0),
    ParamSpec('customer_distance_m', 0.9, 'people seen closer than this during a mission, beside or behind (not '
              'within 60 degrees of the heading), are the customer',
              min=0.0, max=3.0, read_only=False),
]
CHARGING = (BatteryState.POWER_SUPPLY_STATUS_CHARGING, BatteryState.POWER_SUPPLY_STATUS_FULL)


class _Done:
    """The result of a running goal, handed from the control loop to the waiting execute callback."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._result = None

    def set_result(self, result) -> None:
        self._result = result
        self._event.set()

    def wait(self, timeout_s: float) -> bool:
        return self._event.wait(timeout_s)

    def result(self):
        return self._result


class _GoalRecord:
    """An accepted goal as the node keeps it: its handle, how to build its result, who waits."""

    def __init__(self, handle, make_result: Callable, make_feedback: Callable) -> None:
        self.handle = handle
        self.make_result = make_result
        self.make_feedback = make_feedback
        self.done = _Done()


class GuideNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('guide', **kwargs)
        self.params = cfg = declare_params(self, PARAMS, on_change=self._apply_live_params)
        self.store_map, self.zones = self._load_store(cfg)
        self.costmap = Costmap(self.store_map, cfg.robot_radius, cfg.safety_margin,
                               person_decay_s=cfg.person_decay_s, bumper_decay_s=cfg.bumper_decay_s,
                               scan_decay_s=cfg.scan_decay_s)
        if len(cfg.laser_pose) != 4:
            raise ConfigError(f'{self.get_fully_qualified_name()}: laser_pose must be [x, y, z, yaw], '
                              f'got {list(cfg.laser_pose)}')
        self.planner = GlobalPlanner(self.costmap)
        self.planner.prepare()
        if len(cfg.initial_pose) == 3:
            self.initial_pose = tuple(cfg.initial_pose)
        elif cfg.initial_pose == [0.0] and 'dock' in self.zones.zones:
            self.initial_pose = self.zones.zones['dock'].pose
        else:
            raise ConfigError(f'{self.get_fully_qualified_name()}: initial_pose must be [x, y, theta], '
                              f'got {list(cfg.initial_pose)}')
        if cfg.default_tour not in self.zones.tours:
            raise ConfigError(f'{self.get_fully_qualified_name()}: default_tour {cfg.default_tour!r} is not in '
                              f'{self.zones.zones_path} (tours: {", ".join(self.zones.tours) or "none"})')

        self._lock = threading.Lock()
        follower, guide = self._configs()
        self.supervisor = Supervisor(self.planner, self._supervisor_config(), follower, guide, self._dock_stop())
        self.inputs = Inputs()
        self._pose: tuple[float, float, float] | None = None
        self.scans_not_marked = 0                  # scans stale by their stamp or malformed: not in the costmap
        self.people_not_marked = 0                 # people messages stale by their stamp: not in the costmap
        self._goals: dict[int, _GoalRecord] = {}
        self._next_goal_id = 1
        self.control_steps = 0                     # supervisor steps run (tests wait on it, not on the clock)

        sensors = MutuallyExclusiveCallbackGroup()
        actions = ReentrantCallbackGroup()
        self.cmd_pub = self.create_publisher(Twist, cfg.cmd_vel_topic, 10)
        self.events = EventSender(self, 'navigation')    # mission outcomes, staff requests for the platform
        self.plan_pub = self.create_publisher(PathMsg, 'plan', LATCHED)
        self.arrival_pub = self.create_publisher(PlaceArrival, 'arrivals', 10)
        self.map_pub = self.create_publisher(OccupancyGrid, names.MAP, LATCHED)
        self.create_subscription(Odometry, names.ODOM, self._on_odom, 20, callback_group=sensors)
        self.create_subscription(BaseSafety, 'safety', self._on_safety, LATCHED, callback_group=sensors)
        self.create_subscription(BatteryState, 'battery', self._on_battery, 10, callback_group=sensors)
        self.create_subscription(PoseArray, cfg.people_topic, self._on_people, 10, callback_group=sensors)
        if cfg.localization:
            self.create_subscription(TFMessage, names.TF, self._on_tf, TF_QOS, callback_group=sensors)
            self.create_subscription(String, names.LOCALIZATION_STATE, self._on_localization_state, LATCHED,
                                     callback_group=sensors)
        self.laser_mount: StaticMount | None = None
        if cfg.scan_topic:
            lx, ly, _, lyaw = cfg.laser_pose
            self.laser_mount = StaticMount(self, frames.BASE_LINK, frames.LASER, (lx, ly, lyaw), 'laser_pose',
                                           cfg.laser_tf_timeout_s, callback_group=sensors)
            self.create_subscription(LaserScan, cfg.scan_topic, self._on_scan, qos_profile_sensor_data,
                                     callback_group=sensors)
        self.create_timer(1.0 / cfg.control_rate_hz, self._control, callback_group=sensors)
        self.guide_server = ActionServer(
            self, GuideTo, 'guide_to', execute_callback=self._execute_guide, goal_callback=self._on_goal,
            cancel_callback=self._on_cancel, callback_group=actions)
        self.tour_server = ActionServer(
            self, Tour, 'tour', execute_callback=self._execute_tour, goal_callback=self._on_goal,
            cancel_callback=self._on_cancel, callback_group=actions)
        self.create_service(SkipTourStop, 'skip_tour_stop', self._on_skip, callback_group=sensors)
        self._publish_map()
        self.get_logger().info(
            f'ready: {self.store_map.source} ({self.store_map.size_m[0]:.0f} x {self.store_map.size_m[1]:.0f} m), '
            f'{len(self.zones.zones)} zones, start pose {self.initial_pose[0]:.2f},{self.initial_pose[1]:.2f}')

    # --- set-up -------------------------------------------------------------------------------
    @property
    def _mission(self):
        """The running mission (read by tests and tools)."""
        return self.supervisor.mission

    @property
    def _odom_pose(self):
        return self.inputs.odom_pose

    def _configs(self) -> tuple[FollowerConfig, GuideConfig]:
        cfg = self.params
        return (FollowerConfig(max_vx=cfg.max_vx, max_wz=cfg.max_wz, goal_tolerance_m=cfg.goal_tolerance_m,
                               goal_yaw_tolerance_rad=cfg.goal_yaw_tolerance_rad, near_people_vx=cfg.near_people_vx),
                GuideConfig(replan_after_s=cfg.replan_after_s, blocked_timeout_s=cfg.blocked_timeout_s,
                            dwell_s=cfg.tour_dwell_s, eta_speed=min(0.35, 0.8 * cfg.max_vx)))

    def _supervisor_config(self) -> SupervisorConfig:
        cfg = self.params
        return SupervisorConfig(
            localization=cfg.localization, initial_pose=self.initial_pose, control_period_s=1.0 / cfg.control_rate_hz,
            odom_stale_s=cfg.odom_stale_s, odom_resume_s=cfg.odom_resume_s, odom_timeout_s=cfg.odom_timeout_s,
            scan_required=bool(cfg.scan_topic), scan_stale_s=cfg.scan_stale_s, scan_resume_s=cfg.scan_resume_s,
            scan_timeout_s=cfg.scan_timeout_s, stamp_future_tolerance_s=cfg.stamp_future_tolerance_s,
            degraded_speed_factor=cfg.degraded_speed_factor,
            localization_timeout_s=cfg.localization_timeout_s, dock_below_fraction=cfg.dock_below_fraction,
            dock_retry_s=cfg.dock_retry_s, dock_attempts=cfg.dock_attempts, staff_repeat_s=cfg.staff_repeat_s,
            customer_distance_m=cfg.customer_distance_m, bumper_reach_m=cfg.robot_radius + 0.05,
            people_required=bool(cfg.people_topic), people_timeout_s=cfg.people_timeout_s)

    def _dock_stop(self) -> Stop | None:
        return self._zone_stop('dock') if 'dock' in self.zones.zones else None

    def _apply_live_params(self, _name: str, _value) -> None:
        """A live parameter changed (set_parameters): the running mission drives with it at once."""
        follower, guide = self._configs()
        with self._lock:
            self.supervisor.set_configs(follower, guide)
            self.supervisor.config = self._supervisor_config()

    def _on_store_swap(self, store) -> None:
        """New zones or tours from the store: used from the next goal on (the map stays)."""
        self.zones = store
        with self._lock:
            self.supervisor.dock = self._dock_stop()

    def _load_store(self, cfg) -> tuple:
        if cfg.store_dir and not cfg.zones_yaml:
            # The store model: the same zones.yaml reader and error line as every other node.
            store_dir = Path(cfg.store_dir).expanduser()
            try:
                store_map = load_map(Path(cfg.map_yaml).expanduser() if cfg.map_yaml else store_dir / 'map.yaml')
            except MapError as exc:
                raise ConfigError(f'{self.get_fully_qualified_name()}: {exc}') from None
            live = live_store_for(self, str(store_dir), cfg.data_dir)
            watch_store(self, live, self._on_store_swap)
            return store_map, live.current()
        store = Path(cfg.store_dir).expanduser() if cfg.store_dir else None
        map_path = Path(cfg.map_yaml).expanduser() if cfg.map_yaml else (store / 'map.yaml' if store else None)
        zones_path = Path(cfg.zones_yaml).expanduser() if cfg.zones_yaml else (store / 'zones.yaml' if store else None)
        if map_path is None or zones_path is None:
            raise ConfigError(f'{self.get_fully_qualified_name()}: set store_dir (or map_yaml and zones_yaml)')
        try:
            return load_map(map_path), load_zones_store(zones_path)
        except (MapError, StoreError) as exc:
            raise ConfigError(f'{self.get_fully_qualified_name()}: {exc}') from None

    def _publish_map(self) -> None:
        m = self.store_map
        msg = OccupancyGrid()
        msg.header.frame_id = self.params.map_frame
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.info.resolution = float(m.resolution)
        msg.info.width, msg.info.height = m.width, m.height
        msg.info.origin.position.x, msg.info.origin.position.y = float(m.origin[0]), float(m.origin[1])
        qx, qy, qz, qw = frames.quaternion_xyzw(m.origin[2])
        msg.info.origin.orientation = Quaternion(x=qx, y=qy, z=qz, w=qw)
        msg.data = array('b', m.grid.tobytes())
        self.map_pub.publish(msg)

    def _map_frames(self) -> tuple[str, ...]:
        """Frame ids that mean the store map."""
        return (self.params.map_frame, self.zones.frame_id)

    # --- inputs: messages into the supervisor's Inputs ----------------------------------------
    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        pose = (p.position.x, p.position.y, frames.yaw_of(p.orientation))
        if not all(map(math.isfinite, pose)):
            # kept out: the last good pose ages by its stamp, the mission waits for odometry, then ends
            self.get_logger().warning(f'{names.ODOM}: odometry pose is not a number {pose}: ignored',
                                      throttle_duration_sec=5.0)
            return
        with self._lock:
            self.inputs.odom_pose = pose
            self.inputs.odom_stamp = stamp_s(msg.header.stamp)      # judged by this, never by arrival
            self._update_pose()

    def _clock_now(self) -> float:
        """This node's clock: the clock of header stamps."""
        return self.get_clock().now().nanoseconds * 1e-9

    def _update_pose(self) -> None:
        self._pose = map_pose(self.supervisor.config, self.inputs)

    def _on_tf(self, msg) -> None:
        parent, child = self.params.map_frame, self.params.odom_frame
        for t in msg.transforms:
            if t.header.frame_id == parent and t.child_frame_id == child:
                correction = planar(t)
                if not all(map(math.isfinite, correction)):
                    self.get_logger().warning(f'{parent} -> {child} is not a number {correction}: ignored',
                                              throttle_duration_sec=5.0)
                    return
                with self._lock:
                    if self.inputs.localization_state in WAIT_STATES:
                        return             # the old correction, republished while the localisation searches
                    self.inputs.map_to_odom = correction
                    self._update_pose()

    def _on_localization_state(self, msg: String) -> None:
        with self._lock:
            self.inputs.localization_state = msg.data
            if msg.data in WAIT_STATES:    # the old map -> odom is not trusted: wait for the new one
                self.inputs.map_to_odom = None
            self._update_pose()

    def _on_scan(self, msg: LaserScan) -> None:
        stamp = stamp_s(msg.header.stamp)                      # judged by this, never by arrival
        n = len(msg.ranges)
        geometry = (msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max)
        if not 0 < n <= MAX_BEAMS or not all(map(math.isfinite, geometry)) or not 0.0 <= msg.range_min < msg.range_max:
            self.scans_not_marked += 1
            self.get_logger().warning(f'{self.params.scan_topic}: malformed scan ({n} ranges, angle_min '
                                      f'{msg.angle_min}, increment {msg.angle_increment}, range {msg.range_min}..'
                                      f'{msg.range_max}): ignored', throttle_duration_sec=5.0)
            return
        with self._lock:
            self.inputs.clock_now = self._clock_now()
            kept = self.inputs.scan_stamp
            # the newest stamp, unless the kept one lies in the future beyond the tolerance: one glitched
            # stamp must not hold the guide until a restart (the collision monitor's rule)
            if math.isfinite(stamp) and (kept is None or stamp > kept or
                                         kept - self.inputs.clock_now > self.params.stamp_future_tolerance_s):
                self.inputs.scan_stamp = stamp
            problem = stamp_problem('scan', stamp, self.inputs.clock_now, self.params.scan_stale_s,
                                    self.params.stamp_future_tolerance_s, 'lidar')
            pose = self._pose
            mount = self.laser_mount.value if self.laser_mount is not None else None
            if problem or pose is None or mount is None:
                if problem:
                    self.scans_not_marked += 1
                    self.get_logger().warning(f'{self.params.scan_topic}: {problem}: not used',
                                              throttle_duration_sec=5.0)
                return
            self.costmap.update_laser(frames.compose(pose, mount), pose[:2], msg.ranges, msg.angle_min,
                                      msg.angle_increment, msg.range_min, msg.range_max, time.monotonic())

    def _on_safety(self, msg: BaseSafety) -> None:
        pressed = {'left': msg.bumper_left, 'centre': msg.bumper_centre, 'right': msg.bumper_right}
        with self._lock:
            self.inputs.safety_latched, self.inputs.safety_reason = bool(msg.latched), msg.reason
            if self._pose is not None:
                now = time.monotonic()
                for x, y in bumper_marks(self._pose, pressed, self.supervisor.config.bumper_reach_m):
                    self.costmap.add_bumper_hit(x, y, now)

    def _on_battery(self, msg: BatteryState) -> None:
        with self._lock:
            self.inputs.battery = Battery(float(msg.percentage), msg.power_supply_status in CHARGING)

    def _on_people(self, msg: PoseArray) -> None:
        # judged by the stamp, never by arrival: a late face pipeline would place people where they
        # were seen from where the robot is now, and keep them person_decay_s from the late arrival
        problem = stamp_problem('people', stamp_s(msg.header.stamp), self._clock_now(), self.params.people_stale_s,
                                self.params.stamp_future_tolerance_s, 'perception')
        if problem:
            self.people_not_marked += 1
            self.get_logger().warning(f'{self.params.people_topic}: {problem}: not used', throttle_duration_sec=5.0)
            return
        with self._lock:
            stamp = stamp_s(msg.header.stamp)
            if self.inputs.people_stamp is None or stamp > self.inputs.people_stamp:
                self.inputs.people_stamp = stamp       # the people sensor spoke (nobody there counts too)
        points = [(p.position.x, p.position.y) for p in msg.poses]
        pose = self._pose
        if msg.header.frame_id not in self._map_frames():
            if pose is None:
                return
            points = [frames.transform_point(pose, p) for p in points]
        usable = [p for p in points if self.costmap.placeable(*p)]
        if len(usable) < len(points):
            self.get_logger().warning(f'{self.params.people_topic}: {len(points) - len(usable)} of {len(points)} '
                                      'people at no usable place (NaN, inf or far off the map): left out',
                                      throttle_duration_sec=5.0)
            points = usable
        with self._lock:
            now = time.monotonic()
            self.inputs.clock_now = self._clock_now()
            self.costmap.set_people(self.supervisor.people_to_mark(points, pose, self.inputs), now)

    # --- actions ------------------------------------------------------------------------------
    def _on_goal(self, _request) -> GoalResponse:
        return GoalResponse.ACCEPT            # a new goal replaces the running one (the supervisor decides)

    def _on_cancel(self, _goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _on_skip(self, request, response):
        with self._lock:
            why_not = self.supervisor.skip_stop(int(request.stop_index))
        response.success, response.message = why_not is None, why_not or f'stop {request.stop_index} skipped'
        self.get_logger().info(f'skip tour stop {request.stop_index}: {response.message}')
        return response

    def _zone_stop(self, zone_id: str, narration_zh: str = '', narration_en: str = '') -> Stop:
        zone = self.zones.zones[zone_id]
        return Stop(label=zone.label, pose=zone.pose, zone=zone_id, narration_zh=narration_zh,
                    narration_en=narration_en)

    def _execute_guide(self, goal_handle):
        request = goal_handle.request

        def result(outcome: Outcome, travelled: float = 0.0, _visited: int = 0) -> GuideTo.Result:
            return GuideTo.Result(success=outcome.success, reason=outcome.reason, distance_travelled_m=travelled)

        def feedback(f: Feedback) -> GuideTo.Feedback:
            return GuideTo.Feedback(distance_remaining_m=f.remaining_m, eta_s=f.eta_s, state=f.state)

        if request.zone:
            if request.zone not in self.zones.zones:
                return self._refuse(goal_handle, result, Outcome(False, 'unknown_zone', f'no zone {request.zone!r}'))
            stop = self._zone_stop(request.zone)
        else:
            frame = request.target_pose.header.frame_id
            if frame not in ('', *self._map_frames()):
                return self._refuse(goal_handle, result, Outcome(
                    False, 'bad_frame', f'target frame {frame!r} is not {self.params.map_frame}'))
            p = request.target_pose.pose
            stop = Stop(label=f'pose ({p.position.x:.2f}, {p.position.y:.2f})',
                        pose=(p.position.x, p.position.y, frames.yaw_of(p.orientation)))
        return self._run(goal_handle, 'guide', [stop], result, feedback)

    def _execute_tour(self, goal_handle):
        route = goal_handle.request.route or self.params.default_tour

        def result(outcome: Outcome, _travelled: float = 0.0, visited: int = 0) -> Tour.Result:
            return Tour.Result(success=outcome.success, reason=outcome.reason, stops_visited=visited)

        def feedback(f: Feedback) -> Tour.Feedback:
            return Tour.Feedback(stop_index=f.stop_index, stop_count=f.stop_count, zone=f.zone, state=f.state)

        if route not in self.zones.tours:
            return self._refuse(goal_handle, result, Outcome(False, 'unknown_tour', f'no tour {route!r}'))
        stops = [self._zone_stop(s.zone, s.narration_zh, s.narration_en) for s in self.zones.tours[route]]
        return self._run(goal_handle, 'tour', stops, result, feedback)

    def _refuse(self, goal_handle, make_result, outcome: Outcome):
        self.get_logger().warning(f'goal refused: {outcome.message}')
        goal_handle.abort()
        return make_result(outcome)

    def _run(self, goal_handle, kind: str, stops: list[Stop], make_result, make_feedback):
        """Hand the goal to the supervisor and wait in this executor thread until a step ends it.

        (An rclpy coroutine awaiting a future would spin the executor busily instead.) The wait
        also ends when the executor lets go of this node (shutdown), which no longer runs the
        control loop: waiting on would deadlock the shutdown and leave the base without a stop."""
        record = _GoalRecord(goal_handle, make_result, make_feedback)
        with self._lock:
            goal_id, self._next_goal_id = self._next_goal_id, self._next_goal_id + 1
            self._goals[goal_id] = record
            self.supervisor.submit(Goal(goal_id, kind, tuple(stops)))
        while not record.done.wait(0.25):
            if self._executor_stopped():
                self._abandon('the node is shutting down')
        return record.done.result()

    def _executor_stopped(self) -> bool:
        executor = self.executor
        return executor is None or self not in executor.get_nodes() or not self.context.ok()

    # --- control loop: one supervisor step, its commands carried out ---------------------------
    def _control(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.inputs.clock_now = self._clock_now()
            self.costmap.expire(now)
            self.inputs.cancel_requested = frozenset(
                goal_id for goal_id, record in self._goals.items() if record.handle.is_cancel_requested)
            self._carry_out(self.supervisor.step(now, self.inputs))
            self.control_steps += 1

    def _carry_out(self, tick: Tick) -> None:
        """Do what a step decided (called with the lock held)."""
        for command in tick.commands:
            if isinstance(command, Drive):
                twist = Twist()
                twist.linear.x, twist.angular.z = command.vx, command.wz
                self.cmd_pub.publish(twist)
            elif isinstance(command, Feedback):
                record = self._goals.get(command.goal_id)
                if record is not None:
                    record.handle.publish_feedback(record.make_feedback(command))
            elif isinstance(command, Log):
                self._log(command)
            elif isinstance(command, ShowPath):
                self._publish_path(command.points)
            elif isinstance(command, Arrived):
                self._publish_arrival(command)
            elif isinstance(command, EndGoal):
                self._end_goal(command)
        for event in tick.events:
            self._send_event(event)

    def _send_event(self, event: EventPayload) -> None:
        """Every event of the guide goes out here."""
        self.events.send(event)

    def _log(self, command: Log) -> None:
        # One logging call per severity: rclpy refuses a call site whose severity changes.
        if command.level == 'error':
            self.get_logger().error(command.text)
        elif command.level == 'warning':
            self.get_logger().warning(command.text)
        else:
            self.get_logger().info(command.text)

    def _end_goal(self, command: EndGoal) -> None:
        record = self._goals.pop(command.goal_id, None)
        if record is None:
            return
        outcome, handle = command.outcome, record.handle
        result = record.make_result(outcome, command.travelled_m, command.visited)
        try:
            if outcome.reason == 'cancelled' and handle.is_cancel_requested:
                handle.canceled()
            elif outcome.success:
                handle.succeed()
            else:
                handle.abort()
        finally:
            record.done.set_result(result)

    def _publish_path(self, points: Any) -> None:
        msg = PathMsg()
        msg.header.frame_id = self.params.map_frame
        msg.header.stamp = self.get_clock().now().to_msg()
        for x, y in densify(list(points), 0.1):
            pose = PoseStamped()
            pose.header = msg.header
            pose.pose.position.x, pose.pose.position.y = float(x), float(y)
            pose.pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.plan_pub.publish(msg)

    def _publish_arrival(self, arrived: Arrived) -> None:
        msg = PlaceArrival()
        msg.header.frame_id = self.params.map_frame
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.zone = arrived.stop.zone
        msg.narration_zh, msg.narration_en = arrived.stop.narration_zh, arrived.stop.narration_en
        msg.stop_index = arrived.index
        msg.stop_count = arrived.count
        self.arrival_pub.publish(msg)

    def _abandon(self, message: str) -> None:
        """End the running mission because the node stops: stop the base if ROS still can, and
        always release the waiting execute callbacks."""
        with self._lock:
            tick = self.supervisor.abandon(time.monotonic(), message)
            try:
                self._carry_out(tick)
            except Exception:               # the ROS context is already gone (Ctrl-C)
                pass
            for record in self._goals.values():
                record.done.set_result(record.make_result(Outcome(False, 'shutdown', message)))
            self._goals.clear()

    def destroy_node(self) -> None:
        try:
            self._abandon('node stopped')
        finally:
            super().destroy_node()


main = main_for(GuideNode)
