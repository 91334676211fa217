"""`/navigation/localization`: where the robot is on the store map (AMCL-family particle filter).

Thin adapter around localization.ParticleFilter:

- reads `/scan` (sensor_msgs/LaserScan from any lidar driver; the laser sits at `laser_pose` on
  the robot) and `/odom` (nav_msgs/Odometry). Each scan is used at its own header stamp: the
  odometry pose is interpolated to it from the last 2 s of odometry (a scan stamped after the
  newest odometry waits for it, up to `odom_window_s`); a scan whose stamp is off the odometry by
  more than `odom_window_s` is refused, counted, and reported (diagnostics WARN with the count and
  how far off), never silently dropped;
- publishes `/navigation/pose` (PoseWithCovarianceStamped, frame `map`) after every filter
  update, `map -> odom` on `/tf` (stamped `transform_tolerance_s` ahead, as AMCL does, and repeated
  at 10 Hz), `/navigation/localization_state` (std_msgs/String, transient local: `tracking`;
  `degraded` (no usable laser information: the pose goes on with odometry, its covariance
  growing); `relocalising`; `not_sure` (a global relocalisation found several places that match
  equally well, e.g. two identical aisles: no pose is published, ask staff); `lost`;
  `waiting_for_scan`) and `/diagnostics` (covariance, scan match score, refused scans);
- starts from a pose given on `/initialpose` (RViz's "2D Pose Estimate") or `initial_pose`; else
  from the last pose saved in `pose_file` (written every few seconds and on shutdown, atomically)
  or the dock zone, whichever the first scan matches better (a robot switched off in an aisle
  and pushed back onto its dock starts right);
- service `/navigation/relocalise` (std_srvs/Trigger): global relocalisation for a robot that was
  carried elsewhere (particles over the whole free floor; the robot finds itself as it moves).
- deterministic given its inputs, so a recording re-runs exactly: each update draws its noise from
  (`seed`, the scan's stamp); after a resample the particles (the whole filter state) go out on
  `/navigation/particle_cloud` (PoseArray, latched, at most every `particle_cloud_period_s`), and
  after every update the odometry pose it used, stamped with its scan's stamp, goes out on
  `/navigation/localization_updates` (PoseStamped, frame odom). With `start_from_recording` (a
  replay, with use_sim_time and `retailbot replay --clock`) the node takes exactly the live
  filter's inputs from the recording (localization_replay.RecordedUpdates): it continues from the
  first recorded cloud whose update record it has and updates on the scans the live filter updated
  on, with the odometry it used, whatever the live node dropped or refused on a loaded machine and
  whatever odometry the recorder missed.

When the scan stops matching the map for `lost_after_updates` updates the state becomes `lost`:
the guide stops and calls staff; the filter keeps trying (random particles, and a global
relocalisation when `relocalise_when_lost` is on).
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Pose as PoseMsg
from geometry_msgs.msg import PoseArray, PoseStamped, PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String
from std_srvs.srv import Trigger

from retail_ros.qos import LATCHED
from retail_common import names
from retail_ros.node_support import ConfigError, declare_params, diagnostic_status, main_for
from retail_ros.params import ParamSpec
from retail_common.store import StoreError, load_store
from retail_navigation.collision_monitor import MAX_BEAMS
from retail_navigation.frames import BASE_LINK, LASER
from retail_navigation.localization import AmclConfig, OdomHistory, ParticleFilter, map_to_odom
from retail_navigation.localization_replay import Missing, RecordedUpdates, Start
from retail_navigation.maps import MapError, load_map
from retail_ros.tf_support import TF_QOS, StaticMount, TFMessage, transform, yaw_of

PARAMS = [
    ParamSpec('store_dir', '', 'store folder with map.yaml and zones.yaml'),
    ParamSpec('map_yaml', '', 'map file (default: <store_dir>/map.yaml)'),
    ParamSpec('initial_pose', [0.0], 'start pose [x, y, theta] in the map ([0.0]: the last saved pose, else the dock zone)',
              type='float_list'),
    ParamSpec('data_dir', '', 'robot data folder: the platform\'s data overlays the store; the last pose is kept in <data_dir>/navigation/last_pose.json'),
    ParamSpec('pose_file', '', 'where the last pose is kept across restarts (empty: <data_dir>/navigation/last_pose.json, or not kept without data_dir)'),
    ParamSpec('laser_tf_timeout_s', 2.0, 'wait this long for the lidar mount on /tf_static, then keep laser_pose [s]',
              min=0.1, max=60.0),
    ParamSpec('laser_pose', [0.10, 0.0, 0.20, 0.0], 'base_link -> laser [x, y, z, yaw] (as the lidar is mounted); '
              'replaced by base_link -> laser from /tf_static when it comes within laser_tf_timeout_s',
              type='float_list'),
    ParamSpec('scan_topic', names.SCAN, 'sensor_msgs/LaserScan of the lidar'),
    ParamSpec('map_frame', 'map', 'frame of the store map'),
    ParamSpec('odom_frame', 'odom', 'frame of the odometry'),
    ParamSpec('base_frame', 'base_link', 'frame of the robot body'),
    ParamSpec('min_particles', 500, 'fewest particles (KLD sampling)', type='int', min=50, max=100000),
    ParamSpec('max_particles', 5000, 'most particles while tracking', type='int', min=100, max=200000),
    ParamSpec('global_particles', 30000, 'particles of a global relocalisation', type='int', min=1000, max=500000),
    ParamSpec('max_beams', 60, 'beams of each scan used by the filter', type='int', min=8, max=2000),
    ParamSpec('sigma_hit', 0.08, 'std of the likelihood field [m]', min=0.01, max=1.0),
    ParamSpec('update_min_d', 0.05, 'travel before a filter update [m]', min=0.0, max=5.0),
    ParamSpec('update_min_a', 0.05, 'turn before a filter update [rad]', min=0.0, max=3.2),
    ParamSpec('lost_score', 0.5, 'scan match score below which an update counts as not matching', min=0.0, max=1.0),
    ParamSpec('lost_after_updates', 10, 'non-matching updates in a row before the robot is lost', type='int',
              min=1, max=1000),
    ParamSpec('relocalise_when_lost', True, 'start a global relocalisation when lost'),
    ParamSpec('transform_tolerance_s', 0.2, 'map -> odom is stamped this far ahead [s]', min=0.0, max=5.0),
    ParamSpec('save_period_s', 5.0, 'how often the pose is saved [s]', min=0.5, max=3600.0),
    ParamSpec('scan_timeout_s', 2.0, 'no scan for this long: diagnostics error; no usable scan: degraded [s]',
              min=0.1, max=60.0),
    ParamSpec('odom_window_s', 0.5, 'a scan stamped further than this from the odometry history is refused [s]',
              min=0.05, max=5.0),
    ParamSpec('seed', 0, "random seed of the filter: each update draws its noise from (seed, the scan's stamp), "
              'so the same scans and odometry give the same poses (live: `retailbot replay` sets the recorded '
              "robot's on a re-run node)", type='int', min=0, max=2**31 - 1, read_only=False),
    ParamSpec('particle_cloud_period_s', 2.0, 'publish the particles (a checkpoint a replay starts from) after a '
              'resample at most this often [s]; 0: never', min=0.0, max=3600.0),
    ParamSpec('start_from_recording', False, 'replay: start from the first recorded particle cloud (from a '
              'recording of the live robot) instead of a start pose, and update on the scans the live filter '
              'updated on, with the odometry it used (/navigation/localization_updates)'),
    ParamSpec('scan_queue_depth', 5, 'scans kept waiting for the node (a replay uses more: none dropped)', type='int',
              min=1, max=10000),
    ParamSpec('odom_queue_depth', 50, 'odometry messages kept waiting for the node', type='int', min=1, max=100000),
]



CLOUD_MAX_PARTICLES = 1500   # tracking keeps min_particles (500); a wider cloud is not published


def _stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _stamp_ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def load_saved_pose(path: Path) -> tuple[float, float, float] | None:
    """The pose saved by a previous run, None when absent or unreadable (reported by the caller)."""
    data = json.loads(path.read_text(encoding='utf-8'))
    pose = data['pose']
    if len(pose) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in pose):
        raise ValueError('pose must be [x, y, theta]')
    return float(pose[0]), float(pose[1]), float(pose[2])


def save_pose(path: Path, pose: tuple[float, float, float], map_source: str) -> None:
    """Write atomically (temp file, fsync, rename): a power cut leaves the old or the new pose."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump({'pose': [round(v, 4) for v in pose], 'map': map_source, 'saved_at': time.time()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def state_after_update(estimate, global_mode: bool) -> str:
    """The localization state a filter update leads to."""
    if estimate.lost:
        return 'lost'
    if global_mode:
        return 'not_sure' if estimate.ambiguous else 'relocalising'
    return 'degraded' if estimate.degraded else 'tracking'


def refused_summary(refused: list[tuple[float, str, float]]) -> str:
    """Why the scans of the last 10 s were not used, in a staff's words ('' when none were refused)."""
    if not refused:
        return ''
    worst = max(refused, key=lambda item: item[2] if math.isfinite(item[2]) else -1.0)
    if worst[1] in ('ahead', 'behind'):
        return (f'{len(refused)} scans in the last 10 s not used: stamps up to {worst[2]:.2f} s '
                f'{"ahead of" if worst[1] == "ahead" else "behind"} the odometry')
    return (f'{len(refused)} scans in the last 10 s not used: '
            f'{"malformed" if worst[1] == "malformed" else "no odometry for their stamps"}')


def diagnostic_values(state: str, pf: ParticleFilter, refused_total: int, refused_10s: int,
                      update_ms: list[float]) -> dict[str, object]:
    """The key/values of the localization diagnostics."""
    est = pf.estimate
    values: dict[str, object] = {'state': state, 'particles': len(pf.particles),
                                 'scans_refused_total': refused_total, 'scans_refused_10s': refused_10s}
    if pf.global_mode and est is not None and est.ambiguous:
        values['places_matching'] = '; '.join(f'{x:.2f},{y:.2f}' for x, y, _ in [est.pose, *est.ambiguous])
    if est is not None:
        values.update({'x': f'{est.pose[0]:.3f}', 'y': f'{est.pose[1]:.3f}', 'theta': f'{est.pose[2]:.3f}',
                       'std_xy_m': f'{math.sqrt(max(est.covariance[0, 0], est.covariance[1, 1])):.3f}',
                       'std_theta_rad': f'{math.sqrt(est.covariance[2, 2]):.3f}',
                       'scan_match_score': f'{est.score:.2f}'})
    if update_ms:
        values['update_ms_median'] = f'{float(np.median(update_ms)):.1f}'
    return values


def localization_health(age: float, unused: float, state: str, refused_why: str,
                        timeout: float) -> tuple[bytes, str]:
    """(diagnostic level, message) from the scan's age, the time since a scan was used and the state.
    The checks are in priority order: no scans, lost, scans not used, then the state's own words."""
    if age > timeout:
        return DiagnosticStatus.ERROR, ('no laser scan yet' if age == math.inf else f'no laser scan for {age:.1f} s')
    if state == 'lost':
        return DiagnosticStatus.ERROR, 'lost: the laser scan does not match the store map'
    if unused > timeout and state != 'waiting_for_scan':
        return DiagnosticStatus.WARN, (f'degraded: no scan used for {unused:.1f} s, pose from '
                                       f'odometry only; {refused_why or "no odometry"}')
    if state == 'not_sure':
        return DiagnosticStatus.WARN, ('not sure: several places of the map match the scans '
                                       'equally well; staff should set the pose')
    if state == 'degraded':
        return DiagnosticStatus.WARN, ('degraded: no laser returns within range, pose from '
                                       'odometry with growing uncertainty')
    if refused_why:
        return DiagnosticStatus.WARN, f'localised, but {refused_why}'
    if state == 'relocalising':
        return DiagnosticStatus.WARN, 'relocalising: looking for the robot on the whole map'
    return DiagnosticStatus.OK, 'localised on the store map'


class LocalizationNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__('localization', **kwargs)
        self.params = cfg = declare_params(self, PARAMS, on_change=self._on_param)
        name = self.get_fully_qualified_name()
        store = Path(cfg.store_dir).expanduser() if cfg.store_dir else None
        map_path = Path(cfg.map_yaml).expanduser() if cfg.map_yaml else (store / 'map.yaml' if store else None)
        if map_path is None:
            raise ConfigError(f'{name}: set store_dir (or map_yaml)')
        if len(cfg.laser_pose) != 4:
            raise ConfigError(f'{name}: laser_pose must be [x, y, z, yaw], got {list(cfg.laser_pose)}')
        try:
            self.store_map = load_map(map_path)
        except MapError as exc:
            raise ConfigError(f'{name}: {exc}') from None
        amcl = AmclConfig(min_particles=cfg.min_particles, max_particles=max(cfg.max_particles, cfg.min_particles),
                          global_particles=cfg.global_particles, max_beams=cfg.max_beams, sigma_hit=cfg.sigma_hit,
                          update_min_d=cfg.update_min_d, update_min_a=cfg.update_min_a, lost_score=cfg.lost_score,
                          lost_after_updates=cfg.lost_after_updates)
        lx, ly, _, lyaw = cfg.laser_pose
        self.filter = ParticleFilter(self.store_map, amcl, laser_mount=(lx, ly, lyaw), seed=cfg.seed)
        # sim time (a replay's /clock): a scan waiting for odometry is decided by the odometry's
        # stamps alone, never by how long it waited on this machine
        self._sim_time = bool(self.get_parameter('use_sim_time').value)
        self.pose_file = (Path(cfg.pose_file).expanduser() if cfg.pose_file else
                          Path(cfg.data_dir).expanduser() / 'navigation' / 'last_pose.json' if cfg.data_dir else None)
        self._candidates = self._start_poses(cfg, store, name)
        start, source = self._candidates[0]
        self.filter.initialise(start)
        self._odom = OdomHistory(keep_s=max(2.0, 2 * cfg.odom_window_s), window_s=cfg.odom_window_s)
        self._pending: list[tuple[float, LaserScan, float]] = []   # (arrival, scan, offset) waiting for odometry
        self._refused: list[tuple[float, str, float]] = []   # (monotonic time, verdict, offset) of the last 10 s
        self.refused_total = 0
        self._last_used = 0.0                    # monotonic time of the last scan used
        self._map_to_odom: tuple[float, float, float] | None = None
        self._state = ''
        self._last_scan = 0.0
        self._last_save = time.monotonic()
        self._update_ms: list[float] = []
        self._scan_cache: tuple[int, float, float, np.ndarray] | None = None
        self._cloud_at = -math.inf               # monotonic time of the last particle cloud published
        # replay: the live filter's inputs from the recording (None: live)
        self._replay = RecordedUpdates() if cfg.start_from_recording else None

        self.pose_pub = self.create_publisher(PoseWithCovarianceStamped, names.POSE, 10)
        self.state_pub = self.create_publisher(String, names.LOCALIZATION_STATE, LATCHED)
        self.tf_pub = self.create_publisher(TFMessage, names.TF, TF_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.cloud_pub = self.updates_pub = None
        if self._replay is not None:             # the recorded cloud and updates come on the topics: not ours
            self.create_subscription(PoseArray, names.PARTICLE_CLOUD, self._on_cloud, LATCHED)
            self.create_subscription(PoseStamped, names.LOCALIZATION_UPDATES, self._on_update_record,
                                     cfg.scan_queue_depth)
        else:
            self.updates_pub = self.create_publisher(PoseStamped, names.LOCALIZATION_UPDATES, 10)
            if cfg.particle_cloud_period_s > 0:
                self.cloud_pub = self.create_publisher(PoseArray, names.PARTICLE_CLOUD, LATCHED)
        self.create_subscription(Odometry, names.ODOM, self._on_odom, cfg.odom_queue_depth)
        # The mount from /tf_static replaces laser_pose when it comes (scans are not held back meanwhile).
        self.laser_mount = StaticMount(self, BASE_LINK, LASER, (lx, ly, lyaw), 'laser_pose', cfg.laser_tf_timeout_s,
                                       on_decided=self._on_mount)
        scan_qos = qos_profile_sensor_data
        if cfg.scan_queue_depth != scan_qos.depth:
            scan_qos = QoSProfile(**{**{k: getattr(scan_qos, k) for k in ('reliability', 'durability', 'history')},
                                     'depth': cfg.scan_queue_depth})
        self.create_subscription(LaserScan, cfg.scan_topic, self._on_scan, scan_qos)
        self.create_subscription(PoseWithCovarianceStamped, names.INITIAL_POSE, self._on_initial_pose, 10)
        self.create_service(Trigger, names.RELOCALISE, self._on_relocalise)
        self.create_timer(0.1, self._republish_tf)
        self.create_timer(1.0, self._on_slow_timer)
        self._set_state('waiting_for_scan')
        self.get_logger().info(f'ready: {self.store_map.source}; start pose {start[0]:.2f},{start[1]:.2f},'
                               f'{start[2]:.2f} ({source})')

    def _on_param(self, name: str, value) -> None:
        if name == 'seed' and hasattr(self, 'filter'):
            self.filter.seed = int(value)      # the next update draws from (seed, its scan's stamp)

    def _start_poses(self, cfg, store: Path | None, name: str) -> list[tuple[tuple[float, float, float], str]]:
        """Where the robot may be at start, best guess first (the first scan picks among several)."""
        if len(cfg.initial_pose) == 3:
            return [(tuple(cfg.initial_pose), 'initial_pose')]
        if cfg.initial_pose != [0.0]:
            raise ConfigError(f'{name}: initial_pose must be [x, y, theta] or [0.0], got {list(cfg.initial_pose)}')
        candidates = []
        if self.pose_file is not None and self.pose_file.exists():
            try:
                pose = load_saved_pose(self.pose_file)
                if self.store_map.is_free_world(pose[0], pose[1]):
                    candidates.append((pose, f'saved in {self.pose_file}'))
                else:
                    self.get_logger().warning(f'{self.pose_file}: saved pose is not on free floor of this map; ignored')
            except (OSError, ValueError, KeyError, TypeError) as exc:
                self.get_logger().warning(f'{self.pose_file}: cannot read the saved pose ({exc}); ignored')
        if store is not None and (store / 'zones.yaml').exists():
            try:
                zones = load_store(store, cfg.data_dir or None).zones
            except StoreError as exc:
                raise ConfigError(f'{name}: {exc}') from None
            if 'dock' in zones:
                candidates.append((zones['dock'].pose, 'the dock zone'))
        if not candidates:
            raise ConfigError(f'{name}: no start pose: set initial_pose or give the store a dock zone')
        return candidates

    # --- inputs -------------------------------------------------------------------------------
    def _on_odom(self, msg: Odometry) -> None:
        p = msg.pose.pose
        problem = self._odom.add(_stamp_s(msg.header.stamp), (p.position.x, p.position.y, yaw_of(p.orientation)))
        if problem:
            self.get_logger().warning(f'{names.ODOM}: {problem}: ignored', throttle_duration_sec=10.0)
        if self._pending:
            self._drain()

    def odom_for_scan(self, stamp: float) -> tuple[tuple[float, float, float] | None, str, float]:
        """The odometry pose at the scan's own stamp (interpolated), or why not."""
        return self._odom.at(stamp)

    def _drain(self) -> None:
        """Use the waiting scans whose odometry has come, in order. A scan whose stamp the odometry
        does not reach within `odom_window_s` of its arrival (odometry stalled, or the lidar's
        stamps ahead of it) is refused and reported, as is one older than the odometry history."""
        now = time.monotonic()
        while self._pending:
            arrived, msg, first_offset = self._pending[0]
            odom, verdict, offset = self.odom_for_scan(_stamp_s(msg.header.stamp))
            if odom is None and verdict in ('wait', 'none') and self._sim_time:
                return                            # decided by the odometry to come (bounded: 20 scans)
            if odom is None and verdict in ('wait', 'ahead', 'none') and now - arrived <= self.params.odom_window_s:
                return                            # its odometry may still come (a loaded machine)
            self._pending.pop(0)
            if odom is None:                      # how far ahead it was when it came
                self._refuse('ahead' if verdict == 'wait' else verdict,
                             first_offset if verdict in ('wait', 'ahead') else offset)
            else:
                self._use_scan(msg, odom)

    def _refuse(self, verdict: str, offset: float) -> None:
        now = time.monotonic()
        self.refused_total += 1
        self._refused.append((now, verdict, offset))
        while self._refused and self._refused[0][0] < now - 10.0:
            self._refused.pop(0)
        what = {'ahead': f'scan stamped {offset:.2f} s ahead of the odometry',
                'behind': f'scan stamped {offset:.2f} s behind the odometry'}.get(
                    verdict, "no odometry for the scan's stamp")
        self.get_logger().warning(f'{what}: not used ({self.refused_total} so far; lidar and base clocks, '
                                  'stamps or a stalled odometry?)', throttle_duration_sec=5.0)

    def _angles(self, msg: LaserScan) -> np.ndarray:
        key = (len(msg.ranges), msg.angle_min, msg.angle_increment)
        if self._scan_cache is None or self._scan_cache[:3] != key:
            self._scan_cache = (*key, msg.angle_min + msg.angle_increment * np.arange(len(msg.ranges)))
        return self._scan_cache[3]

    def _on_mount(self, mount: tuple[float, float, float]) -> None:
        self.filter.mount = mount

    def _on_scan(self, msg: LaserScan) -> None:
        if self._replay is not None:             # used when (and if) the live filter's record names it
            self._last_scan = self._last_used = time.monotonic()
            self._replay.add_scan(_stamp_ns(msg.header.stamp), msg)
            self._run_replay()
            return
        self._last_scan = time.monotonic()
        n = len(msg.ranges)
        if not (0 < n <= MAX_BEAMS and all(math.isfinite(v) and abs(v) < 1e6 for v in (
                msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max)) and msg.angle_increment != 0.0
                and 0.0 <= msg.range_min < msg.range_max):
            self.refused_total += 1
            self._refused.append((self._last_scan, 'malformed', math.nan))
            self.get_logger().warning(f'{self.params.scan_topic}: malformed scan ({n} ranges, angle_increment '
                                      f'{msg.angle_increment}, range {msg.range_min}..{msg.range_max}): not used',
                                      throttle_duration_sec=5.0)
            return
        self._pending.append((self._last_scan, msg, self.odom_for_scan(_stamp_s(msg.header.stamp))[2]))
        if len(self._pending) > 20:              # bounded: the oldest cannot wait longer
            self._pending.pop(0)
            self._refuse('none', math.nan)
        self._drain()

    def _use_scan(self, msg: LaserScan, odom: tuple[float, float, float], force: bool = False) -> None:
        self._last_used = time.monotonic()
        ranges = np.asarray(msg.ranges, dtype=np.float64)
        self.filter.range_min, self.filter.range_max = msg.range_min, msg.range_max
        if len(self._candidates) > 1:            # first scan: the saved pose or the dock?
            self._pick_start(msg, ranges)
        t0 = time.perf_counter()
        stamp = msg.header.stamp
        estimate = self.filter.step(odom, ranges, self._angles(msg), force=force, key=_stamp_ns(stamp))
        if estimate is None:
            return
        if estimate.updated:
            self._update_ms.append((time.perf_counter() - t0) * 1e3)
            del self._update_ms[:-50]
            self._publish_update_record(stamp, odom)
            self._after_update(msg, odom, estimate)
            self._publish_cloud(msg.header.stamp)
        else:
            if self._map_to_odom is None:
                self._map_to_odom = map_to_odom(estimate.pose, odom)
            if self._state == 'degraded' and self.filter.estimate is not None and not self.filter.estimate.degraded:
                self._set_state('tracking')          # scans are used again (standing still: no update)
        self._publish_tf(msg.header.stamp)
        if self._state == 'waiting_for_scan':
            self._set_state('degraded' if estimate.degraded else 'tracking')

    def _pick_start(self, msg: LaserScan, ranges: np.ndarray) -> None:
        """The first scan chooses among the start poses (the saved pose or the dock)."""
        scored = [(self.filter.match_score(pose, ranges, self._angles(msg)), pose, source)
                  for pose, source in self._candidates]
        score, pose, source = max(scored, key=lambda item: item[0])
        self.filter.initialise(pose)
        self.get_logger().info(f'starting at {pose[0]:.2f},{pose[1]:.2f} ({source}, scan match {score:.2f})')
        self._candidates = self._candidates[:1]

    def _after_update(self, msg: LaserScan, odom: tuple[float, float, float], estimate) -> None:
        """A filter update: publish the pose (unless relocalising), relocalise when lost, move the state."""
        if not self.filter.global_mode:          # hypotheses of a relocalisation are not a pose
            self._map_to_odom = map_to_odom(estimate.pose, odom)
            self._publish_pose(msg.header.stamp, estimate)
        if estimate.lost and self._state != 'lost':
            self.get_logger().error(f'lost: the laser scan no longer matches the map (score {estimate.score:.2f})')
        if estimate.lost and self.params.relocalise_when_lost and not self.filter.global_mode:
            self.filter.relocalise_globally()       # again after each wrong guess
        state = state_after_update(estimate, self.filter.global_mode)
        self._log_transition(state, estimate)
        if not (self._state == 'lost' and state == 'relocalising'):   # lost until found (or not sure)
            self._set_state(state)

    def _log_transition(self, state: str, estimate) -> None:
        if state == 'not_sure' and self._state != 'not_sure':
            self.get_logger().warning(' '.join(estimate.notes[-1:]) + ': staff should set the pose '
                                      '("2D Pose Estimate") or drive the robot to a distinctive place')
        if state == 'degraded' and self._state != 'degraded':
            self.get_logger().warning('degraded: no laser returns within range; the pose goes on with '
                                      'odometry, its uncertainty growing')
        if state == 'tracking' and self._state in ('lost', 'relocalising', 'not_sure'):
            self.get_logger().info(f'found again at {estimate.pose[0]:.2f},{estimate.pose[1]:.2f} '
                                   f'(score {estimate.score:.2f})')

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id not in ('', self.params.map_frame):
            self.get_logger().warning(f'/initialpose in frame {msg.header.frame_id!r} ignored (expected map)')
            return
        p = msg.pose.pose
        pose = (p.position.x, p.position.y, yaw_of(p.orientation))
        cov = msg.pose.covariance
        std_xy = math.sqrt(max(cov[0], cov[7], 0.0025))
        std_theta = math.sqrt(max(cov[35], 0.0025))
        self.filter.initialise(pose, min(std_xy, 2.0), min(std_theta, math.pi))
        self._candidates = self._candidates[:1]
        self._set_state('tracking')
        self.get_logger().info(f'initial pose set to {pose[0]:.2f},{pose[1]:.2f},{pose[2]:.2f}')

    def _on_cloud(self, msg: PoseArray) -> None:
        """Replay: the live filter's particles after its update at the cloud's stamp (a checkpoint)."""
        if self._replay is None or self._replay.started:
            return
        stamp = _stamp_s(msg.header.stamp)
        particles = np.array([(p.position.x, p.position.y, yaw_of(p.orientation)) for p in msg.poses])
        if not msg.poses or msg.header.frame_id not in ('', self.params.map_frame) \
                or not np.isfinite(particles).all():
            self.get_logger().warning(f'{names.PARTICLE_CLOUD}: checkpoint at {stamp:.3f} not usable '
                                      f'({len(msg.poses)} particles, frame {msg.header.frame_id!r}): '
                                      'waiting for the next one')
            return
        self._replay.add_cloud(_stamp_ns(msg.header.stamp), particles)
        self._run_replay()
        if not self._replay.started:
            self.get_logger().info(f'{names.PARTICLE_CLOUD}: checkpoint at {stamp:.3f} waits for the live '
                                   f"filter's update record at its stamp ({names.LOCALIZATION_UPDATES}: "
                                   'recorded and replayed?)', throttle_duration_sec=10.0)

    def _on_update_record(self, msg: PoseStamped) -> None:
        """Replay: the odometry pose the live filter's update at this stamp used."""
        p = msg.pose
        odom = (p.position.x, p.position.y, yaw_of(p.orientation))
        if self._replay is None or msg.header.frame_id not in ('', self.params.odom_frame) \
                or not all(math.isfinite(v) for v in odom):
            return
        self._replay.add_record(_stamp_ns(msg.header.stamp), odom)
        self._run_replay()

    def _run_replay(self) -> None:
        """Take the live filter's inputs that have come: its checkpoint, then its updates in order."""
        replay = self._replay
        if replay is None:
            return
        for action in replay.ready():
            if isinstance(action, Start):
                self.filter.restore(action.particles, action.odom)
                self._candidates = self._candidates[:1]
                self.get_logger().info(f'started from the recorded particle cloud at {action.stamp * 1e-9:.3f} '
                                       f'({len(action.particles)} particles)')
                self._set_state('tracking')
            elif isinstance(action, Missing):
                self.get_logger().warning(f'the live filter updated on the scan stamped {action.stamp * 1e-9:.3f}, '
                                          f'which the recording does not hold: the re-run differs from here '
                                          f'({replay.missing} such scans)')
            else:
                self._use_scan(action.scan, action.odom, force=True)

    def _on_relocalise(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.filter.relocalise_globally()
        self._set_state('relocalising')
        response.success = True
        response.message = (f'global relocalisation started with {len(self.filter.particles)} particles; '
                            'drive the robot a few metres')
        self.get_logger().info(response.message)
        return response

    # --- outputs ------------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.state_pub.publish(String(data=state))

    def _publish_pose(self, stamp, estimate) -> None:
        cfg = self.params
        msg = PoseWithCovarianceStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = cfg.map_frame
        x, y, theta = estimate.pose
        msg.pose.pose.position.x, msg.pose.pose.position.y = float(x), float(y)
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(theta / 2), math.cos(theta / 2)
        cov = np.zeros(36)
        c = estimate.covariance
        for a, i in enumerate((0, 1, 5)):
            for b, j in enumerate((0, 1, 5)):
                cov[i * 6 + j] = c[a, b]
        msg.pose.covariance = cov.tolist()
        self.pose_pub.publish(msg)

    def _publish_update_record(self, stamp, odom: tuple[float, float, float]) -> None:
        """The odometry pose this update used, at its scan's stamp: with the recorded scan, the
        update's whole input beside the filter's state (a replay takes exactly these)."""
        if self.updates_pub is None:
            return
        msg = PoseStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self.params.odom_frame
        msg.pose.position.x, msg.pose.position.y = float(odom[0]), float(odom[1])
        msg.pose.orientation.z, msg.pose.orientation.w = math.sin(odom[2] / 2), math.cos(odom[2] / 2)
        self.updates_pub.publish(msg)

    def _publish_cloud(self, stamp) -> None:
        """The particles after a resample (a checkpoint: the whole filter state), at most every
        `particle_cloud_period_s`; Foxglove and RViz show them as a PoseArray."""
        now = time.monotonic()
        if self.cloud_pub is None or now - self._cloud_at < self.params.particle_cloud_period_s:
            return
        particles = self.filter.checkpoint()
        if particles is None or len(particles) > CLOUD_MAX_PARTICLES:
            return                               # a large cloud would hold the executor (scans wait)
        self._cloud_at = now
        msg = PoseArray()
        msg.header.stamp = stamp
        msg.header.frame_id = self.params.map_frame
        half = particles[:, 2] / 2.0
        poses = []
        for (x, y, _), s, c in zip(particles.tolist(), np.sin(half).tolist(), np.cos(half).tolist()):
            pose = PoseMsg()
            pose.position.x, pose.position.y = x, y
            pose.orientation.z, pose.orientation.w = s, c
            poses.append(pose)
        msg.poses = poses
        self.cloud_pub.publish(msg)

    def _publish_tf(self, stamp) -> None:
        if self._map_to_odom is None:
            return
        cfg = self.params
        t = Time.from_msg(stamp) if stamp is not None else self.get_clock().now()
        future = (t + Duration(nanoseconds=int(cfg.transform_tolerance_s * 1e9))).to_msg()
        x, y, yaw = self._map_to_odom
        self.tf_pub.publish(TFMessage(transforms=[transform(future, cfg.map_frame, cfg.odom_frame, x, y, yaw)]))

    def _republish_tf(self) -> None:
        """Between scans (or with the robot standing still) map -> odom stays current."""
        if self._pending:
            self._drain()
        if time.monotonic() - self._last_scan > 0.15:
            self._publish_tf(None)

    def _on_slow_timer(self) -> None:
        est = self.filter.estimate
        now = time.monotonic()
        if est is not None and self.pose_file is not None and now - self._last_save >= self.params.save_period_s \
                and self._state == 'tracking':
            self._save(est.pose)
        age = now - self._last_scan if self._last_scan else math.inf
        unused = now - self._last_used if self._last_used else math.inf
        while self._refused and self._refused[0][0] < now - 10.0:
            self._refused.pop(0)
        values = diagnostic_values(self._state, self.filter, self.refused_total, len(self._refused), self._update_ms)
        timeout = self.params.scan_timeout_s
        if self._state == 'tracking' and age <= timeout and unused > timeout:
            self._set_state('degraded')          # scans come but none is used: odometry only
        level, message = localization_health(age, unused, self._state, refused_summary(self._refused), timeout)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status('navigation/localization', level, message, values)]
        self.diag_pub.publish(array)

    def _save(self, pose) -> None:
        try:
            save_pose(self.pose_file, pose, self.store_map.source)
            self._last_save = time.monotonic()
        except OSError as exc:
            self.get_logger().warning(f'{self.pose_file}: cannot save the pose ({exc})',
                                      throttle_duration_sec=60.0)

    def destroy_node(self) -> None:
        est = self.filter.estimate
        if est is not None and self.pose_file is not None and self._state == 'tracking':
            self._save(est.pose)
        super().destroy_node()


main = main_for(LocalizationNode)
