"""`/navigation/guide`: walks customers to places — the GuideTo and Tour action servers.

Thin adapter around guide.Mission (planning, following, waiting, replanning, tour stops):

- actions `/navigation/guide_to` (GuideTo) and `/navigation/tour` (Tour); one mission at a time
  (a goal arriving while another runs is rejected; cancel the running one first);
- drives its own command topic `cmd_vel_topic` (Twist, `/navigation/guide/cmd_vel`; the collision
  monitor passes it on to `/cmd_vel`) at `control_rate_hz`; reads `/odom`, `/navigation/safety`
  (BaseSafety: a latched stop ends the mission with `safety_stop`, a bumper hit becomes an
  obstacle), `/navigation/battery` (BatteryState: below `dock_below_fraction` and idle, it drives
  to the dock zone; guide goals then end with `battery_low`) and the people seen by perception
  (`people_topic`, geometry_msgs/PoseArray, positions in `base_link` or `map`);
- publishes `/map` (OccupancyGrid, transient local), `plan` (nav_msgs/Path) and `arrivals`
  (PlaceArrival, at every GuideTo goal and tour stop);
- marks what the lidar sees that is not on the map (`scan_topic`) in the costmap's obstacle layer.

Frames: with `localization` on, the map pose is `map -> odom` (from /tf, published by
/navigation/localization) ∘ odom; a mission waits (`waiting_for_localisation`) until the first
`map -> odom` arrives and ends with `lost` when the localisation reports the robot lost (the base
stops, the customer is told through the result, and a staff request event is sent). Without it
the robot starts at `initial_pose` (default: the dock zone) and its map pose is initial_pose ∘ odom.

People seen by perception closer than `customer_distance_m` while a mission runs are the customer
being guided (they follow the robot): they are left to the lidar, which sees their body, instead
of blocking the start of every guide.
"""
from __future__ import annotations

import math
import threading
import time
from array import array
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry, Path as PathMsg
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import BatteryState, LaserScan
from std_msgs.msg import String

from retail_common import names
from retail_common.event_sender import EventSender
from retail_common.events import GuideMission, StaffRequest
from retail_common.node_support import ConfigError, declare_params, live_store_for, main_for, watch_store
from retail_common.params import ParamSpec
from retail_common.store import StoreError
from retail_interfaces.action import GuideTo, Tour
from retail_interfaces.msg import BaseSafety, PlaceArrival
from retail_navigation.costmap import Costmap
from retail_navigation.follower import FollowerConfig
from retail_navigation.guide import GuideConfig, Mission, Outcome, Stop
from retail_navigation.maps import MapError, load_map
from retail_navigation.planner import GlobalPlanner, densify
from retail_navigation.tf_support import TF_QOS, TFMessage, planar
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
    ParamSpec('max_wz', 1.2, 'turn rate limit [rad/s]', min=0.1, max=3.0, read_only=False),
    ParamSpec('goal_tolerance_m', 0.15, 'how close to a stop counts as there [m]', min=0.02, max=1.0, read_only=False),
    ParamSpec('goal_yaw_tolerance_rad', 0.25, 'heading tolerance at a stop [rad]', min=0.01, max=3.2, read_only=False),
    ParamSpec('replan_after_s', 2.0, 'wait this long for a blocked way before replanning [s]', min=0.1, max=60.0, read_only=False),
    ParamSpec('blocked_timeout_s', 15.0, 'give up (result blocked) after this long blocked [s]', min=0.5, max=600.0, read_only=False),
    ParamSpec('person_decay_s', 2.0, 'a person not seen again is forgotten after [s]', min=0.1, max=60.0),
    ParamSpec('bumper_decay_s', 30.0, 'an obstacle the bumper hit is forgotten after [s]', min=1.0, max=3600.0),
    ParamSpec('people_topic', names.PEOPLE, 'people positions (geometry_msgs/PoseArray)'),
    ParamSpec('default_tour', 'showroom', 'tour used when a Tour goal names none'),
    ParamSpec('tour_dwell_s', 3.0, 'pause at each tour stop for the narration [s]', min=0.0, max=600.0, read_only=False),
    ParamSpec('dock_below_fraction', 0.2, 'battery share below which the robot docks when idle (0: never)',
              min=0.0, max=1.0, read_only=False),
    ParamSpec('odom_stale_s', 1.0, 'odometry older than this pauses the mission and stops the base [s]',
              min=0.1, max=10.0, read_only=False),
    ParamSpec('odom_timeout_s', 10.0, 'a paused mission ends (no_odometry) when odometry stays away this long [s]',
              min=0.2, max=120.0, read_only=False),
    ParamSpec('cmd_vel_topic', names.GUIDE_CMD_VEL, 'the guide\'s velocity command (to the collision monitor)'),
    ParamSpec('localization', True, 'map pose from /navigation/localization (map -> odom on /tf); '
              'false: initial_pose ∘ odometry'),
    ParamSpec('localization_timeout_s', 15.0, 'a mission waiting this long for localisation ends (not_localised) [s]',
              min=0.5, max=600.0),
    ParamSpec('scan_topic', names.SCAN, 'lidar (sensor_msgs/LaserScan) for the costmap obstacle layer; empty: none'),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw]', type='float_list'),
    ParamSpec('scan_decay_s', 3.0, 'a lidar obstacle not seen again is forgotten after [s]', min=0.1, max=600.0),
    ParamSpec('customer_distance_m', 0.9, 'people seen closer than this during a mission are the customer',
              min=0.0, max=3.0, read_only=False),
]

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def _yaw(q) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _quaternion(yaw: float):
    from geometry_msgs.msg import Quaternion
    return Quaternion(x=0.0, y=0.0, z=math.sin(yaw / 2.0), w=math.cos(yaw / 2.0))


def compose(base: tuple[float, float, float], local: tuple[float, float, float]) -> tuple[float, float, float]:
    """base ∘ local: a pose given relative to `base`, in base's frame."""
    c, s = math.cos(base[2]), math.sin(base[2])
    return (base[0] + c * local[0] - s * local[1], base[1] + s * local[0] + c * local[1],
            math.atan2(math.sin(base[2] + local[2]), math.cos(base[2] + local[2])))


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
        self.follower_config, self.guide_config = self._configs()

        self._lock = threading.Lock()
        self._pose: tuple[float, float, float] | None = None
        self._odom_stamp = 0.0
        self._safety: BaseSafety | None = None
        self._battery: BatteryState | None = None
        self._mission: Mission | None = None
        self._busy = False                   # a goal was accepted and not finished yet
        self._goal_handle = None
        self._done: _Done | None = None      # the running goal's result, awaited by its execute callback
        self._make_result = None
        self._feedback = None
        self._mission_since = 0.0
        self._paused_for_odometry = False
        self._odom_pose: tuple[float, float, float] | None = None
        self._map_to_odom: tuple[float, float, float] | None = None
        self._localization_state = ''
        self._last_scan = -math.inf
        self._waiting_for_localisation = False

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
        if cfg.scan_topic:
            from rclpy.qos import qos_profile_sensor_data
            self.create_subscription(LaserScan, cfg.scan_topic, self._on_scan, qos_profile_sensor_data,
                                     callback_group=sensors)
        self.create_timer(1.0 / cfg.control_rate_hz, self._control, callback_group=sensors)
        self.guide_server = ActionServer(
            self, GuideTo, 'guide_to', execute_callback=self._execute_guide, goal_callback=self._on_goal,
            cancel_callback=self._on_cancel, callback_group=actions)
        self.tour_server = ActionServer(
            self, Tour, 'tour', execute_callback=self._execute_tour, goal_callback=self._on_goal,
            cancel_callback=self._on_cancel, callback_group=actions)
        self._publish_map()
        self.get_logger().info(
            f'ready: {self.store_map.source} ({self.store_map.size_m[0]:.0f} x {self.store_map.size_m[1]:.0f} m), '
            f'{len(self.zones.zones)} zones, start pose {self.initial_pose[0]:.2f},{self.initial_pose[1]:.2f}')

    # --- set-up -------------------------------------------------------------------------------
    def _configs(self) -> tuple[FollowerConfig, GuideConfig]:
        cfg = self.params
        return (FollowerConfig(max_vx=cfg.max_vx, max_wz=cfg.max_wz, goal_tolerance_m=cfg.goal_tolerance_m,
                               goal_yaw_tolerance_rad=cfg.goal_yaw_tolerance_rad),
                GuideConfig(replan_after_s=cfg.replan_after_s, blocked_timeout_s=cfg.blocked_timeout_s,
                            dwell_s=cfg.tour_dwell_s, eta_speed=min(0.35, 0.8 * cfg.max_vx)))

    def _apply_live_params(self, _name: str, _value) -> None:
        """A live parameter changed (set_parameters): the running mission drives with it at once."""
        follower, guide = self._configs()
        with self._lock:
            self.follower_config, self.guide_config = follower, guide
            if self._mission is not None:
                self._mission.follower.config = follower
                self._mission.config = guide

    def _on_store_swap(self, store) -> None:
        """New zones or tours from the store: used from the next goal on (the map stays)."""
        self.zones = store

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
        msg.header.frame_id = 'map'
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.info.resolution = float(m.resolution)
        msg.info.width, msg.info.height = m.width, m.height
        msg.info.origin.position.x, msg.info.origin.position.y = float(m.origin[0]), float(m.origin[1])
        msg.info.origin.orientation = _quaternion(m.origin[2])
        msg.data = array('b', m.grid.tobytes())
        self.map_pub.publish(msg)

    # --- inputs -------------------------------------------------------------------------------
    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        self._odom_pose = (p.position.x, p.position.y, _yaw(p.orientation))
        self._odom_stamp = time.monotonic()
        self._update_pose()

    def _update_pose(self) -> None:
        if self._odom_pose is None:
            return
        if not self.params.localization:
            self._pose = compose(self.initial_pose, self._odom_pose)
        elif self._map_to_odom is not None:
            self._pose = compose(self._map_to_odom, self._odom_pose)

    def _on_tf(self, msg) -> None:
        for t in msg.transforms:
            if t.header.frame_id == 'map' and t.child_frame_id == 'odom':
                self._map_to_odom = planar(t)
                self._update_pose()

    def _on_localization_state(self, msg: String) -> None:
        self._localization_state = msg.data

    def _on_scan(self, msg: LaserScan) -> None:
        pose = self._pose
        if pose is None:
            return
        self._last_scan = time.monotonic()
        lx, ly, _, lyaw = self.params.laser_pose
        ox, oy, otheta = compose(pose, (lx, ly, lyaw))
        ranges = np.asarray(msg.ranges, dtype=np.float64)
        angles = otheta + msg.angle_min + msg.angle_increment * np.arange(len(ranges))
        hit = np.isfinite(ranges) & (ranges >= msg.range_min) & (ranges <= msg.range_max)
        usable = hit | np.isposinf(ranges)
        ranges = np.where(hit, ranges, msg.range_max)
        with self._lock:
            self.costmap.update_scan((ox, oy), angles[usable], ranges[usable], hit[usable], time.monotonic())

    def _on_safety(self, msg: BaseSafety) -> None:
        self._safety = msg
        if self._pose is None:
            return
        reach = self.params.robot_radius + 0.05
        for pressed, angle in ((msg.bumper_left, 0.7), (msg.bumper_centre, 0.0), (msg.bumper_right, -0.7)):
            if pressed:
                x, y, theta = self._pose
                self.costmap.add_bumper_hit(x + reach * math.cos(theta + angle), y + reach * math.sin(theta + angle),
                                            time.monotonic())

    def _on_battery(self, msg: BatteryState) -> None:
        self._battery = msg

    def _on_people(self, msg: PoseArray) -> None:
        if msg.header.frame_id in ('map', self.zones.frame_id):
            points = [(p.position.x, p.position.y) for p in msg.poses]
        elif self._pose is not None:
            points = [compose(self._pose, (p.position.x, p.position.y, 0.0))[:2] for p in msg.poses]
        else:
            return
        if self._mission is not None and self._pose is not None and time.monotonic() - self._last_scan < 1.0:
            x, y = self._pose[:2]
            points = [p for p in points if math.hypot(p[0] - x, p[1] - y) >= self.params.customer_distance_m]
        self.costmap.set_people(points, time.monotonic())

    def _battery_low(self) -> bool:
        b = self._battery
        threshold = self.params.dock_below_fraction
        if b is None or threshold <= 0 or math.isnan(b.percentage):
            return False
        charging = b.power_supply_status in (BatteryState.POWER_SUPPLY_STATUS_CHARGING,
                                             BatteryState.POWER_SUPPLY_STATUS_FULL)
        return not charging and b.percentage < threshold

    # --- actions ------------------------------------------------------------------------------
    def _on_goal(self, _request) -> GoalResponse:
        with self._lock:
            if self._busy:
                self.get_logger().warning('a guide or tour goal is running: new goal rejected (cancel it first)')
                return GoalResponse.REJECT
            if self._mission is not None and self._mission.kind == 'dock':
                self._end_mission(Outcome(False, 'preempted', 'docking interrupted by a customer request'))
            self._busy = True
            return GoalResponse.ACCEPT

    def _on_cancel(self, _goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _zone_stop(self, zone_id: str, narration: str = '') -> Stop:
        zone = self.zones.zones[zone_id]
        return Stop(label=zone.label, pose=zone.pose, zone=zone_id, narration=narration)

    def _execute_guide(self, goal_handle):
        request = goal_handle.request

        def result(outcome: Outcome, travelled: float = 0.0) -> GuideTo.Result:
            return GuideTo.Result(success=outcome.success, reason=outcome.reason, distance_travelled_m=travelled)

        if request.zone:
            if request.zone not in self.zones.zones:
                return self._refuse(goal_handle, result, Outcome(False, 'unknown_zone', f'no zone {request.zone!r}'))
            stop = self._zone_stop(request.zone)
        else:
            frame = request.target_pose.header.frame_id
            if frame not in ('', 'map', self.zones.frame_id):
                return self._refuse(goal_handle, result, Outcome(False, 'bad_frame', f'target frame {frame!r} is not map'))
            p = request.target_pose.pose
            stop = Stop(label=f'pose ({p.position.x:.2f}, {p.position.y:.2f})',
                        pose=(p.position.x, p.position.y, _yaw(p.orientation)))
        return self._run(goal_handle, 'guide', [stop], result, self._guide_feedback)

    def _execute_tour(self, goal_handle):
        route = goal_handle.request.route or self.params.default_tour

        def result(outcome: Outcome, _travelled: float = 0.0) -> Tour.Result:
            visited = self._mission.visited if self._mission is not None else 0
            return Tour.Result(success=outcome.success, reason=outcome.reason, stops_visited=visited)

        if route not in self.zones.tours:
            return self._refuse(goal_handle, result, Outcome(False, 'unknown_tour', f'no tour {route!r}'))
        stops = [self._zone_stop(s.zone, s.narration) for s in self.zones.tours[route]]
        return self._run(goal_handle, 'tour', stops, result, self._tour_feedback)

    def _refuse(self, goal_handle, make_result, outcome: Outcome):
        self.get_logger().warning(f'goal refused: {outcome.message}')
        with self._lock:
            self._busy = False
        goal_handle.abort()
        return make_result(outcome)

    def _run(self, goal_handle, kind: str, stops: list[Stop], make_result, feedback):
        """Start the mission and wait in this executor thread until the control loop ends it.

        (An rclpy coroutine awaiting a future would spin the executor busily instead.) The wait
        also ends when the executor shuts down, which no longer runs the control loop: waiting on
        would deadlock the shutdown and leave the base without a stop command."""
        if self._battery_low():
            return self._refuse(goal_handle, make_result, Outcome(False, 'battery_low', 'battery low: going to dock'))
        done = _Done()
        with self._lock:
            self._mission = Mission(kind, stops, self.planner, self.follower_config, self.guide_config,
                                    period_s=1.0 / self.params.control_rate_hz)
            self._goal_handle, self._done, self._make_result, self._feedback = goal_handle, done, make_result, feedback
            self._mission_since = time.monotonic()
        what = stops[0].label if kind == 'guide' else f'tour of {len(stops)} stops'
        self.get_logger().info(f'Guiding customer to {what}')
        while not done.wait(0.25):
            if self._executor_stopped():
                self._abandon_mission('the node is shutting down')
        return done.result()

    def _executor_stopped(self) -> bool:
        executor = self.executor
        return executor is None or getattr(executor, '_is_shutdown', False) or not self.context.ok()

    def _guide_feedback(self, tick) -> GuideTo.Feedback:
        return GuideTo.Feedback(distance_remaining_m=tick.remaining_m, eta_s=tick.eta_s, state=tick.state)

    def _tour_feedback(self, tick) -> Tour.Feedback:
        mission = self._mission
        return Tour.Feedback(stop_index=tick.stop_index, stop_count=len(mission.stops),
                             zone=mission.stops[min(tick.stop_index, len(mission.stops) - 1)].zone, state=tick.state)

    # --- control loop ------------------------------------------------------------------------
    def _stop_base(self) -> None:
        self.cmd_pub.publish(Twist())

    def _control(self) -> None:
        with self._lock:
            now = time.monotonic()
            self.costmap.expire(now)
            mission = self._mission
            if mission is None:
                self._maybe_dock()
                return
            handle = self._goal_handle
            if handle is not None and handle.is_cancel_requested:
                self._end_mission(Outcome(False, 'cancelled', 'cancelled'))
                return
            if self._safety is not None and self._safety.latched:
                self._end_mission(Outcome(False, 'safety_stop', self._safety.reason or 'the base stopped for safety'))
                return
            if self._odometry_missing(now, handle):
                return
            if self._localisation_missing(now, handle):
                return
            tick = mission.step(now, self._pose)
            for line in tick.log:
                self.get_logger().info(line)
            if tick.new_path is not None:
                self._publish_path(tick.new_path)
            if tick.arrived is not None:
                self._publish_arrival(mission, tick)
            if tick.outcome is not None:
                self._end_mission(tick.outcome)
                return
            twist = Twist()
            twist.linear.x, twist.angular.z = float(tick.vx), float(tick.wz)
            self.cmd_pub.publish(twist)
            if handle is not None:
                handle.publish_feedback(self._feedback(tick))

    def _odometry_missing(self, now: float, handle) -> bool:
        """Pause (base stopped) while odometry is stale; end the mission if it stays away.

        A busy robot computer can deliver odometry late for a moment: that is a pause, not a
        failure; only odometry gone for `odom_timeout_s` ends the mission with `no_odometry`."""
        p = self.params
        age = now - self._odom_stamp if self._odom_pose is not None else math.inf
        if age <= p.odom_stale_s:
            if self._paused_for_odometry:
                self._paused_for_odometry = False
                self.get_logger().info('odometry is back: guiding on')
            return False
        silent = now - max(self._odom_stamp, self._mission_since)
        self._stop_base()
        if silent > p.odom_timeout_s:
            self._end_mission(Outcome(False, 'no_odometry', f'no odometry from the base for {silent:.1f} s'))
            return True
        if not self._paused_for_odometry:
            self._paused_for_odometry = True
            self.get_logger().warning('guiding paused: odometry from the base is late, base stopped until it is back')
        if handle is not None and self._mission is not None:
            handle.publish_feedback(self._feedback(self._mission.waiting_tick('waiting_for_odometry')))
        return True

    def _localisation_missing(self, now: float, handle) -> bool:
        """Lost: end the mission (stop, tell the customer, call staff). Not localised yet: wait."""
        if not self.params.localization:
            return False
        if self._localization_state == 'lost':
            x, y = self._pose[:2] if self._pose is not None else (math.nan, math.nan)
            self.events.send(StaffRequest(reason='robot_lost', x=round(x, 2) if math.isfinite(x) else None,
                                          y=round(y, 2) if math.isfinite(y) else None))
            self.get_logger().error('localisation lost: stopping here and calling staff')
            self._end_mission(Outcome(False, 'lost', 'the robot does not know where it is on the map; staff called'))
            return True
        if self._map_to_odom is not None and self._pose is not None:
            if self._waiting_for_localisation:
                self._waiting_for_localisation = False
                self.get_logger().info('localisation is there: guiding on')
            return False
        self._stop_base()
        if now - self._mission_since > self.params.localization_timeout_s:
            self._end_mission(Outcome(False, 'not_localised', 'no pose from the localisation'))
            return True
        if not self._waiting_for_localisation:
            self._waiting_for_localisation = True
            self.get_logger().warning('guiding paused: waiting for the localisation (map -> odom)')
        if handle is not None and self._mission is not None:
            handle.publish_feedback(self._feedback(self._mission.waiting_tick('waiting_for_localisation')))
        return True

    def _maybe_dock(self) -> None:
        if self._busy or not self._battery_low() or 'dock' not in self.zones.zones:
            return
        dock = self._zone_stop('dock')
        if self._pose is not None and math.hypot(self._pose[0] - dock.pose[0], self._pose[1] - dock.pose[1]) < 0.3:
            return
        self.get_logger().warning(f'Battery low ({self._battery.percentage * 100:.0f} %): going to {dock.label}')
        self._mission = Mission('dock', [dock], self.planner, self.follower_config, self.guide_config,
                                period_s=1.0 / self.params.control_rate_hz)
        self._goal_handle = self._done = None
        self._mission_since = time.monotonic()

    def _record_outcome(self, mission: Mission, outcome: Outcome) -> None:
        """The mission's outcome as an interaction event for the platform (acknowledged on disk)."""
        stop = mission.stops[min(mission.index, len(mission.stops) - 1)]
        self.events.send(GuideMission(
            mission=mission.kind, zone=stop.zone, status='ended', reason=outcome.reason, success=bool(outcome.success),
            distance_m=round(float(mission.travelled_m), 2),
            duration_s=round(time.monotonic() - self._mission_since, 1),
            stops_visited=int(mission.visited), stops=len(mission.stops)))

    def _end_mission(self, outcome: Outcome) -> None:
        """Stop the base and report the outcome (called with the lock held)."""
        mission = self._mission
        self._stop_base()
        outcome = mission.finish(outcome) if mission is not None else outcome
        text = (f'{mission.kind if mission else "mission"} ended: {outcome.reason}'
                + (f' ({outcome.message})' if outcome.message and outcome.message != outcome.reason else ''))
        # One logging call per severity: rclpy refuses a call site whose severity changes.
        if outcome.success:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        if mission is not None:
            self._record_outcome(mission, outcome)
        handle, done, make_result = self._goal_handle, self._done, self._make_result
        if handle is not None and done is not None:
            result = make_result(outcome, mission.travelled_m if mission else 0.0)
            if outcome.reason == 'cancelled' and handle.is_cancel_requested:
                handle.canceled()
            elif outcome.success:
                handle.succeed()
            else:
                handle.abort()
            done.set_result(result)
            self._busy = False
        self._mission = None
        self._paused_for_odometry = False
        self._waiting_for_localisation = False
        self._goal_handle = self._done = self._make_result = None

    def _publish_path(self, path: list[tuple[float, float]]) -> None:
        msg = PathMsg()
        msg.header.frame_id = 'map'
        msg.header.stamp = self.get_clock().now().to_msg()
        for x, y in densify(path, 0.1):
            pose = PoseStamped()
            pose.header = msg.header
            pose.pose.position.x, pose.pose.position.y = float(x), float(y)
            pose.pose.orientation.w = 1.0
            msg.poses.append(pose)
        self.plan_pub.publish(msg)

    def _publish_arrival(self, mission: Mission, tick) -> None:
        stop = tick.arrived
        msg = PlaceArrival()
        msg.header.frame_id = 'map'
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.zone = stop.zone
        msg.narration_key = stop.narration
        msg.stop_index = tick.stop_index
        msg.stop_count = len(mission.stops)
        self.arrival_pub.publish(msg)

    def _abandon_mission(self, message: str) -> None:
        """End the running mission because the node stops: stop the base if ROS still can, and
        always release the waiting execute callback."""
        with self._lock:
            if self._mission is None:
                return
            done, make_result = self._done, self._make_result
            try:
                self._end_mission(Outcome(False, 'shutdown', message))
            except Exception:               # the ROS context is already gone (Ctrl-C)
                if done is not None:
                    done.set_result(make_result(Outcome(False, 'shutdown', message)))
                self._mission = None
                self._busy = False

    def destroy_node(self) -> None:
        try:
            self._abandon_mission('node stopped')
        finally:
            super().destroy_node()


main = main_for(GuideNode)
