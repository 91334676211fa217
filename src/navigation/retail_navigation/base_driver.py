"""What the base driver decides, without any I/O: limits, watchdog, safety latch, reconnect backoff.

Pure (no rclpy, no serial; time is passed in) so each rule is unit-tested on its own. Safety
lives here, not only in the planners above: a stale `cmd_vel` stops the base, a bumper, cliff or
wheel drop stops it at once and keeps it stopped (latched) until the condition has cleared and
someone asks for a reset; so do wheels stalled (over-current) for `stall_s`: pushing against
something, reversing too, where there is no bumper. The base drives only while new sensor samples
come (BasicSensorData, which carries the bumper, cliff and wheel-drop bits, with its firmware stamp
moving on): before the first, when only other frames or cut ones arrive, or when the firmware
repeats one sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from retail_navigation import protocol as p
from retail_navigation.odometry import Odometry, Pose2D


@dataclass(frozen=True)
class DriverLimits:
    max_vx: float = 0.5              # m/s forward
    max_reverse_vx: float = 0.15     # m/s backwards (the bumper is only in front)
    max_wz: float = 1.5              # rad/s
    accel_x: float = 0.6             # m/s^2 (speeding up and slowing down)
    accel_wz: float = 2.5            # rad/s^2
    watchdog_s: float = 0.6          # no cmd_vel for this long: zero speed
    feedback_timeout_s: float = 0.5  # no new sensor sample (BasicSensorData with a new firmware stamp: the
    #                                  bumper, cliff and wheel-drop bits) for this long: zero speed
    stall_s: float = 0.3             # a wheel over-current (stalled: pushing against something) this long: a
    #                                  safety stop, latched like the bumper (there is no rear bumper)


class Backoff:
    """Reconnect delays: initial, doubled after each failure, capped; reset after success."""

    def __init__(self, initial_s: float = 0.2, maximum_s: float = 3.0, factor: float = 2.0) -> None:
        self.initial_s, self.maximum_s, self.factor = initial_s, maximum_s, factor
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.maximum_s, self.initial_s * self.factor ** self.attempts)
        self.attempts += 1
        return delay

    def reset(self) -> None:
        self.attempts = 0


def _bit_names(bits: int, names: dict[int, str]) -> list[str]:
    return [name for bit, name in names.items() if bits & bit]


BUMPER_NAMES = {p.BUMPER_LEFT: 'left', p.BUMPER_CENTRE: 'centre', p.BUMPER_RIGHT: 'right'}
CLIFF_NAMES = {p.CLIFF_LEFT: 'left', p.CLIFF_CENTRE: 'centre', p.CLIFF_RIGHT: 'right'}
WHEEL_DROP_NAMES = {p.WHEEL_DROP_LEFT: 'left', p.WHEEL_DROP_RIGHT: 'right'}
STALL_NAMES = {p.OVER_CURRENT_LEFT: 'left', p.OVER_CURRENT_RIGHT: 'right'}


@dataclass(frozen=True)
class SafetyState:
    bumper: int = 0
    cliff: int = 0
    wheel_drop: int = 0
    latched: bool = False
    reason: str = ''
    stall: int = 0                  # wheels over-current for stall_s (protocol OVER_CURRENT_* bits)

    @property
    def triggered(self) -> bool:
        return bool(self.bumper or self.cliff or self.wheel_drop or self.stall)

    def describe_sensors(self) -> str:
        """'bumper centre pressed, cliff left' or '' when every sensor is clear."""
        parts = []
        if self.bumper:
            parts.append('bumper ' + '+'.join(_bit_names(self.bumper, BUMPER_NAMES)) + ' pressed')
        if self.cliff:
            parts.append('cliff ' + '+'.join(_bit_names(self.cliff, CLIFF_NAMES)) + ' (floor drop)')
        if self.wheel_drop:
            parts.append('wheel drop ' + '+'.join(_bit_names(self.wheel_drop, WHEEL_DROP_NAMES)))
        if self.stall:
            parts.append('wheels stalled ' + '+'.join(_bit_names(self.stall, STALL_NAMES))
                         + ' (over-current: pushing against something)')
        return ', '.join(parts)


@dataclass
class BaseInfo:
    """What the base told about itself (filled in as the answers to a request-extra arrive)."""

    hardware_version: str = ''
    firmware_version: str = ''
    unique_id: str = ''
    controller: p.ControllerInfo | None = None


@dataclass
class FeedbackResult:
    """What changed with one feedback payload, for the adapter to publish."""

    odometry: bool = False          # a new sensor sample moved the odometry on (publish /odom)
    safety_changed: bool = False
    unknown_ids: list[int] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    odometry_jump: str = ''         # a sample taken as a new odometry origin (firmware reset?), why


class DriverCore:
    """Velocity command in, (speed, radius) out; feedback in, odometry/safety/battery out."""

    def __init__(self, limits: DriverLimits | None = None, wheelbase: float = p.WHEELBASE_M,
                 ticks_per_metre: float = p.TICKS_PER_METRE, use_gyro: bool = True) -> None:
        self.limits = limits or DriverLimits()
        self.wheelbase = wheelbase
        self.odometry = Odometry(ticks_per_metre, wheelbase, use_gyro)
        self.safety = SafetyState()
        self.info = BaseInfo()
        self.basic: p.BasicSensorData | None = None
        self.inertial: p.Inertial | None = None
        self.docking_ir: p.DockingIR | None = None
        self.cliff_adc: p.CliffADC | None = None
        self.current: p.Current | None = None
        self.last_feedback_time: float | None = None
        self._base_time: float | None = None
        self._target = (0.0, 0.0)
        self._target_time: float | None = None
        self._output = (0.0, 0.0)
        self._output_time: float | None = None
        self.watchdog_stops = 0
        self._stall_since: float | None = None     # over-current on a wheel in every new sample since

    # --- commands -----------------------------------------------------------------------------

    def set_velocity(self, vx: float, wz: float, now: float) -> None:
        """A cmd_vel arrived. Non-finite values are refused (treated as a stop)."""
        if not (math.isfinite(vx) and math.isfinite(wz)):
            vx = wz = 0.0
        lim = self.limits
        self._target = (min(max(vx, -lim.max_reverse_vx), lim.max_vx), min(max(wz, -lim.max_wz), lim.max_wz))
        self._target_time = now

    def watchdog_expired(self, now: float) -> bool:
        return self._target_time is None or now - self._target_time > self.limits.watchdog_s

    def feedback_stale(self, now: float) -> bool:
        return self.last_feedback_time is None or now - self.last_feedback_time > self.limits.feedback_timeout_s

    def command(self, now: float) -> tuple[int, int]:
        """(speed [mm/s], radius [mm]) to send now: limits, acceleration ramp, watchdog, latch."""
        if self.feedback_stale(now):                 # driving blind: hold still, keep the target
            self._output, self._output_time = (0.0, 0.0), now
            return 0, 0
        if self.safety.latched or self.watchdog_expired(now):
            if self._target_time is not None and not self.safety.latched:
                self.watchdog_stops += 1
                self._target_time = None
            self._target = (0.0, 0.0)
            self._output, self._output_time = (0.0, 0.0), now
            return 0, 0
        dt = 0.0 if self._output_time is None else min(max(now - self._output_time, 0.0), 0.2)
        self._output_time = now
        lim = self.limits
        vx = _approach(self._output[0], self._target[0], lim.accel_x * dt)
        wz = _approach(self._output[1], self._target[1], lim.accel_wz * dt)
        self._output = (vx, wz)
        if abs(wz) >= 1e-4 and abs(1000.0 * vx / wz) > p.INT16_MAX:
            wz = 0.0    # a radius beyond int16 would be clamped to a crawl: drive straight instead
        return p.twist_to_speed_radius(vx, wz, self.wheelbase)

    @property
    def output_velocity(self) -> tuple[float, float]:
        return self._output

    def stop_now(self) -> None:
        """Forget the target and the ramp (link lost, node deactivated)."""
        self._target, self._target_time = (0.0, 0.0), None
        self._output, self._output_time = (0.0, 0.0), None

    # --- safety -------------------------------------------------------------------------------

    def _stall(self, over_current: int, now: float) -> int:
        """The wheels' over-current bits once they have lasted `stall_s` (a start's or a bump's short
        peak is no stall), else 0."""
        if not over_current:
            self._stall_since = None
            return 0
        if self._stall_since is None:
            self._stall_since = now
        return over_current if now - self._stall_since >= self.limits.stall_s else 0

    def _update_safety(self, bumper: int, cliff: int, wheel_drop: int, stall: int = 0) -> bool:
        old = self.safety
        sensors = SafetyState(bumper, cliff, wheel_drop, stall=stall)
        latched = old.latched or sensors.triggered
        if sensors.triggered:
            reason = 'stopped: ' + sensors.describe_sensors()
        elif latched:
            reason = old.reason.removesuffix(' (cleared; reset to drive)') + ' (cleared; reset to drive)'
        else:
            reason = ''
        new = SafetyState(bumper, cliff, wheel_drop, latched, reason, stall)
        if new.latched and not old.latched:
            self.stop_now()
        self.safety = new
        return new != old

    def reset_safety(self) -> tuple[bool, str]:
        """Clear a latched stop if every sensor is clear; the base then waits for a fresh cmd_vel."""
        if not self.safety.latched:
            return True, 'not latched'
        if self.safety.triggered:
            return False, 'cannot reset: ' + self.safety.describe_sensors()
        self.safety = SafetyState()
        self.stop_now()
        return True, 'safety stop cleared'

    # --- feedback -----------------------------------------------------------------------------

    def on_feedback(self, payload: bytes, now: float) -> FeedbackResult:
        parsed = p.parse_feedback(payload)
        result = FeedbackResult(unknown_ids=parsed.unknown_ids, malformed=parsed.malformed)
        basic = None
        for item in parsed.items:
            if isinstance(item, p.BasicSensorData):
                basic = item
            elif isinstance(item, p.Inertial):
                self.inertial = item
            elif isinstance(item, p.DockingIR):
                self.docking_ir = item
            elif isinstance(item, p.CliffADC):
                self.cliff_adc = item
            elif isinstance(item, p.Current):
                self.current = item
            elif isinstance(item, p.FirmwareVersion):       # before HardwareVersion: it is a subclass
                self.info.firmware_version = str(item)
            elif isinstance(item, p.HardwareVersion):
                self.info.hardware_version = str(item)
            elif isinstance(item, p.UniqueDeviceId):
                self.info.unique_id = str(item)
            elif isinstance(item, p.ControllerInfo):
                self.info.controller = item
        if basic is not None:
            # Only a new sensor sample (its firmware clock moved on) is a sign the bumpers, cliffs and
            # wheel drops are watched: other frames, cut frames and a firmware repeating one sample
            # with its old stamp do not refresh it (the base stops after feedback_timeout_s).
            new_sample = self.basic is None or self._base_time is None or basic.timestamp_ms != self.basic.timestamp_ms
            if new_sample:
                self.last_feedback_time = now
            # The firmware's own 16-bit millisecond clock times the samples: no host-side jitter.
            if self.basic is not None and self._base_time is not None:
                self._base_time += ((basic.timestamp_ms - self.basic.timestamp_ms) & 0xFFFF) / 1000.0
            else:
                self._base_time = now
            self.basic = basic
            gyro = self.inertial.angle_rad if self.inertial is not None else None
            jumps = self.odometry.jumps
            self.odometry.update(basic.left_encoder, basic.right_encoder, gyro, self._base_time)
            if self.odometry.jumps != jumps:
                result.odometry_jump = self.odometry.last_jump
            result.odometry = new_sample    # a repeat is no new odometry: /odom would say fresh for a frozen base
            stall = self._stall(basic.over_current & (p.OVER_CURRENT_LEFT | p.OVER_CURRENT_RIGHT), now) \
                if new_sample else self.safety.stall
            result.safety_changed = self._update_safety(basic.bumper, basic.cliff, basic.wheel_drop, stall)
        return result

    def on_link_lost(self) -> None:
        """The port went away: no motion target, and the encoders' next reading is a new origin."""
        self.stop_now()
        self.odometry.restart_counting()
        self.inertial = None
        self._base_time = None

    @property
    def pose(self) -> Pose2D:
        return self.odometry.pose


def _approach(current: float, target: float, max_step: float) -> float:
    return current + min(max(target - current, -max_step), max_step)
