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
    """The target without a password (also for a URL too malformed to parse), for messages."""
    target = str(target)
    if '://' not in target:          # an SQLite path; any URL (also a wrong kind) loses its password
        return target
    scheme, _, rest = target.partition('://')
    head, question, query = rest.partition('?')
    at = head.rfind('@')
    if at >= 0:
        userinfo = head[:at]
        user = userinfo.partition(':')[0]
        head = user + (':***' if ':' in userinfo else '') + head[at:]
    if question and 'password' in query.lower():
        query = '***'
    return f'{scheme}://{head}{question}{query}'


URL_SHAPE = 'postgresql://USER:PASSWORD@HOST:PORT/DATABASE'


# What the driver says (lower-cased fragments, any of which) → what the user is told. Checked in
# order: the first kind with a fragment in the message wins.
_BAD_URL = ('invalid port', 'invalid connection option', 'invalid dsn', 'missing "=" after')
_LOGIN = ('password authentication failed', 'no password supplied', 'authentication failed')
_NO_SERVER = ('connection refused', 'failed to resolve host', 'timeout expired', 'no route to host',
              'could not connect', 'name or service not known')


def connect_problem(target: str, exc: BaseException) -> str:
    """One line for a database that cannot be used: the target without its password, what went
    wrong in a user's words and what to do (connection refused, wrong password, unknown database,
    malformed URL); else the driver's first line."""
    where = describe(target)
    text = str(getattr(exc, 'orig', None) or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()

    def says(fragments: tuple[str, ...]) -> bool:
        return any(fragment in lowered for fragment in fragments)

    if isinstance(exc, (ValueError, sa.exc.ArgumentError)) or says(_BAD_URL):
        why = 'the port is not a number' if 'int()' in first else first
        return f'{where} is not a valid PostgreSQL URL ({why}); the form is {URL_SHAPE}'
    if 'no password supplied' in lowered:
        return (f'cannot log in to {where}: the server asks for a password and none was given: '
                'put it in the URL or in ~/.pgpass (PGPASSFILE) with this exact host and port '
                '(localhost and 127.0.0.1 are different entries there)')
    if says(_LOGIN) or ('role' in lowered and 'does not exist' in lowered):
        return (f'cannot log in to {where}: the server refused the user or password; check them '
                'in the URL')
    if 'does not exist' in lowered and 'database' in lowered:
        return (f'{where}: the server has no such database; create it (createdb) or fix the '
                'database name in the URL')
    if says(_NO_SERVER):
        return (f'cannot connect to {where}: no PostgreSQL answers there ({first.rpartition(": ")[2]}); '
                'start it or fix the host and port in the URL')
    return f'{where}: {first}'


def not_a_target(target: str) -> str:
    """Why a URL that is not postgresql:// is refused (it would otherwise be taken for the path
    of an SQLite file in a folder named like its scheme)."""
    scheme = target.partition('://')[0]
    if scheme.lower().startswith('sqlite'):
        return (f'{target}: give an SQLite database as a plain file path (--db FILE), not as a '
                'sqlite:// URL')
    return (f'{describe(target)}: a {scheme}:// URL is not a database the platform can use: give '
            f'{URL_SHAPE} or an SQLite file path')


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
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise DatabaseError(connect_problem(target, exc)) from None
        return sa.create_engine(
            # overflow connections are closed when given back: under steady load each would be
            # a new backend (fork) and a new staging table per batch, so the pool holds most
            url, pool_size=pool_size, max_overflow=max(2, pool_size // 4),
            pool_recycle=3600, pool_timeout=10,
            connect_args={'connect_timeout': 5,
                          'options': '-c synchronous_commit=on -c statement_timeout=60000',
                          'application_name': 'retailbot-platform'})
    if '://' in target:
        raise DatabaseError(not_a_target(target))
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
        # one writer at a time, no upgrade deadlock; a connection that only reads (execution
        # option read_only=True, e.g. the HQ pages) takes one WAL snapshot and no write lock
        read_only = connection.get_execution_options().get('read_only')
        connection.exec_driver_sql('BEGIN' if read_only else 'BEGIN IMMEDIATE')
    return engine


def _config(connection: sa.Connection, per_migration: bool = False) -> Config:
    config = Config()
    config.set_main_option('script_location', str(MIGRATIONS))
    config.attributes['connection'] = connection
    config.attributes['per_migration'] = per_migration     # env.py: a transaction per migration
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


    @property
    def fresh(self) -> bool:
        """No platform schema and no tables at all: an empty database a first write may set up."""
        return self.current is None and not self.foreign

    def problem(self) -> str | None:
        """Why this software must not use the database as it is (one line, the same words for
        the CLI, `serve --no-migrate` and `/v1/ready`), or None at the head."""
        if self.foreign:
            return FOREIGN
        if not self.known:
            return (f'its schema revision {self.current} is newer than this platform '
                    f'({self.head}): upgrade the platform software')
        if self.behind:
            return (f'schema at revision {self.current or "none"}, this platform needs '
                    f'{self.head}: run `retailbot platform migrate --database ...`')
        return None


FOREIGN = ('it holds tables but no platform schema version (another program\'s database, or a '
           'reference platform file from before migrations)')


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
    if state.foreign or not state.known:
        raise DatabaseError(state.problem())
    if not state.behind:
        return state.current, state.head
    migrate(engine, command.upgrade, 'head')
    return state.current, state.head


def migrate(engine: sa.Engine, how, revision: str) -> None:
    """Alembic's `how` (command.upgrade / command.downgrade) to `revision`, one process at a
    time. SQLite: all of it in one transaction. PostgreSQL: under a session advisory lock, each
    migration in a transaction of its own that Alembic begins and commits, so that a migration
    can build indexes outside any transaction (`online_ddl`: CREATE INDEX CONCURRENTLY); a
    failed migration leaves the database at the last revision that completed."""
    with engine.connect() as connection:
        if connection.dialect.name != 'postgresql':
            with connection.begin():
                how(_config(connection), revision)
            return
        connection.execute(sa.text('SELECT pg_advisory_lock(:key)'), {'key': MIGRATION_LOCK})
        connection.commit()
        try:
            how(_config(connection, per_migration=True), revision)
        finally:
            try:
                if connection.in_transaction():
                    connection.rollback()
                connection.execute(sa.text('SELECT pg_advisory_unlock(:key)'),
                                   {'key': MIGRATION_LOCK})
                connection.commit()
            except sa.exc.DBAPIError:
                connection.invalidate()    # never back to the pool holding the lock
