"""Node /health: collects every node's /diagnostics and reports the robot's overall health."""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node

from retail_bringup.health import HealthBoard
from retail_common import names
from retail_ros.node_support import diagnostic_status, declare_params, main_for
from retail_ros.params import ParamSpec

SPECS = [
    ParamSpec('period_s', 1.0, 'How often the overall health is published (seconds).', min=0.05, max=60.0),
    ParamSpec('stale_after_s', 5.0, 'A part silent this long is reported stale (seconds).', min=0.5, max=3600.0),
]
SUMMARY_NAME = 'robot health'


class HealthNode(Node):
    def __init__(self, **kwargs):
        super().__init__('health', **kwargs)
        self.params = declare_params(self, SPECS)
        self.board = HealthBoard(self.params.stale_after_s)
        self.publisher = self.create_publisher(DiagnosticArray, names.DIAGNOSTICS, 10)
        self.create_subscription(DiagnosticArray, names.DIAGNOSTICS, self._on_diagnostics, 50)
        self.create_timer(self.params.period_s, self._publish)
        self._reported_stale: set[str] = set()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.monotonic()
        for status in msg.status:
            if status.name == SUMMARY_NAME:
                continue
            change = self.board.update(status.name, status.level[0] if isinstance(status.level, bytes)
                                       else int(status.level), status.message, now)
            if change:
                self.get_logger().info(change)

    def _publish(self) -> None:
        now = time.monotonic()
        stale = set(self.board.stale(now))
        for name in sorted(stale - self._reported_stale):
            self.get_logger().warning(f'{name}: no report for {self.board.stale_after_s:.0f} s')
        self._reported_stale = stale
        level, message = self.board.summary(now)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [diagnostic_status(SUMMARY_NAME, level, message, {'parts': len(self.board.parts)})]
        self.publisher.publish(array)


main = main_for(HealthNode)
