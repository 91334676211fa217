"""One platform database, two engines: an SQLite file (the default: one store, the demo,
development) or PostgreSQL 15 (a chain: `postgresql://user@host:port/db`, psycopg 3).

Durability: a commit returns only once the data is on disk. SQLite runs in WAL mode with
`synchronous=FULL` (every commit fsyncs the WAL); PostgreSQL sessions run with
`synchronous_commit=on` (the commit waits for its WAL flush). An answer the platform gives after
a commit is therefore an acknowledgement of durable data.

Schema changes are Alembic migrations (`migrations/versions`), the same revisions on both engines;
`upgrade()` brings a database to the head (under an advisory lock on PostgreSQL, so several API
processes starting together migrate once), `revision_state()` says where a database stands.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / 'migrations'
MIGRATION_LOCK = 7_210_022      # the advisory lock key of migrations on PostgreSQL


class DatabaseError(Exception):
    """The database cannot be used (one line: what and where)."""


def is_postgresql(target: str) -> bool:
    return target.startswith(('postgresql://', 'postgres://', 'postgresql+psycopg://'))


def describe(target: str) -> str:
    """The target without a password, for messages and logs."""
    if is_postgresql(target):
        return sa.engine.make_url(_pg_url(target)).render_as_string(hide_password=True)
    return str(target)


def _pg_url(target: str) -> str:
    for prefix in ('postgresql+psycopg://', 'postgresql://', 'postgres://'):
        if target.startswith(prefix):
            return 'postgresql+psycopg://' + target[len(prefix):]
    raise ValueError(target)


def create_engine(target: str | Path, pool_size: int = 5) -> sa.Engine:
    """An engine for `target` (a postgresql:// URL or an SQLite file path)."""
    target = str(target)
    if is_postgresql(target):
        try:
            url = sa.engine.make_url(_pg_url(target))
        except sa.exc.ArgumentError as exc:
            raise DatabaseError(f'{target!r} is not a PostgreSQL URL: {exc}') from None
        return sa.create_engine(
            # overflow connections are closed when given back: under steady load each would be
            # a new backend (fork) and a new staging table per batch, so the pool holds most
            url, pool_size=pool_size, max_overflow=max(2, pool_size // 4),
            pool_recycle=3600, pool_timeout=10,
            connect_args={'connect_timeout': 5,
                          'options': '-c synchronous_commit=on -c statement_timeout=60000',
                          'application_name': 'retailbot-platform'})
    path = Path(target)
    if path.is_dir():
        raise DatabaseError(f'{path} is a folder, not a database file')
    if not path.parent.is_dir():
        raise DatabaseError(f'folder {path.parent} does not exist')
    engine = sa.create_engine(f'sqlite:///{path}', connect_args={'timeout': 30,
                                                                 'check_same_thread': False})

    @sa.event.listens_for(engine, 'connect')
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None          # transactions are ours (BEGIN IMMEDIATE)
        cursor = dbapi_connection.cursor()
        cursor.execute('PRAGMA journal_mode=WAL')
        cursor.execute('PRAGMA synchronous=FULL')        # acknowledged = fsynced
        cursor.execute('PRAGMA foreign_keys=ON')
        cursor.execute('PRAGMA busy_timeout=30000')
        cursor.close()

    @sa.event.listens_for(engine, 'begin')
    def _on_begin(connection) -> None:
        connection.exec_driver_sql('BEGIN IMMEDIATE')    # one writer at a time, no upgrade deadlock
    return engine


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    config.attributes['connection'] = connection
    return config


def head_revision() -> str:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


@dataclass(frozen=True)
class RevisionState:
    current: str | None       # None: no platform schema yet
    head: str
    foreign: bool             # tables, but not a platform database of this kind

    @property
    def behind(self) -> bool:
        return self.current != self.head

    @property
    def known(self) -> bool:
        config = Config()
        config.set_main_option('script_location', str(MIGRATIONS))
        try:
            return self.current is None or \
                ScriptDirectory.from_config(config).get_revision(self.current) is not None
        except Exception:
            return False


def revision_state(engine: sa.Engine) -> RevisionState:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        tables = set(sa.inspect(connection).get_table_names())
    foreign = current is None and bool(tables - {'alembic_version'})
    return RevisionState(current, head_revision(), foreign)


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Bring the database to the head revision; returns (from, to). DatabaseError for a database
    that is another program's or newer than this platform."""
    state = revision_state(engine)
    if state.foreign:
        raise DatabaseError('it holds tables but no platform schema version (another program\'s '
                            'database, or a reference platform file from before migrations)')
    if not state.known:
        raise DatabaseError(f'its schema revision {state.current} is newer than this platform '
                            f'({state.head}): upgrade the platform software')
    if not state.behind:
        return state.current, state.head
    with engine.begin() as connection:
        if connection.dialect.name == 'postgresql':
            connection.execute(sa.text('SELECT pg_advisory_xact_lock(:key)'),
                               {'key': MIGRATION_LOCK})
        command.upgrade(_config(connection), 'head')
    return state.current, state.head
