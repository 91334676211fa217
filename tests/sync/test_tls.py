"""https: the uploader trusts the platform only through the configured CA file."""
from __future__ import annotations

import ssl
import subprocess

import httpx

from rostest_support import console_script, stop_process, wait_for
from sync_support import ROBOT, TOKEN, emit, free_port, make_events, outbox_status, sync_cli
from tls_support import self_signed


def test_https_with_ca_file_delivers_and_an_untrusted_certificate_stops(tmp_path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f'https://127.0.0.1:{port}'
    server = subprocess.Popen([console_script('retailbot'), 'platform', 'serve', '--db',
                               str(tmp_path / 'platform.sqlite3'), '--port', str(port), '--token',
                               TOKEN, '--tls-cert', str(cert), '--tls-key', str(key), '--event-contracts', 'generic'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        def up():
            try:
                return httpx.get(url + '/v1/health', verify=ssl.create_default_context(cafile=str(cert)),
                                 headers={'Authorization': f'Bearer {TOKEN}'}).is_success
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=30, what='the https platform', interval=0.1)
        outbox = tmp_path / 'outbox.sqlite3'
        emit(outbox, make_events(100), tmp_path)
        base = ['run', '--outbox', str(outbox), '--platform', url, '--token', TOKEN,
                '--robot-id', ROBOT, '--once']
        untrusted = sync_cli(*base, timeout=30)
        assert untrusted.returncode == 3 and 'certificate not trusted' in untrusted.stderr
        assert outbox_status(outbox)['pending'] == 100
        trusted = sync_cli(*base, '--ca-file', str(cert), timeout=30)
        assert trusted.returncode == 0, trusted.stderr
        assert outbox_status(outbox)['pending'] == 0
    finally:
        stop_process(server)
