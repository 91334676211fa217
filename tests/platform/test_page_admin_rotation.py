"""Attack round: a page session signed in with the serve credential (`platform serve --token`)
outlived that credential. The session row kept '' as its token hash and meant "admin" to every
process, so after the operator restarted the platform with a new token (the old one leaked), the
old token was refused by the API but a browser signed in with it kept the admin's pages for up to
8 hours. Now such a session holds the credential's hash and ends with it, on SQLite and
PostgreSQL, as a revoked staff token's sessions do; a session of the current serve credential and
of an admin token issued in the database still work."""
from __future__ import annotations

import httpx

from loop_support import chain
from platform_support import start_server
from retail_platform.storage import Storage


def _sign_in(url: str, token: str) -> str:
    answer = httpx.post(url + '/hq/login', data={'token': token}, headers={'Origin': url})
    assert answer.status_code == 303, answer.text[:200]
    return answer.cookies['retail_hq']


def _overview(url: str, cookie: str) -> httpx.Response:
    return httpx.get(url + '/hq', cookies={'retail_hq': cookie}, timeout=60)


def _stop(server) -> None:
    server.process.terminate()
    server.process.wait(timeout=30)


def test_a_replaced_serve_token_ends_its_page_sessions(engine_target):
    chain(engine_target)
    storage = Storage(engine_target)
    try:
        admin = storage.issue_staff_token('admin', 'ops')
    finally:
        storage.close()
    server = start_server(engine_target, token='serve-token-leaked')
    try:
        old = _sign_in(server.url, 'serve-token-leaked')
        issued = _sign_in(server.url, admin)
        assert _overview(server.url, old).status_code == 200
    finally:
        _stop(server)
    server = start_server(engine_target, token='serve-token-new', port=int(server.url.rsplit(':', 1)[1]))
    try:
        with httpx.Client(base_url=server.url) as api:
            refused = api.get('/v1/stores', headers={'Authorization': 'Bearer serve-token-leaked'})
        assert refused.status_code == 401
        answer = _overview(server.url, old)
        assert answer.status_code == 303 and answer.headers['location'] == '/hq/login', \
            (answer.status_code, answer.text[:200])
        again = _overview(server.url, old)             # and it stays ended
        assert again.status_code == 303
        assert _overview(server.url, issued).status_code == 200
        assert _overview(server.url, _sign_in(server.url, 'serve-token-new')).status_code == 200
    finally:
        _stop(server)
