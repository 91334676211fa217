"""The one latched QoS profile (ROS 2's "transient local" durability, as `/map` and `/tf_static` use),
and its short-lived kind for what must reach a late subscriber only while it is fresh (`recent`).

A latched publisher keeps its last `depth` messages for subscribers that join later; a subscriber
must ask for the same durability to receive them (the rmw's request-offered matching: a volatile
subscriber gets no history; a transient-local subscriber and a volatile publisher are incompatible
and never connect). Defined once here (tests/layout checks it).
"""

from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy


def latched(depth: int = 1) -> QoSProfile:
    """Reliable, transient local, keeping the last `depth` messages for late subscribers."""
    return QoSProfile(depth=depth, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


LATCHED = latched(1)


def recent(depth: int, lifespan_s: float) -> QoSProfile:
    """Latched for `lifespan_s` only (DDS lifespan): a subscriber matched late (discovery on a busy
    robot, a node restarted) still gets what was published in the last seconds, never older."""
    profile = latched(depth)
    profile.lifespan = Duration(seconds=lifespan_s)
    return profile


# The robot's replies (/dialogue/replies): a reply published before the speaking node's reader was
# matched (seconds after a start on a busy robot) is still said; one older than this is not.
# Every publisher offers it; a subscriber that must not miss a reply (tts) asks for it.
REPLY_LIFESPAN_S = 5.0
REPLIES_QOS = recent(10, REPLY_LIFESPAN_S)
