"""Attack round: `retailbot platform serve` (uvicorn's httptools parser) held a request's head
without bound: a 200 MB header line grew the API process by 200 MB before any token check and was
then served; a head sent a byte at a time held its connection for ever. Now
(retail_common.http_limits) a head longer than MAX_HEAD_BYTES is answered 431 and the connection closed, one not
complete within the head timeout 408; ordinary requests (a large but bounded header, a keep-alive
connection idle between requests) are served as before."""
from __future__ import annotations

import select
import socket
import time

import httpx
import pytest

from platform_support import answer_before_close, start_server_with_env
from retail_common.http_limits import HEAD_TIMEOUT_ENV, MAX_HEAD_BYTES


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    served = start_server_with_env(str(tmp_path_factory.mktemp('head') / 'platform.sqlite3'),
                                   HEAD_TIMEOUT_ENV, '3')
    yield served
    served.process.terminate()
    served.process.wait(timeout=30)


def _connect(server) -> socket.socket:
    host, port = server.url.rsplit('/', 1)[1].split(':')
    return socket.create_connection((host, int(port)), timeout=10)


def test_a_head_longer_than_the_bound_is_431_and_closed(server):
    sock = _connect(server)
    sock.sendall(b'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ')
    sent, answer = 0, b''
    while sent < 16 * MAX_HEAD_BYTES and not answer:      # stop sending once answered
        sock.sendall(b'a' * 8192)
        sent += 8192
        if select.select([sock], [], [], 0.01)[0]:
            answer = answer_before_close(sock, 5)
    answer = answer or answer_before_close(sock, 5)
    sock.close()
    assert answer.startswith(b'HTTP/1.1 431 '), answer[:200]
    assert sent <= 2 * MAX_HEAD_BYTES + 8192, sent            # refused near the bound, not after 1 MB
    assert httpx.get(server.url + '/v1/health').status_code == 200


def test_a_head_sent_too_slowly_is_408_and_closed(server):
    sock = _connect(server)
    sock.sendall(b'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    started = time.monotonic()
    answer = b''
    while time.monotonic() - started < 20 and not answer:   # a header byte now and then
        try:
            sock.sendall(b'X')
        except OSError:
            break
        answer = answer_before_close(sock, 0.5)
    sock.close()
    assert answer.startswith(b'HTTP/1.1 408 '), answer[:200]
    assert time.monotonic() - started < 15


def test_ordinary_requests_are_served(server):
    big = 'b' * (MAX_HEAD_BYTES // 2)                  # large, within the bound
    assert httpx.get(server.url + '/v1/health', headers={'X-Big': big}).status_code == 200
    with httpx.Client(base_url=server.url) as client:  # one connection, idle between requests
        assert client.get('/v1/health').status_code == 200
        time.sleep(4)                                   # longer than the head timeout
        assert client.get('/v1/health').status_code == 200
        refused = client.get('/v1/stores')
        assert refused.status_code == 401
