"""The one latched QoS profile (ROS 2's "transient local" durability, as `/map` and `/tf_static` use).

A latched publisher keeps its last `depth` messages for subscribers that join later; a subscriber
must ask for the same durability to receive them (the rmw's request-offered matching: a volatile
subscriber gets no history; a transient-local subscriber and a volatile publisher are incompatible
and never connect). Defined once here (tests/layout checks it).
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def latched(depth: int = 1) -> QoSProfile:
    """Reliable, transient local, keeping the last `depth` messages for late subscribers."""
    return QoSProfile(depth=depth, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


LATCHED = latched(1)
