"""Bounds on a request's head (request line and headers) for `retailbot platform serve`.

uvicorn's httptools protocol (the platform's parser: the fastest installed) keeps a header that
has not ended yet in memory without a limit and waits for it without a deadline: one client
sending a 200 MB header line grew an API process by 200 MB before any route or token check ran,
and a connection sending its head a byte at a time held a socket for ever (slowloris). This
protocol answers 431 and closes once the head passes MAX_HEAD_BYTES, and 408 and closes when a
head is not complete HEAD_TIMEOUT_S after its first byte. (uvicorn's h11 protocol bounds the size
itself: h11_max_incomplete_event_size.)
"""
from __future__ import annotations

import asyncio
import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0
HEAD_TIMEOUT_ENV = 'RETAILBOT_PLATFORM_HEAD_TIMEOUT_S'    # tests shorten it


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a size and a time bound on each request's head."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout_s = float(os.environ.get(HEAD_TIMEOUT_ENV, HEAD_TIMEOUT_S))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    # the parser's callbacks: a head starts and ends
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)       # what the parser holds of an unfinished head
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, 'Request Header Fields Too Large',
                             f'request line and headers longer than {self.max_head_bytes} bytes')

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, 'Request Timeout',
                         f'request line and headers not complete within {self.head_timeout_s:g} s')

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._in_head = False
        self._cancel_head_timer()
        body = ('{"detail":"' + detail + '"}').encode()
        self.transport.write(b'HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n'
                             b'content-length: %d\r\nconnection: close\r\n\r\n%s'
                             % (status, reason.encode(), len(body), body))
        self.transport.close()


def http_protocol() -> str:
    """What `uvicorn.run(http=...)` gets (an import string: every worker process loads it): the
    bounded httptools protocol, or 'h11' (bounded by uvicorn itself) where httptools is not
    installed."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return 'h11'
    return f'{__name__}:{BoundedHttpToolsProtocol.__name__}'
