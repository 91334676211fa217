"""Peers for the EventSender system test, each run as its own process:

  python ros_peers.py hung-agent        a /sync/record_events service that takes a request and
                                        never answers (prints "request" when one arrives)
  python ros_peers.py sender N          a node with an EventSender (answer timeout 1 s) that
                                        sends N events at start and then runs until SIGTERM
                                        (prints "pending K" every 0.5 s)
"""
from __future__ import annotations

import sys
import time

from rclpy.node import Node

from retail_common.node_support import run_node


class HungAgent(Node):
    def __init__(self) -> None:
        from retail_interfaces.srv import RecordEvents
        super().__init__('agent', namespace='sync')
        self.create_service(RecordEvents, '/sync/record_events', self._never_answer)

    def _never_answer(self, request, response):
        print(f'request {len(request.events)}', flush=True)
        time.sleep(3600)
        return response


class Sender(Node):
    def __init__(self, count: int) -> None:
        from retail_common.event_sender import EventSender
        from retail_common.events import GuideMission
        super().__init__('manager', namespace='dialogue')
        self.sender = EventSender(self, 'dialogue/manager', retry_s=0.2, answer_timeout_s=1.0)
        for i in range(count):
            self.sender.send(GuideMission(zone='kitchen', status='started', stops_visited=i), customer=f'p-{i}')
        self.create_timer(0.5, lambda: print(f'pending {len(self.sender.pending)}', flush=True))


if __name__ == '__main__':
    role = sys.argv[1]
    if role == 'hung-agent':
        sys.exit(run_node(HungAgent, sys.argv[:1]))
    sys.exit(run_node(lambda: Sender(int(sys.argv[2])), sys.argv[:1]))
