"""The base's firmware, simulated: what a Kobuki-protocol base does with commands and reports back.

Pure core (no pty, no threads, no rclpy): `receive(bytes)` takes host commands, `step(dt)`
advances the physics (differential drive with acceleration limits, wheel encoders, gyro,
battery drain and charging on the dock, bumper contacts and cliffs from the store map) and
`feedback_frame()` gives the frame the firmware streams every 20 ms. `pty_sim` puts it on a
pseudo-terminal. The ground-truth pose is in the map frame; unknown cells of the map and the
world outside it read as cliffs (a drop-off where nothing was mapped).

With a `Drift` the sensors lie as on a real shop floor: each wheel's encoder reads a few per cent
off (tyre wear, polished floor: `scale_error`) plus per-step noise (slip), and the gyro has a bias
that wanders (random walk), so odometry alone drifts by metres over a day. With a `world`
(retail_navigation.sim_world.SimWorld) shoppers walk around; touching one presses the bumper.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Protocol

from retail_navigation import protocol as p
from retail_navigation.odometry import wrap_angle


class Floor(Protocol):
    """What the simulator needs of a map (retail_navigation.maps.StoreMap has it)."""

    def is_occupied_world(self, x: float, y: float) -> bool: ...

    def is_free_world(self, x: float, y: float) -> bool: ...


class OpenFloor:
    """An empty, endless shop floor (no map given)."""

    def is_occupied_world(self, x: float, y: float) -> bool:
        return False

    def is_free_world(self, x: float, y: float) -> bool:
        return True


@dataclass
class Drift:
    """Odometry error sources. `shop_floor()` gives typical values: ~1.5 % distance error,
    gyro bias 0.5-1 deg/min wandering by ~0.1 deg/min per sqrt(min)."""

    scale_error: tuple[float, float] = (0.0, 0.0)    # left, right: encoder reads (1 + e) x true travel
    slip_std: float = 0.0                            # per-step relative noise of each wheel's reading
    gyro_bias: float = 0.0                           # rad/s at start
    gyro_bias_walk: float = 0.0                      # rad/s per sqrt(s)
    seed: int | None = None

    @classmethod
    def shop_floor(cls, seed: int | None = None) -> 'Drift':
        rng = random.Random(seed)
        sign = rng.choice((-1.0, 1.0))
        return cls(scale_error=(0.015 + rng.uniform(-0.004, 0.004), 0.013 + rng.uniform(-0.004, 0.004)),
                   slip_std=0.02, gyro_bias=sign * math.radians(rng.uniform(0.5, 1.0)) / 60.0,
                   gyro_bias_walk=math.radians(0.1) / 60.0 / math.sqrt(60.0), seed=seed)


@dataclass
class SimConfig:
    wheelbase: float = p.WHEELBASE_M
    ticks_per_metre: float = p.TICKS_PER_METRE
    robot_radius: float = 0.18
    max_wheel_speed: float = 0.7               # m/s
    wheel_accel: float = 1.5                   # m/s^2 per wheel
    battery_full_v: float = 16.5
    battery_v: float = 16.2
    drain_idle_v_s: float = 1.5e-4             # ~4.5 h from full to low when idle
    drain_motion_v_m: float = 2.0e-4           # extra per metre driven
    charge_v_s: float = 1.0e-3
    dock_pose: tuple[float, float, float] | None = None
    dock_capture_m: float = 0.06               # centre within this of the dock pose = docked
    hardware_version: tuple[int, int, int] = (1, 0, 4)   # major, minor, patch
    firmware_version: tuple[int, int, int] = (1, 2, 0)
    unique_id: tuple[int, int, int] = (0x52424F54, 0x00C0FFEE, 0x20261124)
    encoder_start: tuple[int, int] = (0, 0)
    gains: tuple[int, int, int, int] = (0, 100000, 100, 2000)   # type, P, I, D (x1000)
    drift: Drift | None = None


@dataclass
class SimEvents:
    """Injected sensor states (tests, demo): held until changed; OR-ed with the physical ones."""

    bumper: int = 0
    cliff: int = 0
    wheel_drop: int = 0
    buttons: int = 0


@dataclass
class Wheel:
    speed: float = 0.0           # m/s, actual
    target: float = 0.0          # m/s, commanded
    travel_ticks: float = 0.0    # accumulated encoder ticks (float, wraps when reported)


@dataclass
class SimState:
    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0
    left: Wheel = field(default_factory=Wheel)
    right: Wheel = field(default_factory=Wheel)
    time_ms: float = 0.0
    gyro_rate: float = 0.0
    bumper: int = 0
    pressed: int = 0             # bumper bits pushed against an obstacle ...
    pressed_until_ms: float = 0.0   # ... until the spring releases them
    cliff: int = 0
    wheel_drop: int = 0
    fell: bool = False
    battery_v: float = 16.2
    charger: int = p.CHARGER_DISCHARGING
    odometer_m: float = 0.0
    gyro_angle: float = 0.0      # what the gyro integrated (true heading + bias drift)
    gyro_bias: float = 0.0


class SimulatedBase:
    """The firmware: commands in, physics, feedback out."""

    CLIFF_SENSORS = ((p.CLIFF_RIGHT, -math.radians(45)), (p.CLIFF_CENTRE, 0.0),
                     (p.CLIFF_LEFT, math.radians(45)))
    BUMPER_SECTORS = ((p.BUMPER_RIGHT, -math.radians(75), -math.radians(25)),
                      (p.BUMPER_CENTRE, -math.radians(25), math.radians(25)),
                      (p.BUMPER_LEFT, math.radians(25), math.radians(75)))
    CLIFF_SENSOR_DISTANCE = 0.15     # m from the centre
    CONTACT_GAP = 0.01               # the shell stops the robot this far from a shelf ...
    BUMPER_TRAVEL = 0.025            # ... the bumper touches within this (> gap + one step) ...
    BUMPER_RELEASE_MS = 100.0        # ... and springs back this long after the robot stops pushing
    FLOOR_ADC, DROP_ADC = 2100, 40

    def __init__(self, floor: Floor | None = None, pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 config: SimConfig | None = None, world=None) -> None:
        self.floor = floor or OpenFloor()
        self.config = config or SimConfig()
        self.world = world               # SimWorld or None
        self.state = SimState(x=pose[0], y=pose[1], theta=wrap_angle(pose[2]),
                              battery_v=self.config.battery_v)
        self.state.gyro_angle = self.state.theta
        drift = self.config.drift
        self._rng = random.Random(drift.seed if drift else None)
        if drift is not None:
            self.state.gyro_bias = drift.gyro_bias
        self.state.left.travel_ticks = float(self.config.encoder_start[0])
        self.state.right.travel_ticks = float(self.config.encoder_start[1])
        self.events = SimEvents()
        self.decoder = p.FrameDecoder()
        self.last_command: tuple[int, int] = (0, 0)
        self.commands_received = 0
        self.sounds: list[p.SubPayload] = []
        self.gpo_bits = 0
        self.gains = self.config.gains
        self._pending_extra: list[p.SubPayload] = []
        self._gyro_frame = 0
        self._sense()

    # --- host commands ------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        for payload in self.decoder.feed(data):
            for item in p.parse_commands(payload).items:
                self._apply(item)

    def _apply(self, item: p.SubPayload) -> None:
        if isinstance(item, p.BaseControl):
            self.commands_received += 1
            self.last_command = (item.speed_mm_s, item.radius_mm)
            left, right = p.speed_radius_to_wheels(item.speed_mm_s, item.radius_mm, self.config.wheelbase)
            self._set_targets(left, right)
        elif isinstance(item, (p.Sound, p.SoundSequence)):
            self.sounds.append(item)
        elif isinstance(item, p.RequestExtra):
            major, minor, patch = self.config.hardware_version
            if item.flags & p.REQUEST_HARDWARE_VERSION:
                self._pending_extra.append(p.HardwareVersion(patch, minor, major))
            major, minor, patch = self.config.firmware_version
            if item.flags & p.REQUEST_FIRMWARE_VERSION:
                self._pending_extra.append(p.FirmwareVersion(patch, minor, major))
            if item.flags & p.REQUEST_UNIQUE_ID:
                self._pending_extra.append(p.UniqueDeviceId(*self.config.unique_id))
        elif isinstance(item, p.GeneralPurposeOutput):
            self.gpo_bits = item.bits
        elif isinstance(item, p.SetControllerGain):
            self.gains = (item.gain_type, item.p, item.i, item.d)
        elif isinstance(item, p.GetControllerGain):
            self._pending_extra.append(p.ControllerInfo(*self.gains))

    def _set_targets(self, left: float, right: float) -> None:
        """Scale both wheels down together so the faster one respects the motor limit."""
        top = max(abs(left), abs(right))
        if top > self.config.max_wheel_speed:
            scale = self.config.max_wheel_speed / top
            left, right = left * scale, right * scale
        self.state.left.target, self.state.right.target = left, right

    def stop_motors(self) -> None:
        """What the firmware does when the host link goes away (cable pulled)."""
        self.last_command = (0, 0)
        self._set_targets(0.0, 0.0)

    # --- physics ------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        s, c = self.state, self.config
        s.time_ms += dt * 1000.0
        max_dv = c.wheel_accel * dt
        for wheel in (s.left, s.right):
            wheel.speed += min(max(wheel.target - wheel.speed, -max_dv), max_dv)
        if s.fell:
            s.left.speed = s.right.speed = 0.0
        v = (s.left.speed + s.right.speed) / 2.0
        w = (s.right.speed - s.left.speed) / c.wheelbase
        theta_mid = s.theta + w * dt / 2.0
        nx, ny = s.x + v * dt * math.cos(theta_mid), s.y + v * dt * math.sin(theta_mid)
        ntheta = wrap_angle(s.theta + w * dt)
        if self.world is not None:
            self.world.step(dt, (s.x, s.y, s.theta), c.robot_radius)
        if v != 0.0 and (self._blocked(nx, ny, ntheta, forward=v > 0) or self._pushing_person(nx, ny, v)):
            # Pressed against a shelf: the wheels stall (and draw over-current) until told otherwise.
            if v > 0:
                s.pressed = self._bumper_bits(s.x, s.y, s.theta, c.robot_radius + self.BUMPER_TRAVEL)
                s.pressed_until_ms = s.time_ms + self.BUMPER_RELEASE_MS
            s.left.speed = s.right.speed = 0.0
            v = 0.0
            w = 0.0
            nx, ny, ntheta = s.x, s.y, s.theta
        left_m, right_m = s.left.speed * dt, s.right.speed * dt
        drift = c.drift
        if drift is not None:
            left_m *= 1.0 + drift.scale_error[0] + (self._rng.gauss(0.0, drift.slip_std) if drift.slip_std else 0.0)
            right_m *= 1.0 + drift.scale_error[1] + (self._rng.gauss(0.0, drift.slip_std) if drift.slip_std else 0.0)
            if drift.gyro_bias_walk:
                s.gyro_bias += self._rng.gauss(0.0, drift.gyro_bias_walk * math.sqrt(dt))
        s.left.travel_ticks += left_m * c.ticks_per_metre
        s.right.travel_ticks += right_m * c.ticks_per_metre
        s.x, s.y, s.theta = nx, ny, ntheta
        s.gyro_rate = w + s.gyro_bias
        s.gyro_angle = wrap_angle(s.gyro_angle + s.gyro_rate * dt)
        s.odometer_m += abs(v) * dt
        self._battery(dt, abs(v) * dt)
        self._sense()

    def _pushing_person(self, x: float, y: float, v: float) -> bool:
        """Would this step bring the shell closer to a shopper it already touches?"""
        if self.world is None:
            return False
        s = self.state
        reach = self.config.robot_radius + self.world.person_radius
        for person in self.world.shoppers:
            now = math.hypot(person.x - s.x, person.y - s.y)
            if now <= reach + self.CONTACT_GAP and math.hypot(person.x - x, person.y - y) < now:
                return True
        return False

    def _blocked(self, x: float, y: float, theta: float, forward: bool) -> bool:
        """Would the round shell touch an obstacle on the half facing the motion at this pose?"""
        reach = self.config.robot_radius + self.CONTACT_GAP
        facing = theta if forward else theta + math.pi
        for k in range(13):
            a = facing - math.pi / 2 + math.pi * k / 12
            if self.floor.is_occupied_world(x + reach * math.cos(a), y + reach * math.sin(a)):
                return True
        return False

    def _bumper_bits(self, x: float, y: float, theta: float, reach: float) -> int:
        bits = 0
        for bit, start, end in self.BUMPER_SECTORS:
            for k in range(5):
                a = theta + start + (end - start) * k / 4.0
                if self.floor.is_occupied_world(x + reach * math.cos(a), y + reach * math.sin(a)):
                    bits |= bit
                    break
        return bits

    def _is_drop(self, x: float, y: float) -> bool:
        return not self.floor.is_free_world(x, y) and not self.floor.is_occupied_world(x, y)

    def _sense(self) -> None:
        s = self.state
        if s.time_ms >= s.pressed_until_ms:
            s.pressed = 0
        s.bumper = s.pressed
        if self.world is not None:
            for bearing in self.world.touching((s.x, s.y, s.theta), self.config.robot_radius, self.CONTACT_GAP):
                for bit, start, end in self.BUMPER_SECTORS:
                    if start - 0.3 <= bearing <= end + 0.3:
                        s.bumper |= bit
        s.cliff = 0
        for bit, angle in self.CLIFF_SENSORS:
            a = s.theta + angle
            if self._is_drop(s.x + self.CLIFF_SENSOR_DISTANCE * math.cos(a),
                             s.y + self.CLIFF_SENSOR_DISTANCE * math.sin(a)):
                s.cliff |= bit
        if self._is_drop(s.x, s.y):
            s.fell = True
        s.wheel_drop = p.WHEEL_DROP_LEFT | p.WHEEL_DROP_RIGHT if s.fell else 0

    def _battery(self, dt: float, distance: float) -> None:
        s, c = self.state, self.config
        dock = c.dock_pose
        docked = dock is not None and math.hypot(s.x - dock[0], s.y - dock[1]) <= c.dock_capture_m
        if docked:
            s.battery_v = min(c.battery_full_v, s.battery_v + c.charge_v_s * dt)
            s.charger = p.CHARGER_DOCKED_CHARGED if s.battery_v >= c.battery_full_v - 0.05 \
                else p.CHARGER_DOCKED_CHARGING
        else:
            s.battery_v = max(0.0, s.battery_v - c.drain_idle_v_s * dt - c.drain_motion_v_m * distance)
            s.charger = p.CHARGER_DISCHARGING

    # --- feedback -----------------------------------------------------------------------------

    def _docking_ir(self) -> p.DockingIR:
        """Which dock region (left/centre/right of its axis, near/far) each receiver sees."""
        dock = self.config.dock_pose
        if dock is None:
            return p.DockingIR(0, 0, 0)
        s = self.state
        dx, dy = s.x - dock[0], s.y - dock[1]
        distance = math.hypot(dx, dy)
        if distance > 2.5 or distance < 1e-6:
            return p.DockingIR(0, 0, 0)
        side = wrap_angle(math.atan2(dy, dx) - dock[2])      # where the robot is, seen from the dock
        if abs(side) > math.radians(80):
            return p.DockingIR(0, 0, 0)
        near = distance < 0.8
        if side > math.radians(10):
            region = p.DOCK_NEAR_LEFT if near else p.DOCK_FAR_LEFT
        elif side < -math.radians(10):
            region = p.DOCK_NEAR_RIGHT if near else p.DOCK_FAR_RIGHT
        else:
            region = p.DOCK_NEAR_CENTRE if near else p.DOCK_FAR_CENTRE
        bearing = wrap_angle(math.atan2(-dy, -dx) - s.theta)  # where the dock is, seen from the robot
        signals = []
        for centre in (-math.radians(60), 0.0, math.radians(60)):   # right, centre, left receivers
            signals.append(region if abs(wrap_angle(bearing - centre)) <= math.radians(40) else 0)
        return p.DockingIR(*signals)

    def feedback_items(self) -> list[p.SubPayload]:
        s, c = self.state, self.config
        bumper = s.bumper | self.events.bumper
        cliff = s.cliff | self.events.cliff
        wheel_drop = s.wheel_drop | self.events.wheel_drop
        stalled = [abs(w.target) > 0.02 and abs(w.speed) < 0.005 for w in (s.left, s.right)]

        def pwm(wheel: Wheel) -> int:
            return int(max(-100, min(100, round(100 * wheel.speed / c.max_wheel_speed))))

        def current(wheel: Wheel, stall: bool) -> int:
            return min(255, round(8 + 60 * abs(wheel.speed) + (120 if stall else 0)))

        basic = p.BasicSensorData(
            timestamp_ms=int(s.time_ms) & 0xFFFF, bumper=bumper, wheel_drop=wheel_drop, cliff=cliff,
            left_encoder=int(math.floor(s.left.travel_ticks)) & 0xFFFF,
            right_encoder=int(math.floor(s.right.travel_ticks)) & 0xFFFF,
            left_pwm=pwm(s.left), right_pwm=pwm(s.right), buttons=self.events.buttons,
            charger=s.charger, battery_dv=min(255, max(0, round(s.battery_v * 10))),
            over_current=(p.OVER_CURRENT_LEFT if stalled[0] else 0) | (p.OVER_CURRENT_RIGHT if stalled[1] else 0))
        angle_cdeg = round(math.degrees(s.gyro_angle) * 100)
        angle_cdeg = max(p.INT16_MIN, min(p.INT16_MAX, angle_cdeg))
        rate_cdeg = max(p.INT16_MIN, min(p.INT16_MAX, round(math.degrees(s.gyro_rate) * 100)))
        adc = [self.DROP_ADC if cliff & bit else self.FLOOR_ADC for bit in (p.CLIFF_RIGHT, p.CLIFF_CENTRE, p.CLIFF_LEFT)]
        raw = round(math.degrees(s.gyro_rate) / p.RAW_GYRO_UNIT_DEG_S)
        raw = max(p.INT16_MIN, min(p.INT16_MAX, raw))
        self._gyro_frame = (self._gyro_frame + 1) & 0xFF
        items: list[p.SubPayload] = [
            basic, self._docking_ir(), p.Inertial(angle_cdeg, rate_cdeg), p.CliffADC(*adc),
            p.Current(current(s.left, stalled[0]), current(s.right, stalled[1])),
            p.RawGyro(self._gyro_frame, ((0, 0, raw), (0, 0, raw))),
            p.GeneralPurposeInput(0, 0, 0, 0, 0),
        ]
        items += self._pending_extra
        self._pending_extra = []
        return items

    def feedback_frame(self) -> bytes:
        return p.build_frame(*self.feedback_items())


class LineFaults:
    """Fault injection on the base -> host line: garbage, corrupted or cut frames, dropped frames."""

    def __init__(self, noise_rate: float = 0.0, drop_rate: float = 0.0, seed: int | None = None) -> None:
        self.noise_rate = noise_rate
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)
        self.frames_dropped = 0
        self.frames_damaged = 0

    def apply(self, frame: bytes) -> bytes:
        rng = self.rng
        if self.drop_rate and rng.random() < self.drop_rate:
            self.frames_dropped += 1
            return b''
        if not self.noise_rate or rng.random() >= self.noise_rate:
            return frame
        self.frames_damaged += 1
        kind = rng.randrange(3)
        if kind == 0:       # a burst of line noise before the frame (the frame itself survives)
            return bytes(rng.randrange(256) for _ in range(rng.randint(1, 12))) + frame
        if kind == 1:       # one byte flipped somewhere after the header
            data = bytearray(frame)
            index = rng.randrange(2, len(data))
            data[index] ^= 1 << rng.randrange(8)
            return bytes(data)
        return frame[:rng.randrange(3, len(frame))]   # cut short
