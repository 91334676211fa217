"""`retailbot doctor --platform-url` with the URLs a technician mistypes: no scheme, https to a
plain-HTTP platform. Each a `fail` line saying what to type, not a library's exception name."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from retail_bringup.doctor import FAIL, check_platform


class _Plain(BaseHTTPRequestHandler):
    def do_GET(self) -> None:                       # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'{}')

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def plain_http():
    server = ThreadingHTTPServer(('127.0.0.1', 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize('url', ['127.0.0.1:8080', 'localhost', 'ftp://127.0.0.1:8080', 'http://'])
def test_a_url_without_http_is_a_failure_saying_the_form(url):
    check, _ = check_platform(url, 'token', timeout=2)
    assert check.level == FAIL and 'is not an http:// or https:// URL' in check.message
    assert 'UnsupportedProtocol' not in check.message


def test_https_to_a_plain_http_platform_says_use_http(plain_http):
    check, _ = check_platform(f'https://127.0.0.1:{plain_http}', 'token', timeout=5)
    assert check.level == FAIL, check
    assert f'use http://127.0.0.1:{plain_http}' in check.message and 'SSL' not in check.message
