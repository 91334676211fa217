"""Planar frame maths (retail_navigation.frames): the one implementation every node uses."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from retail_navigation.frames import (compose, inverse, quaternion_xyzw, relative, to_local, transform_point,
                                      wrap_angle, yaw_of)

POSES = [(0.0, 0.0, 0.0), (1.0, 2.0, math.pi / 2), (-3.5, 0.25, -2.9), (10.0, -4.0, math.pi)]


@pytest.mark.parametrize('angle,expected', [
    (0.0, 0.0), (math.pi / 2, math.pi / 2), (3 * math.pi / 2, -math.pi / 2), (-3 * math.pi / 2, math.pi / 2),
    (7 * math.pi, -math.pi), (math.pi, -math.pi), (-math.pi, -math.pi), (1e-12, 1e-12),
])
def test_wrap_angle(angle, expected):
    assert wrap_angle(angle) == pytest.approx(expected, abs=1e-9)
    assert -math.pi <= wrap_angle(angle) < math.pi


@pytest.mark.parametrize('yaw', [0.0, 0.3, -1.2, math.pi / 2, 3.0, -3.0])
def test_yaw_round_trips_through_a_quaternion(yaw):
    x, y, z, w = quaternion_xyzw(yaw)
    assert yaw_of(SimpleNamespace(x=x, y=y, z=z, w=w)) == pytest.approx(yaw)


def test_yaw_ignores_a_small_roll():
    # a quaternion with roll 0.1 rad about x, then yaw 0.5 about z (ZYX): the heading is still 0.5
    cr, sr, cy, sy = math.cos(0.05), math.sin(0.05), math.cos(0.25), math.sin(0.25)
    q = SimpleNamespace(x=sr * cy, y=sr * sy, z=cr * sy, w=cr * cy)
    assert yaw_of(q) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize('a', POSES)
@pytest.mark.parametrize('b', POSES)
def test_compose_inverse_and_relative_agree(a, b):
    assert compose(a, inverse(a)) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    back = compose(a, relative(a, b))
    assert back[:2] == pytest.approx(b[:2], abs=1e-9)
    assert wrap_angle(back[2] - b[2]) == pytest.approx(0.0, abs=1e-9)


def test_compose_known_values():
    # map -> odom: odometry started on the dock (0.7, 6.5) facing -x; 1 m forward in odom is -x on the map
    assert compose((0.7, 6.5, math.pi), (1.0, 0.0, 0.0)) == pytest.approx((-0.3, 6.5, -math.pi))
    assert compose((1.0, 1.0, math.pi / 2), (1.0, 0.0, math.pi / 2)) == pytest.approx((1.0, 2.0, -math.pi))


@pytest.mark.parametrize('frame', POSES)
def test_points_to_and_from_a_frame(frame):
    for point in [(0.0, 0.0), (1.0, 0.0), (-2.0, 3.5)]:
        assert to_local(frame, transform_point(frame, point)) == pytest.approx(point, abs=1e-9)
        assert transform_point(frame, point) == pytest.approx(compose(frame, (*point, 0.0))[:2])


def test_to_local_ahead_and_left():
    assert to_local((1.0, 1.0, math.pi / 2), (1.0, 3.0)) == pytest.approx((2.0, 0.0))      # ahead
    assert to_local((1.0, 1.0, math.pi / 2), (0.0, 1.0)) == pytest.approx((0.0, 1.0))      # to the left
