"""Attack round (faults 8 and 11): a request body is bounded in time as well as size, and a
transfer coding the platform does not understand is refused, however the body arrives:
- a body that stops coming (no byte for the idle time, or not all there in time) is 408 and the
  connection closed, where one token could hold API connections open for ever;
- `Transfer-Encoding: gzip, chunked` (a coding other than chunked) is 501 naming what to send
  instead (RFC 9112 6.1), where the gzip coding was silently ignored and the body taken as plain;
- the same bodies sent properly are served."""
from __future__ import annotations

import gzip
import json
import socket
import time

import pytest

from platform_support import answer_before_close, start_server_with_env
from retail_platform.app import BODY_IDLE_ENV

BATCH = json.dumps({'events': [{'event_id': 'e-1', 'seq': 1, 'type': 'guide', 'time': 1.75e9,
                                'data': {'zone': 'kitchen', 'status': 'ended',
                                         'stops_visited': 1}}]}).encode()


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    served = start_server_with_env(str(tmp_path_factory.mktemp('body') / 'platform.sqlite3'),
                                   BODY_IDLE_ENV, '2')
    yield served
    served.process.terminate()
    served.process.wait(timeout=30)


def _exchange(server, head: bytes, body_parts: list[bytes], within_s: float = 15) -> bytes:
    """Send a head and body parts on a fresh socket; what the server answered before closing or
    `within_s` (b'' when nothing)."""
    host, port = server.url.rsplit('/', 1)[1].split(':')
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head)
    for part in body_parts:
        sock.sendall(part)
    got = answer_before_close(sock, within_s)
    sock.close()
    return got


def _head(server, *lines: str) -> bytes:
    return ('POST /v1/robots/r-1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            f'Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n'
            + ''.join(f'{line}\r\n' for line in lines) + '\r\n').encode()


def _chunked(data: bytes) -> bytes:
    return b'%x\r\n%s\r\n0\r\n\r\n' % (len(data), data)


@pytest.mark.parametrize('headers, parts', [
    ([f'Content-Length: {len(BATCH)}'], [BATCH[:10]]),                    # stops after 10 bytes
    (['Transfer-Encoding: chunked'], [b'a\r\n' + BATCH[:10] + b'\r\n']),  # a chunk, then nothing
], ids=['content-length', 'chunked'])
def test_a_body_that_stops_coming_is_408_and_closed(server, headers, parts):
    started = time.monotonic()
    answer = _exchange(server, _head(server, *headers), parts)
    assert answer.startswith(b'HTTP/1.1 408 '), answer[:300]
    assert b'the body stopped coming' in answer
    assert time.monotonic() - started < 12       # the idle bound (2 s here), not never


@pytest.mark.parametrize('coding', ['gzip, chunked', 'deflate, chunked', 'identity, chunked'])
def test_a_transfer_coding_other_than_chunked_is_501(server, coding):
    body = gzip.compress(BATCH) if coding.startswith('gzip') else BATCH
    answer = _exchange(server, _head(server, f'Transfer-Encoding: {coding}'), [_chunked(body)])
    assert answer.startswith(b'HTTP/1.1 501 '), answer[:300]
    assert b'Content-Encoding: gzip' in answer


@pytest.mark.parametrize('headers, body', [
    ([f'Content-Length: {len(BATCH)}'], BATCH),
    (['Transfer-Encoding: chunked'], _chunked(BATCH)),
    (['Transfer-Encoding: chunked', 'Content-Encoding: gzip'], _chunked(gzip.compress(BATCH))),
], ids=['content-length', 'chunked', 'chunked-gzip'])
def test_the_same_body_sent_properly_is_stored(server, headers, body):
    answer = _exchange(server, _head(server, *headers, 'Connection: close'), [body])
    assert answer.startswith(b'HTTP/1.1 200 '), answer[:300]
    assert json.loads(answer.split(b'\r\n\r\n', 1)[1])['acked'] == 1
