"""Supervision of the guide as a pure core: which mission runs, when it pauses, when it ends,
when the robot docks, whom it calls, and what it tells the platform.

`Supervisor.step(now, inputs) -> Tick(commands, events)` runs at the control rate (the shape of
`guide.Mission.step`); the node converts messages into `Inputs` and carries out the commands
(`Drive`, `ShowPath`, `Arrived`, `Feedback`, `EndGoal`, `Log`) and sends the events. Goals come
in through `submit()` and are taken up by the next step; nothing else decides.

Policies (each edge-triggered: a decision is taken when its condition starts, never again while
it persists, and repeated only with a growing wait):

- **Goals.** A new goal replaces the running one (the old one ends `preempted`), so "cancel, then
  start" by a client works in either order. `skip_stop(index)` leaves a stop of the running tour
  out (the robot does not drive there). A goal is refused at once (no mission, no outcome
  event) while the battery is low (`battery_low`), the base is latched after a safety stop
  (`safety_stop`: only staff resetting the base lets it move again) or the localisation says the
  robot is lost (`lost`).
- **Safety stop.** A latched stop ends the running mission (`safety_stop`) and holds every
  mission, docking included, until the latch clears: the robot never drives around it.
- **Sensors by their stamps.** Odometry and (with `scan_required`) the lidar are judged by their
  header stamps against the node's clock (`Inputs.clock_now`, the clock of the stamps), never by
  when they arrived (`laserscan.stamp_problem`): older than `odom_stale_s` / `scan_stale_s`
  (a frozen driver republishing its last message, data stamped late), stamped more than
  `stamp_future_tolerance_s` ahead, or a zero stamp pause the mission with the base stopped
  (feedback `waiting_for_odometry` / `waiting_for_lidar`, a log line saying why); it drives on
  only after the data has been fresh for `odom_resume_s` / `scan_resume_s` (a flapping source
  does not make it jerk); no fresh data for `odom_timeout_s` / `scan_timeout_s` ends the mission
  (`no_odometry` / `no_lidar`). The robot never drives on a frozen scan.
- **People.** With a people sensor (`people_required`), a mission without word from it (its newest
  message, empty or not, older than `people_timeout_s` by its stamp, future or zero) drives at the
  follower's `near_people_vx`: who is near is not known.
- **Localisation.** Waits (base stopped, feedback `waiting_for_localisation`) for the first
  map -> odom and while the localisation is `relocalising` (the old map -> odom is not trusted);
  ends with `not_localised` after `localization_timeout_s` of waiting; `degraded` drives on at
  `degraded_speed_factor` of the speed; lost or not sure (`LOST_STATES`) ends the mission
  (`lost`) and calls staff.
- **Docking.** A low-battery episode starts when the battery (not charging) drops below
  `dock_below_fraction` and ends only when it charges or rises `dock_hysteresis` above it. In an
  episode the idle robot drives to the dock once; a failed attempt is retried after
  `dock_retry_s`, doubling up to `dock_retry_max_s`; after `dock_attempts` failures it gives up
  and calls staff once. No attempt while latched, lost, unlocalised or without odometry.
- **Events** (`retail_common.events` models). Exactly one `GuideMission` (type `guide`, status
  `ended`) per mission (docking included); a `StaffRequest` once
  per condition (`robot_lost`, `battery_low_cannot_dock`), and the same request again no sooner
  than `staff_repeat_s` even if its condition flaps.
- **The customer.** People closer than `customer_distance_m`, beside or behind the robot (not
  within 60 degrees of its heading), while a mission runs and the lidar's scan is fresh by its
  stamp are the customer following the robot: left to the lidar, not marked as blockers. Someone
  that close in front is marked: the robot slows (or stops) for them.
- **Bumper marks.** A pressed bumper marks an obstacle just outside the base in its direction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from retail_common.events import EventPayload, GuideMission, StaffRequest
from retail_navigation.follower import FollowerConfig
from retail_navigation.frames import Point, Pose, compose, to_local, transform_point
from retail_navigation.guide import GuideConfig, Mission, Outcome, Stop
from retail_navigation.guide import Tick as MissionTick
from retail_navigation.laserscan import stamp_problem
from retail_navigation.planner import GlobalPlanner

# /navigation/localization_state values that stop the robot: lost, or not sure between look-alike
# places (two identical aisles); `degraded` (scans unused, odometry carries the pose) drives on.
LOST_STATES = frozenset({'lost', 'not_sure'})
# States in which the localisation's map -> odom is not to be driven on: wait, base stopped.
WAIT_STATES = frozenset({'relocalising'})
BUMPERS = (('left', 0.7), ('centre', 0.0), ('right', -0.7))     # bumper -> direction from the heading [rad]
# A person within customer_distance_m is the customer only when at least this far off the heading
# (beside or behind): the follower's cone in which a person stops the robot (follower.surroundings_scale).
CUSTOMER_NOT_AHEAD_RAD = math.pi / 3


@dataclass(frozen=True)
class Battery:
    fraction: float                  # 0..1; NaN: unknown
    charging: bool = False           # charging or full


@dataclass
class Inputs:
    """What the node last received (converted from messages)."""
    clock_now: float = math.nan              # the node's clock at this step: the clock of header stamps [s]
    odom_pose: Pose | None = None            # odom -> base_link
    odom_stamp: float | None = None          # header stamp of the latest odometry [s, clock_now's clock]
    scan_stamp: float | None = None          # newest header stamp of the lidar's scans [s, clock_now's clock]
    people_stamp: float | None = None        # newest header stamp of the people sensor's messages (empty ones too)
    map_to_odom: Pose | None = None          # from the localisation (map -> odom on /tf)
    localization_state: str = ''
    safety_latched: bool = False
    safety_reason: str = ''
    battery: Battery | None = None
    cancel_requested: frozenset[int] = frozenset()     # ids of the goals whose clients asked to cancel


@dataclass
class SupervisorConfig:
    localization: bool = True                # map pose = map -> odom ∘ odom; False: initial_pose ∘ odom
    initial_pose: Pose = (0.0, 0.0, 0.0)
    control_period_s: float = 0.1
    odom_stale_s: float = 1.0
    odom_resume_s: float = 0.5
    odom_timeout_s: float = 10.0
    scan_required: bool = False              # a lidar is configured: no driving without a fresh scan
    scan_stale_s: float = 0.5
    scan_resume_s: float = 0.5
    scan_timeout_s: float = 10.0
    stamp_future_tolerance_s: float = 0.1
    people_required: bool = False            # a people sensor is configured: without word from it, near-people speed
    people_timeout_s: float = 2.0            # its newest message older than this by its stamp: no word from it
    degraded_speed_factor: float = 0.5       # share of the speed while the localisation is degraded
    localization_timeout_s: float = 15.0
    dock_below_fraction: float = 0.2         # 0: never dock
    dock_hysteresis: float = 0.05
    dock_reach_m: float = 0.3                # this close to the dock counts as docked
    dock_retry_s: float = 30.0
    dock_retry_max_s: float = 600.0
    dock_attempts: int = 3
    staff_repeat_s: float = 600.0
    customer_distance_m: float = 0.9
    bumper_reach_m: float = 0.23             # robot radius + 5 cm
    log_repeat_s: float = 30.0               # a repeated pause is logged at most this often


@dataclass(frozen=True)
class Goal:
    id: int
    kind: str                                # guide or tour
    stops: tuple[Stop, ...]


# --- commands ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Drive:
    vx: float = 0.0
    wz: float = 0.0


@dataclass(frozen=True)
class ShowPath:
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Arrived:
    stop: Stop
    index: int
    count: int


@dataclass(frozen=True)
class Feedback:
    goal_id: int
    state: str
    stop_index: int
    stop_count: int
    zone: str
    remaining_m: float = 0.0
    eta_s: float = 0.0


@dataclass(frozen=True)
class EndGoal:
    goal_id: int
    outcome: Outcome
    travelled_m: float = 0.0
    visited: int = 0


@dataclass(frozen=True)
class Log:
    level: str                               # info, warning, error
    text: str


Command = Drive | ShowPath | Arrived | Feedback | EndGoal | Log


@dataclass
class Tick:
    commands: list[Command] = field(default_factory=list)
    events: list[EventPayload] = field(default_factory=list)    # retail_common.events payload models

    def log(self, level: str, text: str) -> None:
        self.commands.append(Log(level, text))


@dataclass
class _SensorPause:
    """A sensor's pause of the running mission."""
    paused: bool = False
    fresh_since: float | None = None         # fresh again since (while paused)
    last_fresh: float | None = None          # last step the data was fresh
    pauses: int = 0
    logged: float = -math.inf


@dataclass
class _Run:
    """The running mission and what the supervisor knows about it."""
    mission: Mission
    goal_id: int | None                      # None: docking (nobody waits for a result)
    since: float
    sensors: dict[str, _SensorPause] = field(default_factory=dict)
    waiting_for_localisation: bool = False
    waiting_since: float = 0.0
    slowed: bool = False                     # driving slowly (localisation degraded)
    blind_to_people: bool = False            # driving at the near-people speed (no word from the people sensor)
    reported: bool = False                   # its one outcome event was sent


@dataclass
class _DockEpisode:
    """One low-battery episode: from the battery going low until it charges."""
    failures: int = 0
    next_try: float = -math.inf
    done: bool = False                       # at the dock
    gave_up: bool = False


def map_pose(config: SupervisorConfig, inputs: Inputs) -> Pose | None:
    """The robot's pose on the map, or None while it is not known."""
    if inputs.odom_pose is None or not all(map(math.isfinite, inputs.odom_pose)):
        return None
    if not config.localization:
        return compose(config.initial_pose, inputs.odom_pose)
    if inputs.map_to_odom is None or inputs.localization_state in WAIT_STATES:
        return None
    pose = compose(inputs.map_to_odom, inputs.odom_pose)
    return pose if all(map(math.isfinite, pose)) else None     # NaN/inf anywhere: not known (REP-117's spirit)


def bumper_marks(pose: Pose, pressed: dict[str, bool], reach_m: float) -> list[Point]:
    """Where the pressed bumpers touched something (map), just outside the base."""
    return [transform_point(pose, (reach_m * math.cos(angle), reach_m * math.sin(angle)))
            for name, angle in BUMPERS if pressed.get(name)]


class Supervisor:
    def __init__(self, planner: GlobalPlanner, config: SupervisorConfig | None = None,
                 follower_config: FollowerConfig | None = None, guide_config: GuideConfig | None = None,
                 dock: Stop | None = None) -> None:
        self.planner = planner
        self.config = config or SupervisorConfig()
        self.follower_config = follower_config or FollowerConfig()
        self.guide_config = guide_config or GuideConfig()
        self.dock = dock
        self.run: _Run | None = None
        self._pending: list[Goal] = []
        self._episode: _DockEpisode | None = None
        self._staff_active: set[str] = set()
        self._staff_sent: dict[str, float] = {}
        self._last_pose: Pose | None = None

    # --- queries and inputs from the node ---------------------------------------------------
    @property
    def mission(self) -> Mission | None:
        return self.run.mission if self.run is not None else None

    @property
    def battery_low(self) -> bool:
        return self._episode is not None

    def submit(self, goal: Goal) -> None:
        """A goal accepted by the action server: taken up by the next step (replacing what runs)."""
        self._pending.append(goal)

    def skip_stop(self, index: int) -> str | None:
        """Leave stop `index` of the running tour out; returns why not, or None (done: the next
        step drives to the next stop, or ends the tour when none is left)."""
        run = self.run
        if run is None or run.goal_id is None or run.mission.kind != 'tour':
            return 'no tour is running'
        return run.mission.skip(index)

    def set_configs(self, follower: FollowerConfig, guide: GuideConfig) -> None:
        """Live parameters: the running mission drives with them at once."""
        self.follower_config, self.guide_config = follower, guide
        if self.run is not None:
            self.run.mission.follower.config = follower
            self.run.mission.config = guide

    def odom_problem(self, inputs: Inputs) -> str:
        """'' when the odometry may be used now, else why not (judged by its stamp)."""
        cfg = self.config
        if inputs.odom_pose is None:
            return 'no odometry yet'
        if not all(map(math.isfinite, inputs.odom_pose)):
            return 'odometry pose is not a number (NaN or inf)'
        if inputs.map_to_odom is not None and not all(map(math.isfinite, inputs.map_to_odom)):
            return 'map -> odom correction is not a number (NaN or inf)'
        return stamp_problem('odometry', inputs.odom_stamp, inputs.clock_now, cfg.odom_stale_s,
                             cfg.stamp_future_tolerance_s, 'base')

    def scan_problem(self, inputs: Inputs) -> str:
        """'' when the lidar's latest scan may be used now, else why not (judged by its stamp)."""
        cfg = self.config
        return stamp_problem('scan', inputs.scan_stamp, inputs.clock_now, cfg.scan_stale_s,
                             cfg.stamp_future_tolerance_s, 'lidar')

    def people_to_mark(self, people: list[Point], pose: Pose | None, inputs: Inputs) -> list[Point]:
        """People (map) to mark as blockers: while a mission runs and the lidar sees the robot's
        surroundings (a scan fresh by its stamp), those within `customer_distance_m` and not in
        front of it (more than `CUSTOMER_NOT_AHEAD_RAD` off its heading) are the customer following
        it. Someone close in front is never the customer: the robot slows for them (the collision
        monitor looks only at the robot's own width ahead)."""
        if self.run is None or pose is None or self.scan_problem(inputs):
            return list(people)
        limit = self.config.customer_distance_m

        def customer(p: Point) -> bool:
            x, y = to_local(pose, p)
            return math.hypot(x, y) < limit and abs(math.atan2(y, x)) > CUSTOMER_NOT_AHEAD_RAD
        return [p for p in people if not customer(p)]

    # --- the control step ---------------------------------------------------------------------
    def step(self, now: float, inputs: Inputs) -> Tick:
        tick = Tick()
        pose = map_pose(self.config, inputs)
        if pose is not None:
            self._last_pose = pose
        lost = self.config.localization and inputs.localization_state in LOST_STATES
        if not lost:
            self._staff_active.discard('robot_lost')
        self._track_battery(now, inputs)
        self._take_goals(now, inputs, lost, tick)
        if self.run is None:
            self._maybe_dock(now, inputs, pose, lost, tick)
            if self.run is None:
                return tick
        self._drive(now, inputs, pose, lost, tick)
        return tick

    def abandon(self, now: float, message: str) -> Tick:
        """The node stops: end what runs (`shutdown`) and release everything waiting."""
        tick = Tick()
        for goal in self._pending:
            tick.commands.append(EndGoal(goal.id, Outcome(False, 'shutdown', message)))
        self._pending.clear()
        if self.run is not None:
            self._end(now, Outcome(False, 'shutdown', message), tick)
        return tick

    def _take_goals(self, now: float, inputs: Inputs, lost: bool, tick: Tick) -> None:
        if not self._pending:
            return
        pending = [g for g in self._pending if g.id not in inputs.cancel_requested]
        for goal in self._pending:
            if goal.id in inputs.cancel_requested:         # cancelled before it started
                tick.commands.append(EndGoal(goal.id, Outcome(False, 'cancelled', 'cancelled')))
        self._pending.clear()
        if not pending:
            return
        *older, goal = pending
        for old in older:
            tick.commands.append(EndGoal(old.id, Outcome(False, 'preempted', 'replaced by a newer goal')))
        refusal = self._refusal(inputs, lost)
        if refusal is not None:
            if refusal.reason == 'lost':
                self._staff_request(now, 'robot_lost', tick)
            tick.log('warning', f'goal refused: {refusal.message}')
            tick.commands.append(EndGoal(goal.id, refusal))
            return
        if self.run is not None:
            what = 'docking interrupted by a customer request' if self.run.goal_id is None else 'replaced by a new goal'
            self._end(now, Outcome(False, 'preempted', what), tick)
        self.run = _Run(self._new_mission(goal.kind, list(goal.stops)), goal.id, now)
        what = goal.stops[0].label if goal.kind == 'guide' else f'tour of {len(goal.stops)} stops'
        tick.log('info', f'Guiding customer to {what}')

    def _refusal(self, inputs: Inputs, lost: bool) -> Outcome | None:
        if self._episode is not None:
            return Outcome(False, 'battery_low', 'battery low: going to dock')
        if inputs.safety_latched:
            return Outcome(False, 'safety_stop', inputs.safety_reason or 'the base is stopped until staff reset it')
        if lost:
            return Outcome(False, 'lost', 'the robot does not know where it is on the map; staff called')
        return None

    def _new_mission(self, kind: str, stops: list[Stop]) -> Mission:
        return Mission(kind, stops, self.planner, self.follower_config, self.guide_config,
                       period_s=self.config.control_period_s)

    def _drive(self, now: float, inputs: Inputs, pose: Pose | None, lost: bool, tick: Tick) -> None:
        run = self.run
        assert run is not None
        if run.goal_id is not None and run.goal_id in inputs.cancel_requested:
            return self._end(now, Outcome(False, 'cancelled', 'cancelled'), tick)
        if inputs.safety_latched:
            return self._end(now, Outcome(False, 'safety_stop', inputs.safety_reason or 'the base stopped for safety'),
                             tick)
        cfg = self.config
        if self._sensor_missing(now, 'odometry', self.odom_problem(inputs), cfg.odom_resume_s, cfg.odom_timeout_s,
                                'no_odometry', tick):
            return None
        if cfg.scan_required and self._sensor_missing(now, 'lidar', self.scan_problem(inputs), cfg.scan_resume_s,
                                                      cfg.scan_timeout_s, 'no_lidar', tick):
            return None
        if self._localisation_missing(now, inputs, pose, lost, tick):
            return None
        assert pose is not None
        self._limit_speed(inputs, tick)
        mtick = run.mission.step(now, pose)
        for line in mtick.log:
            tick.log('info', line)
        if mtick.new_path is not None:
            tick.commands.append(ShowPath(tuple(mtick.new_path)))
        if mtick.arrived is not None:
            tick.commands.append(Arrived(mtick.arrived, mtick.stop_index, len(run.mission.stops)))
        if mtick.outcome is not None:
            return self._end(now, mtick.outcome, tick)
        tick.commands.append(Drive(float(mtick.vx), float(mtick.wz)))
        self._feedback(mtick, tick)
        return None

    def _feedback(self, mtick: MissionTick, tick: Tick) -> None:
        run = self.run
        if run is None or run.goal_id is None:
            return
        stops = run.mission.stops
        zone = stops[min(mtick.stop_index, len(stops) - 1)].zone
        tick.commands.append(Feedback(run.goal_id, mtick.state, mtick.stop_index, len(stops), zone,
                                      mtick.remaining_m, mtick.eta_s))

    def _sensor_missing(self, now: float, name: str, problem: str, resume_s: float, timeout_s: float,
                        reason: str, tick: Tick) -> bool:
        """Pause while the sensor's data is stale by its stamp (`problem`); drive on once it has
        been fresh for `resume_s`; end the mission (`reason`) after `timeout_s` without fresh data."""
        run = self.run
        assert run is not None
        p = run.sensors.setdefault(name, _SensorPause())
        if not problem:
            p.last_fresh = now
            if not p.paused:
                return False
            if p.fresh_since is None:
                p.fresh_since = now
            if now - p.fresh_since >= resume_s:
                p.paused, p.fresh_since = False, None
                tick.log('info', f'{name} is back: guiding on')
                return False
        else:
            p.fresh_since = None
            silent = now - (p.last_fresh if p.last_fresh is not None else run.since)
            if silent > timeout_s:
                what = 'no odometry from the base' if name == 'odometry' else f'no usable {name}'
                self._end(now, Outcome(False, reason, f'{what} for {silent:.1f} s ({problem})'), tick)
                return True
            if not p.paused:
                p.paused = True
                p.pauses += 1
                if now - p.logged >= self.config.log_repeat_s:
                    p.logged = now
                    again = f' (pause {p.pauses} of this mission)' if p.pauses > 1 else ''
                    tick.log('warning', f'guiding paused, base stopped until the {name} is back: {problem}{again}')
        tick.commands.append(Drive())
        self._feedback(run.mission.waiting_tick(f'waiting_for_{name}'), tick)
        return True

    def people_problem(self, inputs: Inputs) -> str:
        """'' when the people sensor spoke lately (its newest message fresh by its stamp), else why not."""
        cfg = self.config
        return stamp_problem('people', inputs.people_stamp, inputs.clock_now, cfg.people_timeout_s,
                             cfg.stamp_future_tolerance_s, 'perception')

    def _limit_speed(self, inputs: Inputs, tick: Tick) -> None:
        """While the localisation is degraded (odometry carries the pose) the mission drives slowly;
        without word from the people sensor (`people_required`) it drives at the near-people speed:
        who is near is not known."""
        run, cfg = self.run, self.config
        assert run is not None
        slow = cfg.localization and inputs.localization_state == 'degraded'
        follower = self.follower_config
        if slow:
            follower = replace(follower, max_vx=follower.max_vx * cfg.degraded_speed_factor)
        unseen = self.people_problem(inputs) if cfg.people_required else ''
        if unseen:
            follower = replace(follower, max_vx=min(follower.max_vx, follower.near_people_vx))
        if bool(unseen) != run.blind_to_people:
            run.blind_to_people = bool(unseen)
            tick.log('warning' if unseen else 'info',
                     f'no word from the people sensor ({unseen}): guiding at the near-people speed' if unseen
                     else 'the people sensor is back: guiding at full speed')
        run.mission.follower.config = follower
        if slow != run.slowed:
            run.slowed = slow
            tick.log('warning' if slow else 'info',
                     f'localisation degraded: guiding at {cfg.degraded_speed_factor:.0%} of the speed' if slow
                     else 'localisation tracking again: guiding at full speed')

    def _localisation_missing(self, now: float, inputs: Inputs, pose: Pose | None, lost: bool, tick: Tick) -> bool:
        """Lost: end the mission and call staff. Not localised yet, or relocalising: wait, base stopped."""
        run = self.run
        assert run is not None
        if lost:
            self._staff_request(now, 'robot_lost', tick)
            tick.log('error', 'localisation lost: stopping here and calling staff')
            self._end(now, Outcome(False, 'lost', 'the robot does not know where it is on the map; staff called'), tick)
            return True
        if pose is not None:
            if run.waiting_for_localisation:
                run.waiting_for_localisation = False
                tick.log('info', 'localisation is there: guiding on')
            return False
        tick.commands.append(Drive())
        if not run.waiting_for_localisation:
            run.waiting_for_localisation, run.waiting_since = True, now
            why = ('the localisation is relocalising (searching the whole map)'
                   if inputs.localization_state in WAIT_STATES else 'waiting for the localisation (map -> odom)')
            tick.log('warning', f'guiding paused, base stopped: {why}')
        if now - run.waiting_since > self.config.localization_timeout_s:
            self._end(now, Outcome(False, 'not_localised', 'no pose from the localisation'), tick)
            return True
        self._feedback(run.mission.waiting_tick('waiting_for_localisation'), tick)
        return True

    # --- ending a mission: the one place its outcome event is made ------------------------------
    def _end(self, now: float, outcome: Outcome, tick: Tick) -> None:
        run = self.run
        assert run is not None
        mission = run.mission
        self.run = None
        tick.commands.append(Drive())
        outcome = mission.finish(outcome)
        detail = f' ({outcome.message})' if outcome.message and outcome.message != outcome.reason else ''
        tick.log('info' if outcome.success else 'warning', f'{mission.kind} ended: {outcome.reason}{detail}')
        if not run.reported:
            run.reported = True
            stop = mission.stops[min(mission.index, len(mission.stops) - 1)]
            tick.events.append(GuideMission(
                mission=mission.kind, zone=stop.zone, status='ended', reason=outcome.reason,
                success=bool(outcome.success), distance_m=round(float(mission.travelled_m), 2),
                duration_s=round(max(now - run.since, 0.0), 1), stops_visited=int(mission.visited),
                stops=len(mission.stops)))
        if run.goal_id is not None:
            tick.commands.append(EndGoal(run.goal_id, outcome, mission.travelled_m, mission.visited))
        else:
            self._dock_ended(now, outcome, tick)

    # --- staff requests: once per condition, repeated no sooner than staff_repeat_s ------------
    def _staff_request(self, now: float, reason: str, tick: Tick, zone: str = '') -> None:
        if reason in self._staff_active or now - self._staff_sent.get(reason, -math.inf) < self.config.staff_repeat_s:
            self._staff_active.add(reason)
            return
        self._staff_active.add(reason)
        self._staff_sent[reason] = now
        pose = self._last_pose
        tick.events.append(StaffRequest(reason=reason, zone=zone, x=round(pose[0], 2) if pose else None,
                                        y=round(pose[1], 2) if pose else None))

    # --- docking --------------------------------------------------------------------------------
    def _track_battery(self, now: float, inputs: Inputs) -> None:
        """A low-battery episode starts below the threshold and ends on charging, an unknown
        reading or `dock_hysteresis` above it (a reading hovering at the threshold is one episode)."""
        threshold = self.config.dock_below_fraction
        b = inputs.battery
        if b is None or threshold <= 0 or not math.isfinite(b.fraction):
            starts, ends = False, True           # unknown, or docking switched off
        else:
            starts = not b.charging and b.fraction < threshold
            ends = b.charging or b.fraction >= threshold + self.config.dock_hysteresis
        if self._episode is None and starts:
            self._episode = _DockEpisode()
        elif self._episode is not None and ends:
            self._episode = None
            self._staff_active.discard('battery_low_cannot_dock')

    def _maybe_dock(self, now: float, inputs: Inputs, pose: Pose | None, lost: bool, tick: Tick) -> None:
        episode, dock, cfg = self._episode, self.dock, self.config
        if episode is None or dock is None or episode.done or episode.gave_up or now < episode.next_try:
            return
        if inputs.safety_latched or pose is None:      # waits for staff's reset / for a pose
            return
        if self.odom_problem(inputs) or (cfg.scan_required and self.scan_problem(inputs)):
            return
        if lost:
            self._staff_request(now, 'robot_lost', tick)
            return
        if math.hypot(pose[0] - dock.pose[0], pose[1] - dock.pose[1]) < cfg.dock_reach_m:
            episode.done = True
            return
        fraction = inputs.battery.fraction if inputs.battery is not None else math.nan
        tick.log('warning', f'Battery low ({fraction * 100:.0f} %): going to {dock.label}')
        self.run = _Run(self._new_mission('dock', [dock]), None, now)

    def _dock_ended(self, now: float, outcome: Outcome, tick: Tick) -> None:
        episode, cfg = self._episode, self.config
        if episode is None:
            return
        if outcome.success:
            episode.done = True
            return
        if outcome.reason in ('preempted', 'shutdown'):
            return
        episode.failures += 1
        if episode.failures >= cfg.dock_attempts:
            episode.gave_up = True
            tick.log('error', f'docking failed {episode.failures} times ({outcome.reason}): calling staff')
            self._staff_request(now, 'battery_low_cannot_dock', tick, zone=self.dock.zone if self.dock else '')
            return
        wait = min(cfg.dock_retry_s * 2 ** (episode.failures - 1), cfg.dock_retry_max_s)
        episode.next_try = now + wait
        tick.log('warning', f'docking failed ({outcome.reason}): trying again in {wait:.0f} s at the earliest')
