"""Pure cores: odometry, the driver's rules (limits, watchdog, latch, backoff), the firmware simulator."""
from __future__ import annotations

import itertools
import math

import pytest

from retail_navigation import protocol as p
from retail_navigation.base_driver import Backoff, DriverCore, DriverLimits
from retail_navigation.base_sim import LineFaults, SimConfig, SimulatedBase
from retail_navigation.odometry import Odometry, encoder_delta

TPM = p.TICKS_PER_METRE


# --- odometry ----------------------------------------------------------------------------------

def test_encoder_delta_wraps_as_signed_16_bit():
    assert encoder_delta(65530, 4) == 10
    assert encoder_delta(4, 65530) == -10
    assert encoder_delta(100, 100) == 0
    assert encoder_delta(0, 32767) == 32767 and encoder_delta(0, 32768) == -32768


def test_odometry_straight_across_an_encoder_wrap():
    odo = Odometry()
    ticks = 65000
    odo.update(ticks, ticks, 0.0, 0.0)
    for step in range(1, 101):                 # 1 m in 100 samples, wrapping past 65535
        ticks = (65000 + round(step * TPM / 100)) & 0xFFFF
        odo.update(ticks, ticks, 0.0, step * 0.02)
    assert odo.pose.x == pytest.approx(1.0, abs=1e-3) and odo.pose.y == pytest.approx(0.0, abs=1e-9)
    assert odo.pose.vx == pytest.approx(0.5, rel=0.02)


def test_odometry_heading_from_gyro_and_from_wheels():
    quarter_arc = math.pi / 2 * p.WHEELBASE_M / 2          # each wheel's travel for a 90 deg spin
    gyro, wheels = Odometry(use_gyro=True), Odometry(use_gyro=False)
    for odo in (gyro, wheels):
        odo.update(0, 0, math.radians(170), 0.0)
        n = 50
        for i in range(1, n + 1):
            d = round(quarter_arc * TPM * i / n)
            odo.update(-d & 0xFFFF, d & 0xFFFF, math.radians(170 + 90 * i / n), i * 0.02)   # gyro wraps at 180
    assert gyro.pose.theta == pytest.approx(math.pi / 2, abs=1e-6)
    assert wheels.pose.theta == pytest.approx(math.pi / 2, abs=2e-3)
    assert math.hypot(gyro.pose.x, gyro.pose.y) < 1e-6


@pytest.mark.parametrize('use_gyro', [True, False])
def test_odometry_takes_a_firmware_reset_or_an_absurd_sample_as_a_new_origin(use_gyro):
    # Attack (session 13): a frame with a valid checksum but absurd encoders (the firmware reset
    # mid-motion: its counters start at 0 again; a bit error the checksum misses) was integrated:
    # 31,724 ticks back in one 20 ms sample put /odom 2.7 m behind the robot (and the gyro's reset
    # turned it), the guide steering from there. A step no wheel can make in the sample's time
    # (1 m/s, pi rad/s: the base does 0.7 m/s) is a new origin: the pose stays where it was.
    odo = Odometry(use_gyro=use_gyro)
    start = 20000
    odo.update(start, start, 0.3, 0.0)
    for step in range(1, 101):                              # 1 m straight at 0.5 m/s, a sample every 20 ms
        ticks = start + round(step * TPM / 100)
        odo.update(ticks, ticks, 0.3, step * 0.02)
    assert odo.pose.x == pytest.approx(1.0, abs=1e-3)
    odo.update(0, 0, 0.0, 101 * 0.02)                       # the reset: counters and gyro from zero
    for step in range(1, 11):                               # 0.1 m more from the new origin
        ticks = round(step * TPM / 100)
        odo.update(ticks, ticks, 0.0, (101 + step) * 0.02)
    assert odo.pose.x == pytest.approx(1.1, abs=2e-3) and abs(odo.pose.y) < 1e-6
    assert odo.pose.theta == pytest.approx(0.0, abs=1e-6)
    assert 0.4 < odo.pose.vx < 0.6                          # the speed of the real motion, not of the jump
    odo.update(32000, 0, 0.0, 112 * 0.02)                   # one wheel 2.7 m in a sample: the same
    assert odo.pose.x == pytest.approx(1.1, abs=2e-3) and odo.jumps == 2


# --- driver rules ------------------------------------------------------------------------------

def fresh_core(**limits) -> DriverCore:
    """A core that has heard from the base (feedback never goes stale unless a test says so)."""
    limits.setdefault('feedback_timeout_s', 1e9)
    core = DriverCore(DriverLimits(**limits))
    core.last_feedback_time = 0.0
    return core


def test_speed_and_acceleration_limits():
    core = fresh_core(max_vx=0.4, accel_x=0.5)
    core.set_velocity(2.0, 0.0, 0.0)
    assert core.command(0.0) == (0, 0)                    # ramp starts from rest
    assert core.command(0.1) == (50, 0)                   # 0.5 m/s^2 * 0.1 s
    t = 0.1
    for _ in range(20):
        t += 0.05
        core.set_velocity(2.0, 0.0, t)
        speed, _ = core.command(t)
    assert speed == 400                                    # capped at max_vx
    core.set_velocity(-1.0, 9.0, t)
    assert core.limits.max_reverse_vx == 0.15
    assert core._target == (-0.15, core.limits.max_wz)


def test_watchdog_stops_without_cmd_vel():
    core = fresh_core(accel_x=100.0, watchdog_s=0.6)
    core.set_velocity(0.3, 0.0, 0.0)
    core.command(0.0)
    assert core.command(0.5) == (300, 0)
    assert core.command(0.61) == (0, 0)
    assert core.watchdog_stops == 1
    assert core.command(0.7) == (0, 0) and core.watchdog_stops == 1


def test_non_finite_cmd_vel_is_a_stop():
    core = fresh_core(accel_x=100.0)
    core.set_velocity(float('nan'), 0.1, 0.0)
    core.command(0.0)
    assert core.command(0.1) == (0, 0)


def test_huge_radius_drives_straight_instead_of_crawling():
    core = fresh_core(accel_x=100.0, accel_wz=100.0)
    core.set_velocity(0.4, 0.0001, 0.0)
    core.command(0.0)
    assert core.command(0.1) == (400, 0)


_FIRMWARE_MS = itertools.count(20, 20)


def feedback(bumper=0, cliff=0, wheel_drop=0, left=0, right=0, ms=None) -> bytes:
    """A BasicSensorData payload; its firmware stamp moves on 20 ms per call unless `ms` is given."""
    stamp = next(_FIRMWARE_MS) & 0xFFFF if ms is None else ms
    return p.build_frame(p.BasicSensorData(stamp, bumper, wheel_drop, cliff, left, right, 0, 0, 0, 0, 160, 0))[3:-1]


def stalled(ms: int, bits: int = p.OVER_CURRENT_LEFT | p.OVER_CURRENT_RIGHT) -> bytes:
    return p.build_frame(p.BasicSensorData(ms, 0, 0, 0, 0, 0, 0, 0, 0, 0, 160, bits))[3:-1]


def test_wheels_stalled_for_stall_s_latch_a_stop_a_start_transient_does_not():
    core = fresh_core(accel_x=100.0, stall_s=0.3)
    core.set_velocity(-0.1, 0.0, 0.0)
    core.command(0.0)
    core.on_feedback(stalled(100), 0.0)                     # one sample: a start, a bump over a threshold
    core.on_feedback(stalled(120, 0), 0.02)
    assert not core.safety.latched
    for i in range(20):                                     # 0.4 s against something
        t = 0.04 + 0.02 * i
        core.set_velocity(-0.1, 0.0, t)
        core.on_feedback(stalled(140 + 20 * i), t)
    assert core.safety.latched and 'stalled' in core.safety.reason
    assert core.command(0.5) == (0, 0)
    assert not core.reset_safety()[0]                       # still stalled
    core.on_feedback(stalled(600, 0), 0.52)                 # no current once stopped
    assert core.reset_safety()[0]


def test_bumper_latches_until_clear_and_reset():
    core = fresh_core(accel_x=100.0)
    core.set_velocity(0.3, 0.0, 0.0)
    core.command(0.0)
    assert core.command(0.05) == (300, 0)
    result = core.on_feedback(feedback(bumper=p.BUMPER_CENTRE), 0.06)
    assert result.safety_changed and core.safety.latched and 'bumper centre' in core.safety.reason
    core.set_velocity(0.3, 0.0, 0.07)
    assert core.command(0.07) == (0, 0)                           # immediate, no ramp
    ok, message = core.reset_safety()
    assert not ok and 'bumper centre still' not in message and 'bumper centre' in message
    core.on_feedback(feedback(), 0.1)                              # released: still latched
    assert core.safety.latched and 'cleared' in core.safety.reason
    core.set_velocity(0.3, 0.0, 0.11)
    assert core.command(0.12) == (0, 0)
    assert core.reset_safety() == (True, 'safety stop cleared')
    assert core.command(0.13) == (0, 0)                            # needs a fresh cmd_vel
    core.set_velocity(0.3, 0.0, 0.14)
    core.command(0.14)
    assert core.command(0.2) == (300, 0)


@pytest.mark.parametrize('kwargs, words', [({'cliff': p.CLIFF_LEFT}, 'cliff left'),
                                           ({'wheel_drop': 3}, 'wheel drop left+right')])
def test_cliff_and_wheel_drop_latch(kwargs, words):
    core = fresh_core()
    core.on_feedback(feedback(**kwargs), 0.0)
    assert core.safety.latched and words in core.safety.reason


def test_backoff_grows_and_resets():
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next_delay() == 0.2


# --- simulator core ----------------------------------------------------------------------------

class Wall:
    """Occupied for x >= wall_x; a drop-off (unknown) for y <= -2."""

    def __init__(self, wall_x: float) -> None:
        self.wall_x = wall_x

    def is_occupied_world(self, x, y):
        return x >= self.wall_x

    def is_free_world(self, x, y):
        return x < self.wall_x and y > -2.0


def drive(sim: SimulatedBase, vx: float, wz: float, seconds: float, dt: float = 0.02) -> None:
    sim.receive(p.base_control(*p.twist_to_speed_radius(vx, wz)))
    for _ in range(round(seconds / dt)):
        sim.step(dt)


def test_sim_accelerates_within_limits_and_drives_straight():
    sim = SimulatedBase(config=SimConfig(wheel_accel=1.0))
    drive(sim, 0.5, 0.0, 0.2)
    assert sim.state.left.speed == pytest.approx(0.2)             # 1 m/s^2 for 0.2 s
    drive(sim, 0.5, 0.0, 2.0)
    assert sim.state.x == pytest.approx(0.02 + 0.125 + 0.5 * 1.7, abs=0.02)
    basic = next(i for i in sim.feedback_items() if isinstance(i, p.BasicSensorData))
    assert basic.left_encoder == basic.right_encoder == int(sim.state.left.travel_ticks) & 0xFFFF


def test_sim_bumps_into_a_shelf_and_stalls():
    sim = SimulatedBase(Wall(1.0))
    drive(sim, 0.3, 0.0, 6.0)
    assert sim.state.bumper & p.BUMPER_CENTRE
    assert 1.0 - 0.18 - 0.025 < sim.state.x < 1.0 - 0.18 - 0.01 + 1e-9
    basic = next(i for i in sim.feedback_items() if isinstance(i, p.BasicSensorData))
    assert basic.bumper & p.BUMPER_CENTRE and basic.over_current == 3
    drive(sim, 0.0, 0.0, 0.2)                                     # no longer pushing: springs back
    assert sim.state.bumper == 0
    drive(sim, 0.3, 0.5, 0.1)                                     # pushing again on the left
    assert sim.state.bumper & p.BUMPER_CENTRE
    drive(sim, -0.1, 0.0, 0.5)                                    # backing off is possible
    assert sim.state.bumper == 0 and sim.state.x < 0.8


def test_sim_cliff_then_fall():
    sim = SimulatedBase(Wall(100.0), pose=(0.0, -1.8, -math.pi / 2))
    drive(sim, 0.1, 0.0, 0.6)
    assert sim.state.cliff & p.CLIFF_CENTRE and not sim.state.wheel_drop
    drive(sim, 0.1, 0.0, 2.0)
    assert sim.state.wheel_drop == 3 and sim.state.left.speed == 0.0


def test_sim_battery_drains_and_charges_on_the_dock():
    sim = SimulatedBase(pose=(0.0, 0.0, 0.0), config=SimConfig(battery_v=15.0, dock_pose=(1.0, 0.0, 0.0)))
    drive(sim, 0.0, 0.0, 10.0)
    assert sim.state.battery_v < 15.0 and sim.state.charger == p.CHARGER_DISCHARGING
    sim.state.x = 1.0
    drive(sim, 0.0, 0.0, 10.0)
    assert sim.state.battery_v > 15.0 - 0.01 and sim.state.charger == p.CHARGER_DOCKED_CHARGING


def test_sim_docking_ir_sees_the_dock_ahead():
    sim = SimulatedBase(pose=(1.0, 0.0, math.pi), config=SimConfig(dock_pose=(0.0, 0.0, 0.0)))
    ir = next(i for i in sim.feedback_items() if isinstance(i, p.DockingIR))
    assert ir.centre == p.DOCK_FAR_CENTRE and ir.left == ir.right == 0
    sim.state.x, sim.state.y = 0.5, 0.3
    ir = next(i for i in sim.feedback_items() if isinstance(i, p.DockingIR))
    assert p.DOCK_NEAR_LEFT in (ir.centre, ir.left, ir.right)


def test_sim_answers_requests_and_gains():
    sim = SimulatedBase()
    sim.receive(p.request_extra() + p.set_controller_gain(1, 5, 6, 7) + p.get_controller_gain() + p.sound(440, 50))
    items = sim.feedback_items()
    assert p.HardwareVersion(4, 0, 1) in items and p.FirmwareVersion(0, 2, 1) in items
    assert any(isinstance(i, p.UniqueDeviceId) for i in items)
    assert p.ControllerInfo(1, 5, 6, 7) in items and len(sim.sounds) == 1
    assert not any(isinstance(i, p.UniqueDeviceId) for i in sim.feedback_items())   # once per request


def test_line_faults_damage_and_drop():
    frame = SimulatedBase().feedback_frame()
    faults = LineFaults(noise_rate=1.0, seed=3)
    damaged = [faults.apply(frame) for _ in range(50)]
    assert sum(d != frame for d in damaged) == 50
    assert LineFaults(drop_rate=1.0).apply(frame) == b''


def test_speeds_are_timed_by_the_firmware_clock_across_its_wrap():
    core = fresh_core()
    ticks = round(0.01 * TPM)                                      # 1 cm per 20 ms = 0.5 m/s
    for i, host_time in enumerate((0.0, 0.3, 0.31)):               # host-side jitter, firmware steady
        stamp = (65500 + 20 * i) & 0xFFFF
        core.on_feedback(p.build_frame(p.BasicSensorData(stamp, 0, 0, 0, i * ticks, i * ticks, 0, 0, 0, 0, 160, 0))[3:-1],
                         host_time)
    assert core.pose.vx == pytest.approx(0.5, rel=0.01)


def test_no_feedback_means_no_motion():
    core = DriverCore(DriverLimits(accel_x=100.0, feedback_timeout_s=0.5))
    core.set_velocity(0.3, 0.0, 0.0)
    assert core.command(0.0) == (0, 0)                              # never heard from the base
    core.on_feedback(feedback(), 0.0)
    core.set_velocity(0.3, 0.0, 0.05)
    core.command(0.05)
    assert core.command(0.1) == (300, 0)
    core.set_velocity(0.3, 0.0, 0.6)
    assert core.command(0.6) == (0, 0)                              # 0.6 s without feedback: blind
    core.on_feedback(feedback(), 0.65)
    core.command(0.65)
    assert core.command(0.7) == (300, 0)                            # feedback back, cmd_vel still fresh


@pytest.mark.parametrize('payload, what', [
    (lambda: p.DockingIR(0, 0, 0).encode(), 'docking IR frames only'),
    (lambda: bytes([1, 14]) + feedback(bumper=p.BUMPER_CENTRE)[2:16], 'a sensor sub-payload of the wrong length '
                                                                      '(its bumper pressed)'),
    (lambda: p.HardwareVersion(1, 2, 3).encode(), 'version answers only'),
    (lambda: feedback(ms=1234), 'one sensor sample repeated with its old firmware stamp'),
])
def test_without_new_bumper_and_cliff_samples_the_base_stops(payload, what):
    """Attack (session 12): any valid frame kept the base driving while the bumper, cliff and
    wheel-drop bits were no longer seen; only a new BasicSensorData sample counts."""
    core = DriverCore(DriverLimits(accel_x=100.0, feedback_timeout_s=0.5))
    core.on_feedback(feedback(ms=1200), 0.0)
    outputs = []
    for i in range(1, 60):
        t = i * 0.02
        core.set_velocity(0.3, 0.0, t)
        core.on_feedback(payload(), t)
        outputs.append(core.command(t))
    assert outputs[5] == (300, 0), what                              # driving within the timeout ...
    assert outputs[-1] == (0, 0), what                               # ... stopped after it


def test_a_repeated_sensor_sample_is_no_new_odometry():
    # Attack (session 13): a firmware repeating one sample (its stamp frozen) stopped the base, but
    # every repeat still made /odom, stamped with the node's clock now: the guide and the
    # localisation saw fresh odometry from a frozen base and never paused for it.
    core = DriverCore()
    assert core.on_feedback(feedback(ms=1200), 0.0).odometry
    assert not core.on_feedback(feedback(ms=1200), 0.02).odometry
    assert core.on_feedback(feedback(ms=1220), 0.04).odometry


def test_the_base_never_drives_before_its_first_sensor_sample():
    core = DriverCore(DriverLimits(accel_x=100.0, feedback_timeout_s=0.5))
    for i in range(30):
        core.set_velocity(0.3, 0.0, i * 0.02)
        core.on_feedback(p.HardwareVersion(1, 2, 3).encode(), i * 0.02)
        assert core.command(i * 0.02) == (0, 0)


def test_sim_cannot_reverse_through_a_shelf_and_has_no_rear_bumper():
    sim = SimulatedBase(Wall(1.0), pose=(0.5, 0.0, math.pi))        # back to the shelf
    drive(sim, -0.1, 0.0, 5.0)
    assert 1.0 - 0.18 - 0.025 < sim.state.x < 1.0 - 0.18 - 0.01 + 1e-9
    assert sim.state.bumper == 0 and sim.state.left.speed == 0.0
