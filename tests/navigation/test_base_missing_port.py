"""A base driver started without its base says so at once, in a store's words, on its log and on
/diagnostics, keeps retrying, and drives as soon as the base appears (issue 17 item 2)."""
from __future__ import annotations

import errno
import subprocess

import serial
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node

from retail_navigation.base_sim import SimConfig, SimulatedBase
from retail_navigation.pty_sim import PtySimulator
from retail_navigation.serial_base import LinkState, describe_link, open_failure
from rostest_support import console_script, wait_for

STATUS = 'navigation/base: serial link'


def base_status(arrays: list[DiagnosticArray]) -> DiagnosticStatus | None:
    for array in reversed(arrays):
        for status in array.status:
            if status.name == STATUS:
                return status
    return None


def test_missing_port_is_reported_at_start_and_on_diagnostics_then_the_base_connects(
        ros_context, spin, ros_env, processes, tmp_path):
    port = tmp_path / 'ttyUSB9'
    log = tmp_path / 'driver.log'
    listener = Node('technician', context=ros_context)
    arrays: list[DiagnosticArray] = []
    listener.create_subscription(DiagnosticArray, '/diagnostics', arrays.append, 10)
    spin(listener)
    with log.open('w') as stream:
        driver = processes([console_script('retail_navigation_base_driver'), '--ros-args', '-r', '__ns:=/navigation',
                            '-p', f'port:={port}', '-p', 'diagnostics_period_s:=0.5'],
                           env=ros_env, stdout=stream, stderr=subprocess.STDOUT)
    wait_for(lambda: 'no base found' in log.read_text(), 10.0, 'the driver to log the missing base')
    first = next(line for line in log.read_text().splitlines() if 'no base found' in line)
    assert 'ERROR' in first and f'no serial device {port}' in first and 'plugged in' in first
    status = wait_for(lambda: base_status(arrays), 10.0, 'base diagnostics')
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.ERROR and values['link_state'] == 'missing'
    assert f'no serial device {port}' in status.message and 'retrying' in status.message
    assert driver.poll() is None                                     # still running, still retrying
    with PtySimulator(SimulatedBase(None, (0.0, 0.0, 0.0), SimConfig()), port):
        wait_for(lambda: (s := base_status(arrays)) is not None and s.level == DiagnosticStatus.OK, 15.0,
                 'the driver to find the base once it is plugged in')
    # Cable pulled while running (the simulator's pty goes away): ERROR with the reason, in seconds.
    lost = wait_for(lambda: (s := base_status(arrays)) is not None and s.level == DiagnosticStatus.ERROR and s,
                    10.0, 'the driver to report the lost base')
    assert lost.message.startswith(f'base lost on {port}') and 'retrying' in lost.message
    assert driver.poll() is None and 'Traceback' not in log.read_text()


def test_open_failures_in_a_store_s_words():
    def failure(code: int, text: str) -> str:
        return open_failure('/dev/ttyUSB0', serial.SerialException(code, text))
    assert 'no serial device /dev/ttyUSB0' in failure(errno.ENOENT, 'could not open port: No such file or directory')
    assert 'dialout' in failure(errno.EACCES, 'could not open port: Permission denied')
    assert 'in use by another program' in failure(errno.EAGAIN, 'Could not exclusively lock port')
    assert 'switched off' in failure(errno.ENXIO, 'No such device or address')
    assert describe_link('/dev/ttyUSB0', LinkState.DISCONNECTED, 'read failed: EIO').startswith('base lost on')
