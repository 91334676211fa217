"""A store manager's token revoked (`retailbot platform token revoke --fingerprint`) while she
uses the API and the pages of a `serve --workers 2` platform: from then on every request on
either process is 401 and her page session is over (303 to sign-in, also a form with a valid
CSRF token), on SQLite and PostgreSQL. Real processes, a real HTTP client (new connections, so
both workers answer)."""
from __future__ import annotations

import json
import re

import httpx

from loop_support import chain
from platform_support import platform_cli, start_server
from rostest_support import stop_process


def test_a_revoked_staff_token_ends_at_once_on_every_process(engine_target):
    tokens = chain(engine_target)
    server = start_server(engine_target, '--workers', '2')
    try:
        token = tokens['store_manager']
        bearer = {'Authorization': f'Bearer {token}'}
        browser = httpx.Client(base_url=server.url, timeout=30, headers={'Origin': server.url})
        assert browser.post('/hq/login', data={'token': token}).status_code == 303
        page = browser.get('/hq/stores/s-1')
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        for _ in range(6):       # a new connection each time: both processes answer
            assert httpx.get(server.url + '/v1/stores/s-1/events', headers=bearer,
                             timeout=30).status_code == 200
        listed = [json.loads(line) for line in platform_cli(
            'token', 'list', '--database', engine_target, '--json').stdout.splitlines()]
        [mine] = [t for t in listed if t['name'] == 'ann']
        revoked = platform_cli('token', 'revoke', '--database', engine_target,
                               '--fingerprint', mine['fingerprint'])
        assert revoked.returncode == 0, revoked.stderr
        for _ in range(6):
            assert httpx.get(server.url + '/v1/stores/s-1/events', headers=bearer,
                             timeout=30).status_code == 401
        for _ in range(4):
            gone = httpx.get(server.url + '/hq/stores/s-1', cookies=browser.cookies, timeout=30)
            assert gone.status_code == 303 and gone.headers['location'] == '/hq/login'
        form = browser.post('/hq/logout', data={'csrf': csrf})
        assert form.status_code == 303 and form.headers['location'] == '/hq/login'
        browser.close()
    finally:
        stop_process(server.process)
