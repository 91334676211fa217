"""EventSender: how a node hands interaction events to the sync agent without losing any.

A topic drops what is published while nobody listens (the sync agent restarting, starting late,
killed). The sender keeps every event until the agent's `/sync/record_events` service answers
that it is on disk, and asks again every `retry_s` until then; a request the agent never answers
(it hung or died mid-call) is abandoned after `answer_timeout_s` and its events are asked again.
Only that service stores events; each event also goes out on `/sync/interaction_events` for
observers (the screen, the store day), which nothing stores. Each event has a UUID (the
idempotency key), so a retry after a lost answer is stored once. What waits is bounded
(`max_pending`, oldest dropped with an error log); it lives in this process's memory: it
survives any number of agent crashes and hangs, not the end of this process.

What is sent is a payload model of `retail_common.events` (one declared, versioned type per
event): the message carries its `TYPE`, its `VERSION` and its fields as JSON, so a producer can
only send a declared shape (a wrong field fails where the model is built, in the producer).

Locking: `_lock` guards only this object's own state. Nothing that calls into rclpy (call_async,
cancel, remove_pending_request, service_is_ready, logging) runs while it is held, so a
done-callback rclpy runs synchronously (a cancelled future) can never deadlock the node.
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
from retail_common.events import EventPayload

TOPIC = names.INTERACTION_EVENTS
SERVICE = names.RECORD_EVENTS


class EventSender:
    def __init__(
        self,
        node: Node,
        source: str,
        retry_s: float = 1.0,
        batch: int = 100,
        max_pending: int = 10000,
        answer_timeout_s: float = 10.0,
    ) -> None:
        self.node = node
        self.source = source
        self.batch = batch
        self.max_pending = max_pending
        self.answer_timeout_s = answer_timeout_s
        self.pending: OrderedDict[str, InteractionEvent] = OrderedDict()
        self.dropped = 0
        self._lock = threading.Lock()
        # (since, future or None while call_async is being made) of the one request in flight
        self._in_flight: tuple[float, object | None] | None = None
        self._waiting_logged = False
        self.publisher = node.create_publisher(InteractionEvent, TOPIC, 50)
        self.client = node.create_client(RecordEvents, SERVICE)
        self._timer = node.create_timer(retry_s, self.flush)

    def send(self, payload: EventPayload, customer: str = '') -> str:
        """Queue one event (a payload model of `retail_common.events`) for the outbox; returns
        its event_id."""
        if not isinstance(payload, EventPayload):
            raise TypeError(
                f'EventSender.send takes a retail_common.events payload model, not {type(payload).__name__}'
            )
        msg = InteractionEvent(
            type=payload.TYPE,
            version=payload.VERSION,
            customer_pseudonym=customer,
            source=self.source,
            payload_json=json.dumps(payload.to_data(), ensure_ascii=False),
            event_id=str(uuid.uuid4()),
        )
        msg.header.stamp = self.node.get_clock().now().to_msg()
        dropped = []
        with self._lock:
            self.pending[msg.event_id] = msg
            while len(self.pending) > self.max_pending:
                _, old = self.pending.popitem(last=False)
                self.dropped += 1
                dropped.append(old)
        for old in dropped:
            self.node.get_logger().error(
                f'sync agent unreachable and {self.max_pending} events waiting: '
                f'dropped the oldest ({old.type}, {old.event_id})'
            )
        self.publisher.publish(msg)
        self.flush()
        return msg.event_id

    def flush(self) -> None:
        """Send what waits, one request at a time; called on send and by the retry timer."""
        stale = None
        with self._lock:
            if not self.pending:
                return
            if self._in_flight is not None:
                since, future = self._in_flight
                if future is None or time.monotonic() - since < self.answer_timeout_s:
                    return
                stale = future  # the agent hung or died mid-call: ask again
                self._in_flight = None
        if stale is not None:
            self.client.remove_pending_request(stale)
            stale.cancel()  # may run _answered right here: lock is free
        if not self.client.service_is_ready():
            with self._lock:
                first = not self._waiting_logged
                self._waiting_logged = True
                waiting = len(self.pending)
            if first:
                self.node.get_logger().warning(
                    f'sync agent not reachable ({SERVICE}): keeping {waiting} events until it is'
                )
            return
        with self._lock:
            if self._in_flight is not None or not self.pending:
                return
            since = time.monotonic()
            self._in_flight = (since, None)  # reserved: no second request meanwhile
            events = list(self.pending.values())[: self.batch]
        try:
            future = self.client.call_async(RecordEvents.Request(events=events))
        except BaseException:
            with self._lock:
                self._in_flight = None
            raise
        with self._lock:
            if self._in_flight is not None and self._in_flight[0] == since:
                self._in_flight = (since, future)
        future.add_done_callback(self._answered)

    def _answered(self, future) -> None:
        response = None if future.cancelled() else future.result()
        refused, recovered = [], False
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
                    refused.append(line)
            if self._waiting_logged and not self.pending:
                self._waiting_logged = False
                recovered = True
            more = bool(response.stored_ids or refused) and bool(self.pending)
        for line in refused:
            self.node.get_logger().error(f'sync agent refused event {line}')
        if recovered:
            self.node.get_logger().info('sync agent reachable again: every waiting event is in the outbox')
        if more:
            self.flush()
