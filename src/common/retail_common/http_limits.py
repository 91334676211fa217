"""Bounds on a request's head (request line and headers) for every server we run: the chain
platform (`retailbot platform serve`, httptools) and the robot's pages (retail_ui, h11).

uvicorn's httptools protocol (the platform's parser: the fastest installed) keeps a header that
has not ended yet in memory without a limit and waits for it without a deadline: one client
sending a 200 MB header line grew an API process by 200 MB before any route or token check ran,
and a connection sending its head a byte at a time held a socket for ever (slowloris). uvicorn's
h11 protocol bounds the size itself (h11_max_incomplete_event_size) but not the time: 400
connections each sending a byte a second took the robot's touch screen and console away (attack,
session 12). These protocols answer 431 and close once the head passes MAX_HEAD_BYTES, and 408
and close when a head is not complete HEAD_TIMEOUT_S after its first byte, or after the
connection opened without sending one.
"""

from __future__ import annotations

import asyncio
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
HEAD_TIMEOUT_ENV = 'RETAILBOT_HTTP_HEAD_TIMEOUT_S'  # tests shorten it


def _refuse(transport, status: int, reason: str, detail: str) -> None:
    body = ('{"detail":"' + detail + '"}').encode()
    transport.write(
        b'HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n'
        b'content-length: %d\r\nconnection: close\r\n\r\n%s' % (status, reason.encode(), len(body), body)
    )
    transport.close()


class _HeadDeadline:
    """The time bound both protocols share: a head not complete `head_timeout_s` after the timer
    was armed is answered 408 and the connection closed. A subclass says when a head is pending
    (`_head_pending`) and arms/cancels the timer at its parser's events."""

    head_timeout_s = float(os.environ.get(HEAD_TIMEOUT_ENV, HEAD_TIMEOUT_S))
    _head_timer: asyncio.TimerHandle | None = None
    transport: asyncio.Transport

    def _head_pending(self) -> bool:
        raise NotImplementedError

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = asyncio.get_running_loop().call_later(self.head_timeout_s, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._head_pending() and not self.transport.is_closing():
            self._refuse(
                408, 'Request Timeout', f'request line and headers not complete within {self.head_timeout_s:g} s'
            )

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._cancel_head_timer()
        _refuse(self.transport, status, reason, detail)


class BoundedHttpToolsProtocol(_HeadDeadline, HttpToolsProtocol):
    """HttpToolsProtocol with a size and a time bound on each request's head."""

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0

    def _head_pending(self) -> bool:
        return self._in_head

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._in_head = True  # the first head is due from now
        self._arm_head_timer()

    # the parser's callbacks: a head starts and ends
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)  # what the parser holds of an unfinished head
            if self._head_bytes > self.max_head_bytes:
                self._refuse(
                    431,
                    'Request Header Fields Too Large',
                    f'request line and headers longer than {self.max_head_bytes} bytes',
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._in_head = False
        super()._refuse(status, reason, detail)


class BoundedH11Protocol(_HeadDeadline, H11Protocol):
    """H11Protocol with a time bound on each request's head (h11 bounds its size)."""

    def _head_pending(self) -> bool:
        return self.conn.their_state is h11.IDLE

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()  # the first head is due from now

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # the first byte of a next head
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()  # the head is complete (a Request event was read)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


def http_protocol() -> str:
    """What `uvicorn.run(http=...)` gets (an import string: every worker process loads it): the
    bounded httptools protocol, or the bounded h11 protocol where httptools is not
    installed."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return H11_PROTOCOL
    return f'{__name__}:{BoundedHttpToolsProtocol.__name__}'


H11_PROTOCOL = f'{__name__}:{BoundedH11Protocol.__name__}'  # uvicorn's h11, its head bounded in time too
