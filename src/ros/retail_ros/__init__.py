"""ROS 2 shims of the retail robot: what it copies of ROS, in one place (see README.md)."""
