"""A throwaway PostgreSQL 15 cluster for the platform's tests: initdb/pg_ctl from Debian's
postgresql-15 (robot_ws/install.sh installs it), run as the unprivileged `postgres` user when the
tests run as root, in a temporary folder that user owns, listening on 127.0.0.1 on a free port
with its own socket folder, `-A trust` (loopback only, never for a deployment); removed after."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/, also for the benches
from rostest_support import free_port  # noqa: E402,F401  (one port allocator for every test)

BIN = Path('/usr/lib/postgresql/15/bin')



class Cluster:
    def __init__(self, options: str = '') -> None:
        self.extra = options        # more `-c name=value` server settings (the benches' sizes)
        if not (BIN / 'initdb').exists():
            raise FileNotFoundError(f'{BIN}/initdb: install Debian\'s postgresql-15 '
                                    '(robot_ws/install.sh does)')
        self.root = Path(tempfile.mkdtemp(prefix='retailbot-pg-'))
        self.data = self.root / 'data'
        self.sockets = self.root / 'sockets'
        self.sockets.mkdir()
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = 'postgres'
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o755)
        self.log = self.root / 'server.log'
        self._run(str(BIN / 'initdb'), '-D', str(self.data), '-A', 'trust', '-U', 'postgres',
                  '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync')
        self.start()

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        if self.user:
            command = ('runuser', '-u', self.user, '--', *command)
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=check,
                              cwd=self.root)

    def _options(self) -> str:
        return (f'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} '
                '-c max_connections=200 -c fsync=on -c synchronous_commit=on'
                + (f' {self.extra}' if self.extra else ''))

    def start(self) -> None:
        self._run(str(BIN / 'pg_ctl'), '-D', str(self.data), '-l', str(self.log), '-w', '-t', '60',
                  '-o', self._options(), 'start')

    def stop(self, mode: str = 'fast') -> None:
        self._run(str(BIN / 'pg_ctl'), '-D', str(self.data), '-m', mode, '-w', 'stop', check=False)

    def restart(self, mode: str = 'immediate') -> None:
        self._run(str(BIN / 'pg_ctl'), '-D', str(self.data), '-m', mode, '-w', '-t', '60',
                  '-l', str(self.log), '-o', self._options(), 'restart')

    def url(self, database: str = 'postgres') -> str:
        return f'postgresql://postgres@127.0.0.1:{self.port}/{database}'

    def admin(self, sql: str) -> None:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as connection:
            connection.execute(sql)

    def new_database(self, template: str | None = None) -> str:
        name = 't_' + uuid.uuid4().hex[:16]
        self.admin(f'CREATE DATABASE {name}' + (f' TEMPLATE {template}' if template else ''))
        return name

    def drop_database(self, name: str) -> None:
        for _ in range(20):
            try:
                self.admin(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
                return
            except Exception:
                time.sleep(0.2)

    def remove(self) -> None:
        self.stop('immediate')
        shutil.rmtree(self.root, ignore_errors=True)
