"""EventSender: how a node hands interaction events to the sync agent without losing any.

A topic drops what is published while nobody listens (the sync agent restarting, starting late,
killed). The sender keeps every event until the agent's `/sync/record_events` service answers
that it is on disk, and asks again every `retry_s` until then; events also go out on
`/sync/interaction_events` for observers. Each event has a UUID, so a retry after a lost answer
is stored once. What waits is bounded (`max_pending`, oldest dropped with an error log); it lives
in this process's memory, so a publisher killed while the agent is away loses its waiting events.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict

from rclpy.node import Node

from retail_interfaces.msg import InteractionEvent
from retail_interfaces.srv import RecordEvents
from retail_common import names

TOPIC = names.INTERACTION_EVENTS
SERVICE = names.RECORD_EVENTS


class EventSender:
    def __init__(self, node: Node, source: str, retry_s: float = 1.0, batch: int = 100,
                 max_pending: int = 10000, answer_timeout_s: float = 10.0) -> None:
        self.node = node
        self.source = source
        self.batch = batch
        self.max_pending = max_pending
        self.answer_timeout_s = answer_timeout_s
        self.pending: OrderedDict[str, InteractionEvent] = OrderedDict()
        self.dropped = 0
        self._lock = threading.Lock()
        self._in_flight: tuple[float, object] | None = None
        self._waiting_logged = False
        self.publisher = node.create_publisher(InteractionEvent, TOPIC, 50)
        self.client = node.create_client(RecordEvents, SERVICE)
        node.create_timer(retry_s, self.flush)

    def send(self, type: str, payload: dict, customer: str = '') -> str:
        """Queue one event for the outbox; returns its event_id."""
        msg = InteractionEvent(type=type, customer_pseudonym=customer, source=self.source,
                               payload_json=json.dumps(payload, ensure_ascii=False),
                               event_id=str(uuid.uuid4()))
        msg.header.stamp = self.node.get_clock().now().to_msg()
        with self._lock:
            self.pending[msg.event_id] = msg
            while len(self.pending) > self.max_pending:
                _, old = self.pending.popitem(last=False)
                self.dropped += 1
                self.node.get_logger().error(
                    f'sync agent unreachable and {self.max_pending} events waiting: '
                    f'dropped the oldest ({old.type}, {old.event_id})')
        self.publisher.publish(msg)
        self.flush()
        return msg.event_id

    def flush(self) -> None:
        """Send what waits, one request at a time; called on send and by the retry timer."""
        with self._lock:
            if not self.pending:
                return
            if self._in_flight is not None:
                since, future = self._in_flight
                if time.monotonic() - since < self.answer_timeout_s:
                    return
                future.cancel()                  # the agent died mid-call: ask again
                self.client.remove_pending_request(future)
                self._in_flight = None
            if not self.client.service_is_ready():
                if not self._waiting_logged:
                    self._waiting_logged = True
                    self.node.get_logger().warning(
                        f'sync agent not reachable ({SERVICE}): keeping {len(self.pending)} events until it is')
                return
            events = list(self.pending.values())[:self.batch]
            future = self.client.call_async(RecordEvents.Request(events=events))
            self._in_flight = (time.monotonic(), future)
        future.add_done_callback(self._answered)

    def _answered(self, future) -> None:
        response = None if future.cancelled() else future.result()
        with self._lock:
            if self._in_flight is not None and self._in_flight[1] is future:
                self._in_flight = None
            if response is None:
                return
            for event_id in response.stored_ids:
                self.pending.pop(event_id, None)
            for line in response.refused:
                event_id = line.split(':', 1)[0]
                if self.pending.pop(event_id, None) is not None:
                    self.node.get_logger().error(f'sync agent refused event {line}')
            if self._waiting_logged and not self.pending:
                self._waiting_logged = False
                self.node.get_logger().info('sync agent reachable again: every waiting event is in the outbox')
        if response.stored_ids and self.pending:
            self.flush()
