"""Odometry of the differential base from 16-bit wrapping wheel encoders and the gyro heading.

Pure. Distance comes from the encoders (their difference taken modulo 65536 as a signed 16-bit
value, so a wrap is a small step, not a jump); heading comes from the gyro when it is available
(it does not drift with wheel slip on a shop's polished floor), else from the wheel difference.
A sample no wheel or turn can make in its time (`MAX_WHEEL_MPS`, `MAX_TURN_RAD_S`: a firmware reset
mid-motion starting its counters and gyro from zero, a bit error the checksum missed) is not
integrated: it is the new origin (counted in `jumps`, described in `last_jump`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from retail_navigation.frames import wrap_angle
from retail_navigation.protocol import TICKS_PER_METRE, WHEELBASE_M

__all__ = ['MAX_TURN_RAD_S', 'MAX_WHEEL_MPS', 'Odometry', 'Pose2D', 'encoder_delta', 'wrap_angle']

MAX_WHEEL_MPS = 1.0            # no wheel of the base is faster (it drives at most 0.7 m/s)
MAX_TURN_RAD_S = math.pi       # nor does it turn faster (110 deg/s)
LONGEST_SAMPLE_S = 0.5         # a longer gap is judged as this long (the driver stops after 0.5 s silent)


def encoder_delta(previous: int, current: int) -> int:
    """current - previous of a 16-bit counter, as a signed 16-bit value."""
    delta = (current - previous) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta


@dataclass
class Pose2D:
    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0
    vx: float = 0.0       # m/s, forward
    wz: float = 0.0       # rad/s


class Odometry:
    """Integrates encoder ticks (and the gyro angle) into a pose in the odom frame."""

    def __init__(self, ticks_per_metre: float = TICKS_PER_METRE, wheelbase: float = WHEELBASE_M,
                 use_gyro: bool = True) -> None:
        self.ticks_per_metre = ticks_per_metre
        self.wheelbase = wheelbase
        self.use_gyro = use_gyro
        self.pose = Pose2D()
        self._last_ticks: tuple[int, int] | None = None
        self._last_gyro: float | None = None
        self._last_time: float | None = None
        self.jumps = 0                 # samples taken as a new origin (a step no wheel can make)
        self.last_jump = ''

    def restart_counting(self) -> None:
        """After a reconnect the encoders may have moved unseen: take the next reading as the new origin."""
        self._last_ticks = None
        self._last_gyro = None
        self._last_time = None

    def update(self, left_ticks: int, right_ticks: int, gyro_angle: float | None, now: float) -> Pose2D:
        """Advance the pose with one feedback sample; `gyro_angle` in rad (any origin) or None."""
        if self._last_ticks is None or self._last_time is None:
            self._last_ticks = (left_ticks, right_ticks)
            self._last_gyro = gyro_angle
            self._last_time = now
            return self.pose
        left = encoder_delta(self._last_ticks[0], left_ticks) / self.ticks_per_metre
        right = encoder_delta(self._last_ticks[1], right_ticks) / self.ticks_per_metre
        span = min(max(now - self._last_time, 0.0), LONGEST_SAMPLE_S)
        gyro_step = (wrap_angle(gyro_angle - self._last_gyro)
                     if self.use_gyro and gyro_angle is not None and self._last_gyro is not None else None)
        reach = MAX_WHEEL_MPS * span + 0.01
        if abs(left) > reach or abs(right) > reach or (
                gyro_step is not None and abs(gyro_step) > MAX_TURN_RAD_S * span + 0.05):
            self.jumps += 1
            turn = f', gyro {math.degrees(gyro_step):.0f} deg' if gyro_step is not None else ''
            self.last_jump = (f'wheels {left:+.2f} m / {right:+.2f} m{turn} in {span * 1000:.0f} ms (firmware reset?): '
                              'taken as a new origin, not as motion')
            self._last_ticks, self._last_gyro, self._last_time = (left_ticks, right_ticks), gyro_angle, now
            return self.pose
        self._last_ticks = (left_ticks, right_ticks)
        distance = (left + right) / 2.0
        if gyro_step is not None:
            dtheta = gyro_step
        else:
            dtheta = (right - left) / self.wheelbase
        self._last_gyro = gyro_angle
        pose = self.pose
        mid = pose.theta + dtheta / 2.0
        pose.x += distance * math.cos(mid)
        pose.y += distance * math.sin(mid)
        pose.theta = wrap_angle(pose.theta + dtheta)
        dt = now - self._last_time
        self._last_time = now
        if dt > 1e-6:
            pose.vx, pose.wz = distance / dt, dtheta / dt
        return pose
