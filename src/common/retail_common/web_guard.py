"""The web server's front door, below every route: Host, Origin, body size, real client address.

Plain ASGI (no FastAPI routes, no rclpy), so it holds however a request arrives:

* **Host** (DNS rebinding): the `Host` header must name this server: `127.0.0.1`, `localhost`,
  `::1`, the configured `host`, a name in `allowed_hosts`, or the address the connection was
  accepted on. Anything else (`Host: attacker.example`) gets 421 before any route runs.
* **Origin** (cross-site request forgery, also from another port of the same host, which
  SameSite cookies do not separate): a state-changing request (POST, PUT, PATCH, DELETE) must
  carry `Origin` equal to this server's own origin (the request's scheme, `http` or `https` when
  served over TLS, + `://` + the Host header: scheme, host and port), or, without `Origin`, a `Referer` of that origin. A request with neither is taken as a
  non-browser client and is refused if it carries the staff cookie (browsers always send `Origin`
  on such requests, so a request riding on the cookie without one is forged or broken). The
  per-session CSRF token is checked by the console routes (`web.py`).
* **Body size**: at most `max_body` bytes however the body arrives: a declared `Content-Length`
  above it is refused at once; a chunked (or otherwise undeclared) body is counted while it
  streams and reading stops at the limit with 413, so memory stays bounded. A request with both
  `Content-Length` and `Transfer-Encoding` (ambiguous framing) gets 400. Bodies are never
  decompressed (`Content-Encoding` is not applied), so a compressed bomb stays its own size.
* **Client address**: the TCP peer; `X-Forwarded-For` counts only when the peer is one of
  `trusted_proxies` (then the right-most address not itself a trusted proxy). So does
  `X-Forwarded-Proto` (a proxy terminating TLS: the origin is then `https://` + Host and the
  cookies get `Secure`; `scope['state']['scheme']`). The login lockout,
  the audit log and the screen's locality check use this address (`scope['state']['client']`).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNSAFE_METHODS = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})
LOCAL_NAMES = ('127.0.0.1', 'localhost', '::1')
MAX_XFF_ENTRIES = 20


@dataclass(frozen=True)
class Site:
    """What the guard checks against."""

    hosts: frozenset[str] = frozenset(LOCAL_NAMES)  # allowed host names, lower case, no port
    trusted_proxies: frozenset[str] = frozenset()
    max_body: int = 16 * 1024
    cookie: str = 'retail_staff'
    headers: tuple[tuple[bytes, bytes], ...] = field(default_factory=tuple)  # added to every answer

    @classmethod
    def make(
        cls,
        host: str = '127.0.0.1',
        allowed_hosts: Iterable[str] = (),
        trusted_proxies: Iterable[str] = (),
        **kwargs: Any,
    ) -> 'Site':
        names = {n.lower() for n in LOCAL_NAMES}
        if host and host not in ('0.0.0.0', '::', ''):
            names.add(host.lower())
        names.update(h.strip().lower() for h in allowed_hosts if h.strip())
        return cls(
            hosts=frozenset(names),
            trusted_proxies=frozenset(_norm_ip(p) for p in trusted_proxies if p.strip()),
            **kwargs,
        )


def _norm_ip(text: str) -> str:
    text = text.strip().strip('[]')
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def split_host(host_header: str) -> tuple[str, str]:
    """('name', 'port') of a Host header value ('' port when absent); IPv6 brackets removed."""
    value = host_header.strip().lower()
    if value.startswith('['):
        name, _, rest = value[1:].partition(']')
        return name, rest[1:] if rest.startswith(':') else ''
    if value.count(':') == 1:
        name, _, port = value.partition(':')
        return name, port
    return value, ''


def host_allowed(host_header: str, site: Site, server_address: str = '') -> bool:
    """Does this Host header name this server (and nothing else)?"""
    if not host_header or len(host_header) > 255:
        return False
    name, port = split_host(host_header)
    if port and not port.isdigit():
        return False
    if name in site.hosts:
        return True
    return bool(server_address) and _norm_ip(name) == _norm_ip(server_address)


def own_origin(host_header: str, scheme: str = 'http') -> str:
    """This server's origin as a browser names it: over TLS `https://host[:port]` (a page served
    over https sends that Origin; `http://` there is another origin)."""
    return ('https' if scheme.lower() in ('https', 'wss') else 'http') + '://' + host_header.strip().lower()


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ''
    if not parts.scheme or not parts.netloc:
        return ''
    return f'{parts.scheme.lower()}://{parts.netloc.lower()}'


def origin_refusal(headers: dict[str, str], host_header: str, cookie: str, scheme: str = 'http') -> str:
    """Why a state-changing request is refused as cross-site ('' = accepted); `scheme`: the
    request's (`https` when served over TLS)."""
    own = own_origin(host_header, scheme)
    origin = headers.get('origin')
    if origin is not None:
        return '' if origin.strip().lower() == own else f'cross-site request refused (Origin {origin[:80]!r})'
    referer = headers.get('referer')
    if referer is not None:
        return '' if _origin_of(referer) == own else 'cross-site request refused (Referer of another site)'
    if f'{cookie}=' in headers.get('cookie', ''):
        return 'request with the staff cookie but no Origin refused'
    return ''


def client_address(peer: str, forwarded_for: str, trusted: frozenset[str]) -> str:
    """The real client: the peer, or (peer a trusted proxy) the right-most untrusted X-Forwarded-For entry."""
    peer = _norm_ip(peer)
    if peer not in trusted or not forwarded_for:
        return peer
    hops = [_norm_ip(h) for h in forwarded_for.split(',')[-MAX_XFF_ENTRIES:] if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return peer


def forwarded_scheme(scheme: str, peer: str, forwarded_proto: str, trusted: frozenset[str]) -> str:
    """The scheme the browser used: the connection's, or (peer a trusted proxy, one that
    terminates TLS) the last `X-Forwarded-Proto` entry when it is http or https."""
    if peer in trusted and forwarded_proto:
        said = forwarded_proto.split(',')[-1].strip().lower()
        if said in ('http', 'https'):
            return said
    return scheme


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip('[]')).is_loopback
    except ValueError:
        return False


class BodyTooLarge(HTTPException):
    """Raised from `receive` past the limit; an HTTPException so the framework answers 413 itself."""

    def __init__(self) -> None:
        super().__init__(413, 'request too large')


def _json_answer(status: int, detail: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[Message, Message]:
    body = json.dumps({'detail': detail}).encode('utf-8')
    start = {
        'type': 'http.response.start',
        'status': status,
        'headers': [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode()), *extra],
    }
    return start, {'type': 'http.response.body', 'body': body}


class Guard:
    """ASGI middleware applying `Site` to every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, site: Site, on_refusal: Callable[[str], None] = lambda line: None) -> None:
        self.app, self.site, self.on_refusal = app, site, on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get('headers', ()):
            name = key.decode('latin-1').lower()
            if name not in headers:  # the first of repeated headers counts
                headers[name] = value.decode('latin-1')
        peer = (scope.get('client') or ('', 0))[0] or ''
        client = client_address(peer, headers.get('x-forwarded-for', ''), self.site.trusted_proxies)
        scope.setdefault('state', {})
        scope['state']['client'] = client
        scope['state']['proxied'] = client != _norm_ip(peer)
        scheme = forwarded_scheme(
            scope.get('scheme', 'http'), _norm_ip(peer), headers.get('x-forwarded-proto', ''), self.site.trusted_proxies
        )
        scope['state']['scheme'] = scheme
        host = headers.get('host', '')
        server = (scope.get('server') or ('', 0))[0] or ''
        what = f'{scope.get("method", "?")} {scope.get("path", "")[:80]} from {client}'
        if not host_allowed(host, self.site, server):
            self.on_refusal(f'refused {what}: Host {host[:80]!r} is not this server (DNS rebinding?)')
            await self._answer(send, 421, 'this server does not answer to that host name')
            return
        if scope.get('method', 'GET').upper() in UNSAFE_METHODS:
            refusal = origin_refusal(headers, host, self.site.cookie, scheme)
            if refusal:
                self.on_refusal(f'refused {what}: {refusal}')
                await self._answer(send, 403, refusal)
                return
        length = headers.get('content-length')
        if length is not None and 'transfer-encoding' in headers:  # ambiguous framing (smuggling)
            self.on_refusal(f'refused {what}: both Content-Length and Transfer-Encoding')
            await self._answer(send, 400, 'both Content-Length and Transfer-Encoding')
            return
        if length is not None and (not length.strip().isdigit() or int(length) > self.site.max_body):
            await self._answer(send, 413, 'request too large')
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message['type'] == 'http.request':
                received += len(message.get('body', b''))
                if received > self.site.max_body:
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message['type'] == 'http.response.start':
                started = True
                message = dict(message)
                message['headers'] = list(message.get('headers', ())) + list(self.site.headers)
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await self._answer(send, 413, 'request too large')

    async def _answer(self, send: Send, status: int, detail: str) -> None:
        start, body = _json_answer(status, detail, self.site.headers)
        await send(start)
        await send(body)
