"""Shared by the base tests: the simulated base on a real pty, the driver on real pyserial (fixtures,
re-exported by conftest.py), and helpers that drive like a planner does.
"""
from __future__ import annotations

import time

import pytest

from retail_navigation.base_driver import DriverCore, DriverLimits
from retail_navigation.base_sim import LineFaults, SimConfig, SimulatedBase
from retail_navigation.pty_sim import PtySimulator
from retail_navigation.serial_base import LinkState, SerialBase
from rostest_support import wait_for


@pytest.fixture
def base_sim(tmp_path):
    """base_sim(floor=None, pose=(0, 0, 0), noise=0, drop=0, **SimConfig fields) -> running PtySimulator."""
    started: list[PtySimulator] = []

    def _start(floor=None, pose=(0.0, 0.0, 0.0), noise=0.0, drop=0.0, **config) -> PtySimulator:
        sim = PtySimulator(SimulatedBase(floor, pose, SimConfig(**config)), tmp_path / f'base{len(started)}',
                           faults=LineFaults(noise, drop, seed=7))
        started.append(sim.start())
        return sim

    yield _start
    for sim in started:
        sim.stop()


@pytest.fixture
def driver():
    """driver(port, **DriverLimits fields) -> a connected, commanding SerialBase (closed afterwards)."""
    started: list[SerialBase] = []

    def _start(port, **limits) -> SerialBase:
        link = SerialBase(str(port), DriverCore(DriverLimits(**limits))).start()
        started.append(link)
        wait_for(lambda: link.state == LinkState.CONNECTED and link.core.basic is not None, 5.0,
                 f'driver connected to {port}')
        link.commanding = True
        return link

    yield _start
    for link in started:
        link.close()


def drive(link: SerialBase, vx: float, wz: float, seconds: float, rate_hz: float = 20.0) -> None:
    """Send cmd_vel at `rate_hz` for `seconds` (what a planner does), then stop."""
    period = 1.0 / rate_hz
    end = time.monotonic() + seconds
    next_send = time.monotonic()
    while time.monotonic() < end:
        link.set_velocity(vx, wz)
        next_send += period
        time.sleep(max(0.0, next_send - time.monotonic()))
    link.stop_motion()


def at_rest(sim: PtySimulator, link: SerialBase) -> None:
    """Wait until the simulated wheels stopped and the driver has seen the last encoder ticks."""
    wait_for(lambda: sim.state()['wheel_speeds'] == [0.0, 0.0], 5.0, 'the base to stop')
    frames = link.decoder.frames_ok
    wait_for(lambda: link.decoder.frames_ok >= frames + 3, 5.0, 'feedback after stopping')
