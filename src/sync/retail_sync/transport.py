"""The HTTP(S) client the robot talks to the platform with (uploads and downlink alike), and
the robot ids the platform's URLs carry."""
from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator

import httpx

ROBOT_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')


def valid_robot_id(robot_id: str) -> bool:
    """True for 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."""
    return bool(ROBOT_ID.fullmatch(robot_id))      # whole: `$` also matches before a final newline


def platform_client(token: str, ca_file: str = '', timeout_s: float = 10.0,
                    headers: dict[str, str] | None = None,
                    transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """A client carrying the bearer token; https is verified against `ca_file` when given
    (a store's platform may use a private CA), else against the system's CAs. Without a token
    no Authorization header is sent (the platform answers 401, reported as such)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    client = httpx.Client(timeout=timeout_s, verify=verify, headers=headers or {},
                          transport=transport)
    set_token(client, token)
    return client


def set_token(client: httpx.Client, token: str) -> None:
    """Use `token` from now on (an empty or non-ASCII token sends no header: it cannot be right)."""
    token = token.strip()
    if token and token.isascii() and token.isprintable():
        client.headers['Authorization'] = f'Bearer {token}'
    else:
        client.headers.pop('Authorization', None)


ANSWER_READ_TIMEOUTS = 3   # an answer's body is read within this many of the client's read timeouts


def answer_chunks(client: httpx.Client, response: httpx.Response) -> Iterator[bytes]:
    """The decoded body of `response` chunk by chunk, within a deadline of ANSWER_READ_TIMEOUTS
    read timeouts from now: a platform (or proxy) trickling its answer a byte at a time, each read
    within the timeout, would otherwise hold the robot's upload or downlink thread for as long as
    it liked (attack, session 12). httpx.ReadTimeout, an httpx.HTTPError as any other."""
    allowed = ANSWER_READ_TIMEOUTS * (client.timeout.read or 10.0)
    deadline = time.monotonic() + allowed
    for chunk in response.iter_bytes():
        yield chunk
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(f'the answer was not complete within {allowed:g} s', request=response.request)


def capped_request(client: httpx.Client, method: str, url: str, limit: int, **kwargs) -> httpx.Response:
    """The answer to one request with its body read (decoded) up to `limit` + 1 bytes and no
    further: a longer answer (a gzip bomb too) is cut there, so it fails the caller's checks
    instead of filling the robot's memory. httpx.HTTPError as for client.request."""
    with client.stream(method, url, **kwargs) as streamed:
        body = bytearray()
        for chunk in answer_chunks(client, streamed):
            body += chunk
            if len(body) > limit:
                del body[limit + 1:]
                break
        headers = [(k, v) for k, v in streamed.headers.multi_items()
                   if k.lower() not in ('content-encoding', 'content-length', 'transfer-encoding')]
        return httpx.Response(streamed.status_code, headers=headers, content=bytes(body),
                              request=streamed.request)
