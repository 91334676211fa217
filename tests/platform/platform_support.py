"""Platform test helpers: a real `retailbot platform serve` process on 127.0.0.1, the CLI."""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import httpx
import pytest

from pg_support import free_port
from rostest_support import console_script, wait_for

ADMIN = 'admin-secret-7'


def platform_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([console_script('retailbot'), 'platform', *args], capture_output=True,
                          text=True, timeout=timeout)


@dataclass
class Server:
    url: str
    database: str
    token: str
    process: subprocess.Popen

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={'Authorization': f'Bearer {token or self.token}'})

    def export(self, robot_id: str) -> list[dict]:
        result = platform_cli('export', '--database', self.database, '--robot-id', robot_id)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]


def start_server(database: str, *extra: str, token: str = ADMIN, port: int | None = None) -> Server:
    port = port or free_port()
    process = subprocess.Popen(
        [console_script('retailbot'), 'platform', 'serve', '--database', database, '--host',
         '127.0.0.1', '--port', str(port), '--token', token, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f'http://127.0.0.1:{port}', database, token, process)

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f'platform exited: {process.stdout.read().decode()}')
        try:
            return httpx.get(server.url + '/v1/ready', timeout=5).status_code == 200
        except httpx.HTTPError:
            return False
    wait_for(up, timeout=60, what='the platform to answer', interval=0.1)
    return server


def migrate(engine, how, revision: str) -> None:
    """Alembic's `how` (command.upgrade / command.downgrade) to `revision` on `engine`, as the
    platform runs its migrations (database.migrate)."""
    from retail_platform.database import migrate as run
    run(engine, how, revision)


def start_server_with_env(database: str, name: str, value: str) -> Server:
    """A platform started with one environment variable set (a bound the tests shorten)."""
    import os
    os.environ[name] = value
    try:
        return start_server(database)
    finally:
        del os.environ[name]


def answer_before_close(sock, within_s: float) -> bytes:
    """What a server sent on a raw socket before it closed it or `within_s` passed (b'' when it
    sent nothing)."""
    import select
    import time
    got = b''
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if select.select([sock], [], [], 0.2)[0]:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return got
