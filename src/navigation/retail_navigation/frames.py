"""Planar frame maths (REP-103: x forward, y left, yaw counter-clockwise), in one place.

Pure (no rclpy). A pose is `(x, y, yaw)`; `compose(a, b)` is a ∘ b: pose `b`, given in the frame
whose origin is pose `a`, expressed in a's parent frame (map -> odom ∘ odom -> base_link =
map -> base_link). Quaternions are read and written as `(x, y, z, w)` or any object with those
attributes (geometry_msgs/Quaternion), so the module needs no message package.

Frame names the robot uses (REP-105); nodes take their own as parameters and default to these.
"""
from __future__ import annotations

import math
from typing import Protocol

Pose = tuple[float, float, float]
Point = tuple[float, float]

MAP = 'map'
ODOM = 'odom'
BASE_LINK = 'base_link'
LASER = 'laser'


class QuaternionLike(Protocol):
    x: float
    y: float
    z: float
    w: float


def wrap_angle(angle: float) -> float:
    """`angle` in [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def yaw_of(q: QuaternionLike) -> float:
    """Heading (rotation about z) of a quaternion; roll and pitch are ignored."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def quaternion_xyzw(yaw: float) -> tuple[float, float, float, float]:
    """The quaternion of a heading, as (x, y, z, w)."""
    return 0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0)


def compose(a: Pose, b: Pose) -> Pose:
    """a ∘ b: pose b given in frame a, expressed in a's parent frame."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], wrap_angle(a[2] + b[2])


def inverse(a: Pose) -> Pose:
    """a⁻¹: the parent frame seen from pose a."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return -c * a[0] - s * a[1], s * a[0] - c * a[1], wrap_angle(-a[2])


def relative(a: Pose, b: Pose) -> Pose:
    """a⁻¹ ∘ b: pose b seen from pose a."""
    return compose(inverse(a), b)


def transform_point(frame: Pose, point: Point) -> Point:
    """A point given in `frame` (a pose in the parent frame), in the parent frame."""
    c, s = math.cos(frame[2]), math.sin(frame[2])
    return frame[0] + c * point[0] - s * point[1], frame[1] + s * point[0] + c * point[1]


def to_local(frame: Pose, point: Point) -> Point:
    """A point of the parent frame, seen from `frame` (x ahead, y to the left)."""
    dx, dy = point[0] - frame[0], point[1] - frame[1]
    c, s = math.cos(frame[2]), math.sin(frame[2])
    return c * dx + s * dy, -s * dx + c * dy
