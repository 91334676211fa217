"""What the robot shows in Foxglove: the served topics and the driven path. Pure (no rclpy).

Each served topic goes to Foxglove as received (CDR bytes) with its full `ros2msg` schema, so
Foxglove's 3D panel shows the map, TF, pose with covariance, scan, plan, driven path and people with
no extra setup. Camera images are served only as the low-rate view of `camera_view` (faces blurred
unless a staff member is logged in), never raw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from retail_common import names

PLAN = '/navigation/plan'  # nav_msgs/Path (latched): the guide's `plan` in its namespace
DRIVEN_PATH = '/navigation/driven_path'  # nav_msgs/Path made here from /odom (odom frame)
CAMERA_VIEW = '/camera/view'  # sensor_msgs/CompressedImage (JPEG): faces blurred unless staff logged in
STAFF_SESSION = names.STAFF_SESSION  # std_msgs/Bool (latched): a staff member is logged in on the console


@dataclass(frozen=True)
class Served:
    topic: str
    type_name: str
    latched: bool = False


def served_topics(scan_topic: str = names.SCAN) -> list[Served]:
    return [
        Served(names.MAP, 'nav_msgs/msg/OccupancyGrid', latched=True),
        Served(names.TF, 'tf2_msgs/msg/TFMessage'),
        Served(names.TF_STATIC, 'tf2_msgs/msg/TFMessage', latched=True),
        Served(names.POSE, 'geometry_msgs/msg/PoseWithCovarianceStamped'),
        Served(scan_topic, 'sensor_msgs/msg/LaserScan'),
        Served(PLAN, 'nav_msgs/msg/Path', latched=True),
        Served(names.ODOM, 'nav_msgs/msg/Odometry'),
        Served(names.PEOPLE, 'geometry_msgs/msg/PoseArray'),
        Served(names.SAFETY, 'retail_interfaces/msg/BaseSafety', latched=True),
        Served(names.LOCALIZATION_STATE, 'std_msgs/msg/String', latched=True),
    ]


class DrivenPath:
    """The last `max_poses` poses the base drove through, one every `min_step_m` or `min_turn_rad`."""

    def __init__(self, max_poses: int = 2000, min_step_m: float = 0.05, min_turn_rad: float = 0.1) -> None:
        self.max_poses = max_poses
        self.min_step_m = min_step_m
        self.min_turn_rad = min_turn_rad
        self.poses: list[tuple[float, float, float]] = []  # (x, y, yaw)
        self.changed = False

    def add(self, x: float, y: float, yaw: float) -> bool:
        """Take an odometry pose; True when it was added to the path. Non-finite poses are refused."""
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            return False
        if self.poses:
            px, py, pyaw = self.poses[-1]
            turn = abs(math.atan2(math.sin(yaw - pyaw), math.cos(yaw - pyaw)))
            if math.hypot(x - px, y - py) < self.min_step_m and turn < self.min_turn_rad:
                return False
        self.poses.append((x, y, yaw))
        if len(self.poses) > self.max_poses:
            del self.poses[: len(self.poses) - self.max_poses]
        self.changed = True
        return True
