"""One guiding mission (to a zone, a pose, along a tour, or to the dock) as a pure state machine.

`Mission.step(now, pose)` runs at the control rate: it plans, follows the path, waits when
someone blocks the way, replans around them after `replan_after_s`, and gives up with
`blocked` when no way opens within `blocked_timeout_s`. When someone stands right in front of
the robot (its start is blocked by a person or something the lidar sees) it reports
`asking_to_step_aside` (the dialogue asks them to let the robot pass) and turns and drives around
them along an escape leg that never gets closer to them, then follows a plan from there; if no
such leg exists it keeps asking while it waits. At each stop it reports an arrival and
(on a tour) pauses `dwell_s` for the narration before driving on; `skip(index)` leaves a stop of
the tour out (the one it is driving to: it turns to the next one at once; the last one left: the
tour is over). Things only the supervisor knows (cancel requests, the base's safety latch,
odometry age) end a mission through `finish()`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from retail_navigation.follower import FollowerConfig, PathFollower
from retail_navigation.planner import GlobalPlanner, PlanError

Pose = tuple[float, float, float]


@dataclass(frozen=True)
class Stop:
    label: str                    # for logs: '手机数码区 (Phones & Wearables)' or 'pose (3.00, 4.00)'
    pose: Pose
    zone: str = ''
    narration_zh: str = ''         # a tour stop's narration in the store's words (zones.yaml)
    narration_en: str = ''


@dataclass
class GuideConfig:
    replan_after_s: float = 2.0
    blocked_timeout_s: float = 15.0
    dwell_s: float = 3.0           # pause at a tour stop while the stop is presented
    eta_speed: float = 0.35        # m/s used for the ETA (average with turns and slow-downs)
    backup_m: float = 0.3          # after a bumper hit, back away this far before planning again
    backup_speed: float = 0.1      # m/s, slowly: the base has no rear bumper
    ask_s: float = 3.0             # report asking_to_step_aside this long after someone blocked the start


@dataclass
class Outcome:
    success: bool
    reason: str                    # arrived, blocked, unreachable, safety_stop, cancelled, ...
    message: str = ''


@dataclass
class Tick:
    vx: float = 0.0
    wz: float = 0.0
    state: str = 'planning'        # planning, driving, waiting_for_obstacle, replanning, presenting (tour), arrived,
                                   # backing_up (away from a bumper hit), asking_to_step_aside (someone in front),
                                   # waiting_for_odometry (set by the node)
    stop_index: int = 0
    remaining_m: float = 0.0
    eta_s: float = 0.0
    arrived: Stop | None = None    # set on the tick the robot reached a stop
    new_path: list[tuple[float, float]] | None = None
    log: list[str] = field(default_factory=list)
    outcome: Outcome | None = None


class Mission:
    def __init__(self, kind: str, stops: list[Stop], planner: GlobalPlanner,
                 follower_config: FollowerConfig | None = None, config: GuideConfig | None = None,
                 period_s: float = 0.1) -> None:
        if not stops:
            raise ValueError('a mission needs at least one stop')
        self.kind = kind
        self.period_s = period_s
        self.stops = stops
        self.planner = planner
        self.config = config or GuideConfig()
        self.follower = PathFollower(follower_config)
        self.index = 0
        self.outcome: Outcome | None = None
        self.travelled_m = 0.0
        self.visited = 0               # stops reached so far
        self.skipped: set[int] = set()     # stops left out on the customer's wish
        self._has_path = False
        self._blocked_since: float | None = None
        self._last_plan_try = -math.inf
        self._dwell_until: float | None = None
        self._last_pose: Pose | None = None
        self._backing_from: Pose | None = None   # where backing away from a bumper hit began
        self._backups = 0
        self._asking_until = -math.inf           # someone in front was asked to step aside

    @property
    def stop(self) -> Stop:
        return self.stops[self.index]

    def finish(self, outcome: Outcome) -> Outcome:
        if self.outcome is None:
            self.outcome = outcome
        return self.outcome

    def _next_index(self) -> int | None:
        """The stop after the current one, skipped ones left out; None: the current one is the last."""
        return next((i for i in range(self.index + 1, len(self.stops)) if i not in self.skipped), None)

    def skip(self, index: int) -> str | None:
        """Leave stop `index` out; returns why not (a stop reached already, no such stop) or None."""
        if not 0 <= index < len(self.stops):
            return f'no stop {index} (the tour has {len(self.stops)})'
        if self.outcome is not None:
            return 'the mission is over'
        presenting = self._dwell_until is not None
        if index < self.index or (index == self.index and presenting):
            return f'stop {index} ({self.stops[index].label}) was reached already'
        self.skipped.add(index)
        if index == self.index:                  # the stop it is driving to: on to the next one now
            nxt = self._next_index()
            if nxt is None:
                self.finish(Outcome(True, 'arrived', 'the remaining stops were skipped'))
            else:
                self.index, self._has_path, self._blocked_since = nxt, False, None
                self._last_plan_try, self._backing_from = -math.inf, None
        return None

    def _remaining_after_current(self) -> float:
        """Straight-line distance over the stops still to come (ETA of a tour)."""
        points = [s.pose for i, s in enumerate(self.stops) if i >= self.index and i not in self.skipped]
        return sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(points, points[1:]))

    def _plan(self, now: float, pose: Pose, tick: Tick) -> None:
        self._last_plan_try = now
        try:
            plan = self.planner.plan((pose[0], pose[1]), self.stop.pose[:2])
        except PlanError as exc:
            if exc.code == 'start_blocked' and self._backups < 2 and self._may_back_up(pose):
                self._backing_from, self._backups = pose, self._backups + 1
                tick.log.append(f'backing away {self.config.backup_m:.1f} m from the obstacle the bumper hit')
                return
            blocker = self.planner.costmap.dynamic_blocked(pose[0], pose[1]) if exc.code == 'start_blocked' else None
            if blocker is not None and blocker.kind in ('person', 'scan'):
                if now >= self._asking_until:
                    tick.log.append('someone is right in front of the robot: asking them to step aside')
                self._asking_until = now + self.config.ask_s
                escape = self._escape(pose)
                if escape is not None:
                    self.follower.set_path(escape, self.stop.pose[2], align_first=True)
                    self._has_path = True
                    tick.new_path = escape
                    tick.log.append(f'going around them: {len(escape)} waypoints to {self.stop.label}')
                    return
            blocked_by_people = self.planner.costmap.dynamic and exc.code in ('start_blocked', 'goal_blocked', 'unreachable')
            if blocked_by_people:
                # maybe only until the people move on: keep waiting, the timeout decides
                if self._blocked_since is None:
                    self._blocked_since = now
                    tick.log.append(f'way to {self.stop.label} blocked ({exc}); waiting')
                self._has_path = False
                return
            self.finish(Outcome(False, 'unreachable', str(exc)))
            return
        self.follower.set_path(plan.path, self.stop.pose[2])
        self._has_path = True
        tick.new_path = plan.path
        tick.log.append(f'planned {plan.length_m:.1f} m to {self.stop.label} in {plan.plan_ms:.0f} ms')

    def _escape(self, pose: Pose) -> list[tuple[float, float]] | None:
        """A short straight leg to a traversable point that never comes closer to the people and
        lidar obstacles around the robot (it may turn on the spot first), then a plan from there."""
        costmap = self.planner.costmap
        near = [o for o in costmap.unmapped() if math.hypot(o.x - pose[0], o.y - pose[1]) < 1.0]
        goal = self.stop.pose[:2]
        candidates = []
        for radius in (0.4, 0.6, 0.8, 1.0):
            for k in range(16):
                a = 2 * math.pi * k / 16
                cx, cy = pose[0] + radius * math.cos(a), pose[1] + radius * math.sin(a)
                if not costmap.is_traversable(cx, cy):
                    continue
                candidates.append((radius + math.hypot(goal[0] - cx, goal[1] - cy), (cx, cy)))
        candidates.sort()
        tried = 0
        for _, (cx, cy) in candidates:
            if not self._leg_moves_away(pose, (cx, cy), near):
                continue
            tried += 1
            try:
                plan = self.planner.plan((cx, cy), goal)
            except PlanError:
                if tried >= 4:
                    return None
                continue
            return [(pose[0], pose[1])] + list(plan.path)
        return None

    def _leg_moves_away(self, pose: Pose, end: tuple[float, float], near: list) -> bool:
        costmap = self.planner.costmap
        length = math.hypot(end[0] - pose[0], end[1] - pose[1])
        steps = max(int(length / (0.5 * costmap.resolution)), 1)
        for n in range(1, steps + 1):
            t = n / steps
            x, y = pose[0] + t * (end[0] - pose[0]), pose[1] + t * (end[1] - pose[1])
            cell = costmap.cell_of(x, y)
            if cell is None or not costmap.static_traversable[cell]:
                return False
            for o in near:
                if math.hypot(x - o.x, y - o.y) < math.hypot(pose[0] - o.x, pose[1] - o.y) - 1e-3:
                    return False
        return True

    def _may_back_up(self, pose: Pose) -> bool:
        """The start is only blocked by what the bumper hit, and the way straight back is clear
        (checked on the map: there is no rear bumper)."""
        costmap = self.planner.costmap
        obstacle = costmap.dynamic_blocked(pose[0], pose[1])
        if obstacle is None or obstacle.kind != 'bumper':
            return False
        for step in range(1, int((self.config.backup_m + 0.1) / 0.05) + 1):
            cell = costmap.cell_of(pose[0] - 0.05 * step * math.cos(pose[2]), pose[1] - 0.05 * step * math.sin(pose[2]))
            if cell is None or not costmap.static_traversable[cell]:
                return False
        return True

    def _back_up(self, now: float, pose: Pose, tick: Tick) -> Tick | None:
        """While backing away: the reversing command, or None once far enough."""
        start = self._backing_from
        if math.hypot(pose[0] - start[0], pose[1] - start[1]) >= self.config.backup_m:
            self._backing_from = None
            self._last_plan_try = -math.inf          # plan again at once
            return None
        tick.vx, tick.state = -self.config.backup_speed, 'backing_up'
        return tick

    def _present(self, now: float, tick: Tick) -> bool:
        """At a tour stop: True while presenting it (or when the tour is over), False once the
        next stop is the target."""
        assert self._dwell_until is not None
        if now < self._dwell_until:
            tick.state = 'presenting'
            tick.remaining_m = self._remaining_after_current()
            tick.eta_s = tick.remaining_m / self.config.eta_speed
            return True
        self._dwell_until = None
        nxt = self._next_index()
        if nxt is None:                          # what was left was skipped while presenting
            tick.outcome = self.finish(Outcome(True, 'arrived', 'the remaining stops were skipped'))
            return True
        self.index = tick.stop_index = nxt
        self._has_path = False
        return False

    def step(self, now: float, pose: Pose) -> Tick:
        tick = Tick(stop_index=self.index)
        if self._last_pose is not None:
            self.travelled_m += math.hypot(pose[0] - self._last_pose[0], pose[1] - self._last_pose[1])
        self._last_pose = pose
        if self.outcome is not None:
            tick.outcome = self.outcome
            return tick
        if self._dwell_until is not None and self._present(now, tick):
            return tick
        if self._backing_from is not None and self._back_up(now, pose, tick) is not None:
            return tick
        if not self._has_path:
            unplanned = self._plan_when_due(now, pose, tick)
            if unplanned is not None:
                return unplanned
        command = self.follower.step(pose, self.period_s, self.planner.costmap)
        tick.remaining_m = command.remaining_m + self._remaining_after_current()
        tick.eta_s = tick.remaining_m / self.config.eta_speed
        if command.state == 'arrived':
            return self._arrive(now, tick)
        if command.state == 'waiting_for_obstacle':
            return self._wait_for_obstacle(now, pose, command.reason, tick)
        self._blocked_since = None
        tick.vx, tick.wz = command.vx, command.wz
        tick.state = 'driving'         # turning on the spot is part of driving for the customer
        if now < self._asking_until:
            tick.state = 'asking_to_step_aside'
        return tick

    def _plan_when_due(self, now: float, pose: Pose, tick: Tick) -> Tick | None:
        """Without a path: plan when it is time (at once, or `replan_after_s` after a block). The
        tick to return while there is still no path (or the mission ended), None to drive on."""
        replanning = self._blocked_since is not None
        if now - self._last_plan_try >= (self.config.replan_after_s if replanning else 0.0):
            self._plan(now, pose, tick)
            if self._backing_from is not None:
                return self._back_up(now, pose, tick)
        tick.state = 'replanning' if replanning else 'planning'
        if self.outcome is None and not self._has_path:
            return self._check_blocked(now, tick)
        if self.outcome is not None:
            tick.outcome = self.outcome
            return tick
        return None

    def _arrive(self, now: float, tick: Tick) -> Tick:
        """At the current stop: the mission ends there, or it presents the stop for `dwell_s`."""
        self._blocked_since = None
        tick.arrived = self.stop
        self.visited += 1
        tick.state = 'arrived'
        tick.log.append(f'arrived at {self.stop.label}')
        if self._next_index() is None:
            tick.outcome = self.finish(Outcome(True, 'arrived', f'arrived at {self.stop.label}'))
        else:
            self._dwell_until = now + self.config.dwell_s
            self._has_path = False
        return tick

    def _wait_for_obstacle(self, now: float, pose: Pose, reason: str, tick: Tick) -> Tick:
        """The path ahead is blocked: wait, replan every `replan_after_s`, give up after `blocked_timeout_s`."""
        if self._blocked_since is None:
            self._blocked_since = now
            self._last_plan_try = now
            tick.log.append(f'waiting: {reason}')
        tick.state = 'waiting_for_obstacle'
        if now - self._last_plan_try >= self.config.replan_after_s:
            tick.state = 'replanning'
            self._plan(now, pose, tick)
            if self.outcome is not None:
                tick.outcome = self.outcome
                return tick
        return self._check_blocked(now, tick)

    def waiting_tick(self, state: str) -> Tick:
        """A tick that only reports a pause the mission itself does not know about."""
        return Tick(stop_index=self.index, state=state)

    def _check_blocked(self, now: float, tick: Tick) -> Tick:
        if now < self._asking_until:
            tick.state = 'asking_to_step_aside'
        if self._blocked_since is not None and now - self._blocked_since > self.config.blocked_timeout_s:
            tick.outcome = self.finish(Outcome(False, 'blocked', f'the way to {self.stop.label} stayed blocked '
                                                                 f'for {self.config.blocked_timeout_s:.0f} s'))
        return tick
