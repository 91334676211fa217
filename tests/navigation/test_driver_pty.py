"""The driver (real pyserial) against the simulated firmware on a real pseudo-terminal."""
from __future__ import annotations

import math
import time

import pytest

from retail_navigation import protocol as p
from retail_navigation.odometry import wrap_angle
from retail_navigation.serial_base import LinkState
from rostest_support import wait_for

from nav_base_support import at_rest, drive


def position_error(sim, link) -> float:
    x, y, _ = sim.state()['pose']
    return math.hypot(link.core.pose.x - x, link.core.pose.y - y)


def test_straight_run_odometry(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link)
    drive(link, 0.3, 0.0, 3.0)
    at_rest(sim, link)
    truth = sim.state()
    assert truth['pose'][0] > 0.7                                   # it really drove ~0.8 m
    assert link.core.pose.x == pytest.approx(truth['pose'][0], rel=0.02)
    assert abs(link.core.pose.y) < 0.01 and abs(link.core.pose.theta) < 0.01
    assert link.decoder.frames_bad == 0


def test_turn_on_the_spot_odometry(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link)
    drive(link, 0.0, -1.2, 2.5)
    at_rest(sim, link)
    truth_theta = sim.state()['pose'][2]
    assert truth_theta < -1.5 or truth_theta > 1.5                  # turned well past 90 deg
    assert abs(wrap_angle(link.core.pose.theta - truth_theta)) < 0.02 * 2.5
    assert position_error(sim, link) < 0.01


def test_arc_odometry(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link)
    drive(link, 0.25, 0.5, 3.0)
    at_rest(sim, link)
    truth = sim.state()
    assert truth['pose'][1] > 0.1 and truth['pose'][2] > 0.8
    assert position_error(sim, link) < 0.025 * truth['odometer_m']
    assert abs(wrap_angle(link.core.pose.theta - truth['pose'][2])) < 0.02


def test_encoders_wrapping_past_65535(base_sim, driver):
    sim = base_sim(encoder_start=(65000, 64800))
    link = driver(sim.link)
    drive(link, 0.3, 0.0, 2.5)
    at_rest(sim, link)
    assert link.core.basic.left_encoder < 65000                     # it wrapped
    assert link.core.pose.x == pytest.approx(sim.state()['pose'][0], rel=0.02)


def test_noisy_line_still_gives_good_odometry(base_sim, driver):
    sim = base_sim(noise=0.1, drop=0.05)
    link = driver(sim.link)
    drive(link, 0.25, 0.3, 2.5)
    at_rest(sim, link)
    assert link.decoder.frames_bad > 0 and sim.faults.frames_dropped > 0
    assert position_error(sim, link) < 0.03 * sim.state()['odometer_m'] + 0.005
    assert link.state == LinkState.CONNECTED


def test_watchdog_stops_the_base_when_cmd_vel_stops(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link, accel_x=10.0)
    for _ in range(5):
        link.set_velocity(0.2, 0.0)
        time.sleep(0.05)
    last_cmd = time.monotonic()
    wait_for(lambda: sim.base.last_command == (200, 0), 2.0, 'the base to get the speed')
    stopped = wait_for(lambda: sim.base.last_command == (0, 0) and time.monotonic(), 3.0,
                       'the watchdog to stop the base')
    assert stopped - last_cmd >= 0.55                                # not before the 0.6 s timeout
    assert link.core.watchdog_stops == 1
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 3.0, 'the wheels to stop')


def test_bumper_stop_is_latched_until_clear_and_reset(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link, accel_x=10.0)
    link.set_velocity(0.2, 0.0)
    wait_for(lambda: sim.base.last_command == (200, 0), 2.0, 'driving')
    sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_LEFT})
    wait_for(lambda: link.core.safety.latched, 2.0, 'the safety latch')
    wait_for(lambda: sim.base.last_command == (0, 0), 1.0, 'the stop command')
    assert 'bumper left' in link.core.safety.reason
    for _ in range(6):                                              # cmd_vel keeps coming: ignored
        link.set_velocity(0.2, 0.0)
        time.sleep(0.05)
    assert sim.base.last_command == (0, 0)
    ok, message = link.core.reset_safety()
    assert not ok and 'bumper left' in message
    sim.handle_control({'cmd': 'bumper', 'bits': 0})
    wait_for(lambda: link.core.safety.bumper == 0, 2.0, 'the bumper released')
    link.set_velocity(0.2, 0.0)
    time.sleep(0.1)
    assert link.core.safety.latched and sim.base.last_command == (0, 0)   # no automatic restart
    assert link.core.reset_safety() == (True, 'safety stop cleared')
    link.set_velocity(0.2, 0.0)
    wait_for(lambda: sim.base.last_command == (200, 0), 2.0, 'driving again after the reset')


class Shelf:
    """A shelf face at x = 0.6 m."""

    def is_occupied_world(self, x, y):
        return x >= 0.6

    def is_free_world(self, x, y):
        return x < 0.6


def test_driving_into_a_shelf_stops_and_latches(base_sim, driver):
    sim = base_sim(floor=Shelf())
    link = driver(sim.link)
    drive(link, 0.3, 0.0, 3.0)
    assert link.core.safety.latched and 'bumper centre' in link.core.safety.reason
    at_rest(sim, link)
    assert sim.state()['pose'][0] < 0.6 - 0.18
    wait_for(lambda: link.core.safety.bumper == 0, 2.0, 'the bumper to spring back')
    assert link.core.reset_safety()[0]                              # then the robot can back away
    drive(link, -0.1, 0.0, 1.0)
    at_rest(sim, link)
    assert sim.state()['pose'][0] < 0.6 - 0.18 - 0.05 and not link.core.safety.latched


def test_unplug_stops_and_reconnects(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link)
    link.backoff.initial_s = 0.05
    drive(link, 0.2, 0.0, 1.0)
    link.set_velocity(0.2, 0.0)
    sim.handle_control({'cmd': 'unplug'})
    assert not sim.link.exists()
    wait_for(lambda: link.state == LinkState.DISCONNECTED, 3.0, 'the driver to notice the unplug')
    link.set_velocity(0.2, 0.0)                                     # nowhere to go: no exception
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 3.0, 'the motors to stop')
    time.sleep(0.5)                                                  # several failed reopen attempts
    assert link.backoff.attempts >= 2
    x_before = link.core.pose.x
    sim.handle_control({'cmd': 'replug'})
    wait_for(lambda: link.state == LinkState.CONNECTED, 5.0, 'the driver to reconnect')
    assert link.stats.connects == 2 and link.stats.disconnects == 1
    drive(link, 0.2, 0.0, 1.0)
    at_rest(sim, link)
    assert link.core.pose.x > x_before + 0.1                        # odometry continues, no jump back
    assert link.core.pose.x < x_before + 0.3


def test_driver_reads_versions_and_id(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link)
    wait_for(lambda: link.core.info.unique_id, 2.0, 'the unique id')
    assert link.core.info.hardware_version == '1.0.4' and link.core.info.firmware_version == '1.2.0'


def test_a_silent_base_is_stopped_then_the_port_reopened(base_sim, driver):
    sim = base_sim()
    link = driver(sim.link, accel_x=10.0)

    def keep_driving_until(predicate, timeout, what):
        return wait_for(lambda: link.set_velocity(0.2, 0.0) or predicate(), timeout, what, interval=0.05)

    keep_driving_until(lambda: sim.base.last_command == (200, 0), 2.0, 'driving')
    sim.handle_control({'cmd': 'faults', 'drop': 1.0})              # the feedback line goes quiet
    keep_driving_until(lambda: sim.base.last_command == (0, 0), 2.0, 'a stop although cmd_vel keeps coming')
    assert link.core.watchdog_stops == 0 and not link.core.safety.latched
    keep_driving_until(lambda: link.stats.disconnects >= 1, 8.0, 'the silent port to be reopened')
    sim.handle_control({'cmd': 'faults', 'drop': 0.0})
    keep_driving_until(lambda: sim.base.last_command == (200, 0), 8.0, 'driving again once feedback is back')


def test_a_cmd_vel_flood_does_not_flood_the_serial_line(base_sim):
    # Attack (session 13): every cmd_vel was written to the port at once. A flood (a publisher in a
    # tight loop, a replayed burst) filled the serial line's transmit buffer (115200 baud: about
    # 1,000 frames/s, a 4 KB buffer: a third of a second of queued commands), so the stop for a
    # bumper hit reached the motors behind it. Frames are written at most every half control
    # period; the latest command goes out on the next control tick. Time here is the link's clock,
    # held still, so the count is exact.
    from retail_navigation.base_driver import DriverCore
    from retail_navigation.serial_base import SerialBase
    sim = base_sim()
    now = [1000.0]
    link = SerialBase(str(sim.link), DriverCore(), clock=lambda: now[0]).start()
    try:
        wait_for(lambda: link.state == LinkState.CONNECTED and link.core.basic is not None, 5.0, 'connected')
        link.commanding = True
        link.set_velocity(0.0, 0.0)
        written = link.stats.commands_written
        for _ in range(1000):                     # a thousand commands within one instant of the clock
            link.set_velocity(0.2, 0.0)
        assert link.stats.commands_written - written <= 1
        now[0] += 2 * link.control_period         # the next control tick sends the latest command
        wait_for(lambda: sim.base.last_command[0] > 0, 5.0, 'the latest command on the wire')
        written = link.stats.commands_written
        link.set_velocity(0.2, 0.0)
        link.set_velocity(0.0, 0.0)               # the collision monitor's stop: never held back
        assert link.stats.commands_written == written + 1       # (ramping down from there on each tick)
        sim.handle_control({'cmd': 'bumper', 'bits': p.BUMPER_CENTRE})     # a stop is never held back
        wait_for(lambda: link.core.safety.latched, 5.0, 'the bumper latch')
        wait_for(lambda: sim.base.last_command == (0, 0), 5.0, 'the stop on the wire at once')
    finally:
        link.close()


class ShelfAt:
    """A shelf face at x = `x` (occupied beyond), free floor before it."""

    def __init__(self, x: float) -> None:
        self.x = x

    def is_occupied_world(self, x, y):
        return x >= self.x

    def is_free_world(self, x, y):
        return x < self.x


def test_backing_into_something_stalls_the_wheels_and_latches_a_safety_stop(base_sim, driver):
    # Attack (session 13): the base has no rear bumper. Reversing into a shelf or a person (the
    # guide backing away from a bumper hit, a lidar that cannot see low behind) stalled the wheels
    # (over-current) and the driver kept pushing at its reverse command for as long as it came.
    # Wheels stalled for stall_s while driven are a safety stop, latched like the bumper.
    sim = base_sim(ShelfAt(1.0), pose=(0.70, 0.0, math.pi))      # its back 12 cm from the shelf
    link = driver(sim.link)

    def backing() -> bool:
        link.set_velocity(-0.1, 0.0)
        return link.core.safety.latched
    wait_for(backing, 10.0, 'a latched stop while backing into the shelf')
    assert 'stalled' in link.core.safety.reason
    for _ in range(20):                                   # the reverse command keeps coming: held
        link.set_velocity(-0.1, 0.0)
    wait_for(lambda: sim.base.last_command == (0, 0) and sim.state()['wheel_speeds'] == [0.0, 0.0], 5.0,
             'the motors stopped')
    wait_for(lambda: not link.core.safety.stall, 5.0, 'no over-current once stopped')   # staff may reset
    assert link.core.reset_safety()[0]
