"""Face-enrolment consent given by the customer on the robot's own screen.

Pure (no web framework, no rclpy). Staff start an enrolment from the console for the person in
front of the robot (the current track); nothing is enrolled until that customer taps "I agree"
on the robot's screen. The screen proves it is the robot's screen with the per-boot screen
secret, which the server hands only to a page loaded from a loopback peer (web.py); a remote
client can start a request (staff) but never answer it. A request is answered once, expires
after `ttl_s`, and is void if another person is in front of the robot by then.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

WAITING, ENROLLING, ENROLLED, DECLINED, EXPIRED, FAILED = (
    'waiting', 'enrolling', 'enrolled', 'declined', 'expired', 'failed')


@dataclass(frozen=True)
class EnrolmentRequest:
    id: str
    track_id: int
    customer_id: str
    display_name: str
    vip: bool
    requested_by: str
    created: float
    state: str = WAITING
    message: str = ''


class ConsentDesk:
    """At most one enrolment waits for consent at a time; the newest request replaces an older one."""

    def __init__(self, ttl_s: float = 120.0, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.ttl_s, self.clock, self.on_change = ttl_s, clock, on_change
        self._current: EnrolmentRequest | None = None
        self._lock = threading.Lock()

    def _expire(self) -> None:
        c = self._current
        if c is not None and c.state == WAITING and self.clock() - c.created > self.ttl_s:
            self._current = replace(c, state=EXPIRED, message='the customer did not answer on the screen in time')

    def request(self, track_id: int, customer_id: str, display_name: str, vip: bool,
                requested_by: str) -> EnrolmentRequest:
        with self._lock:
            self._current = EnrolmentRequest(secrets.token_hex(8), track_id, customer_id, display_name, vip,
                                             requested_by, self.clock())
            current = self._current
        self.on_change()
        return current

    def current(self) -> EnrolmentRequest | None:
        with self._lock:
            self._expire()
            return self._current

    def answer(self, request_id: str, agree: bool, track_now: int) -> tuple[EnrolmentRequest | None, str]:
        """The customer's answer; (request now ENROLLING, '') when it may go ahead, else (request, why not)."""
        with self._lock:
            self._expire()
            c = self._current
            if c is None or c.id != request_id:
                return None, 'no such enrolment request'
            if c.state != WAITING:
                return c, f'this enrolment request is {c.state}'
            if not agree:
                self._current = replace(c, state=DECLINED, message='the customer declined on the screen')
            elif track_now != c.track_id:
                self._current = replace(c, state=FAILED, message='another person is in front of the robot now')
            else:
                self._current = replace(c, state=ENROLLING, message='the customer agreed on the screen')
            result = self._current
        self.on_change()
        return result, '' if result.state == ENROLLING else result.message

    def finish(self, request_id: str, success: bool, message: str) -> None:
        with self._lock:
            c = self._current
            if c is None or c.id != request_id:
                return
            self._current = replace(c, state=ENROLLED if success else FAILED, message=message)
        self.on_change()

    def screen_view(self) -> dict | None:
        """What the screen shows: the question, never the name or id staff typed."""
        c = self.current()
        if c is None or c.state != WAITING:
            return None
        return {'id': c.id, 'track_id': c.track_id}

    def console_view(self) -> dict | None:
        c = self.current()
        if c is None:
            return None
        return {'id': c.id, 'track_id': c.track_id, 'customer_id': c.customer_id, 'state': c.state,
                'message': c.message}


def consent_reference(request: EnrolmentRequest, when: float | None = None) -> str:
    """The consent reference stored with the member: given on the robot's screen, which request, when."""
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(time.time() if when is None else when))
    return f'screen-{stamp}-{request.id}'
