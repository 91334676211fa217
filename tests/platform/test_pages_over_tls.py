"""Attack round s13: the HQ pages served over TLS (`serve --tls-cert/--tls-key`). A browser's
form POST there carries `Origin: https://host:port`; the Origin check compared it with
`http://` + Host, so every form (the sign-in itself) was refused 403 and the Secure cookie was
never set: the pages could not be used at all over https. A real `serve` process over TLS and a
client sending what a browser sends."""
from __future__ import annotations

import re
import ssl
import subprocess

import httpx
import pytest

from pg_support import free_port
from platform_support import ADMIN
from retail_platform.storage import Storage
from rostest_support import console_script, stop_process, wait_for
from tls_support import self_signed


@pytest.fixture
def tls_server(tmp_path):
    database = str(tmp_path / 'platform.sqlite3')
    storage = Storage(database)
    from retail_platform.database import upgrade
    upgrade(storage.engine)
    storage.add_region('north', 'North')
    storage.add_store('s-1', 'Store one', 'north')
    manager = storage.issue_staff_token('store_manager', 'ann', ['s-1'])
    storage.close()
    cert, key = self_signed(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [console_script('retailbot'), 'platform', 'serve', '--database', database, '--host',
         '127.0.0.1', '--port', str(port), '--token', ADMIN, '--tls-cert', str(cert),
         '--tls-key', str(key)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f'https://127.0.0.1:{port}'
    verify = ssl.create_default_context(cafile=str(cert))

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f'platform exited: {process.stdout.read().decode()}')
        try:
            return httpx.get(url + '/v1/ready', verify=verify, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_for(up, timeout=60, what='the platform over https', interval=0.1)
        yield url, verify, manager
    finally:
        stop_process(process)


def test_signing_in_and_out_over_https_works_with_a_secure_cookie(tls_server):
    url, verify, manager = tls_server
    origin = {'Origin': url}
    with httpx.Client(base_url=url, verify=verify, timeout=30) as browser:
        signed = browser.post('/hq/login', data={'token': manager}, headers=origin)
        assert signed.status_code == 303, signed.text[:300]
        cookie = signed.headers['set-cookie']
        assert 'Secure' in cookie and 'HttpOnly' in cookie and 'SameSite=strict' in cookie, cookie
        page = browser.get('/hq/stores/s-1')
        assert page.status_code == 200 and 'Store one' in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        # another site's page (also one on plain http at the same host and port) is refused
        for other in ('http://127.0.0.1:' + url.rsplit(':', 1)[1], 'https://evil.example'):
            refused = browser.post('/hq/logout', data={'csrf': csrf}, headers={'Origin': other})
            assert refused.status_code == 403, (other, refused.status_code)
        out = browser.post('/hq/logout', data={'csrf': csrf}, headers=origin)
        assert out.status_code == 303 and out.headers['location'] == '/hq/login'
        # the old cookie is dead on the server
        replay = httpx.get(url + '/hq/stores/s-1', verify=verify,
                           cookies={'retail_hq': re.search(r'retail_hq=([^;]+)', cookie).group(1)})
        assert replay.status_code == 303 and replay.headers['location'] == '/hq/login'
