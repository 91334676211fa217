"""`0016_hq_funnel_indexes` builds its two partial indexes on `events` without holding ingest's
inserts on PostgreSQL (retail_platform.online_ddl: each partition's index CONCURRENTLY, then the
parent's ON ONLY with the partitions' attached), and the schema it leaves is the one the plain
CREATE INDEX of the migration before made: the same index names, definitions, parents and
validity, on both engines; downgrade and upgrade again still work, and a build cancelled half
way is finished by the next upgrade."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from platform_support import migrate
from retail_platform.database import create_engine

BEFORE = '0015_robot_hours'
REVISION = '0016_hq_funnel_indexes'
# what 0016 ran before (one plain statement each, in the migration's transaction)
PLAIN = ["CREATE INDEX ix_events_touches ON events (store_id, time) "
         "WHERE type IN ('recommendation', 'screen_code')",
         "CREATE INDEX ix_events_rare ON events (store_id, time) "
         "WHERE type IN ('vip_checkin', 'campaign_offered', 'campaign_accepted')"]


def schema(engine: sa.Engine) -> set[tuple]:
    """Every index of events and its partitions: (table, name, definition, parent index, valid)
    on PostgreSQL; (table, name, sql) on SQLite."""
    with engine.connect() as c:
        if engine.dialect.name != 'postgresql':
            return set(c.execute(sa.text(
                "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'events'")).all())
        return set(c.execute(sa.text(
            "SELECT t.relname, x.relname, pg_get_indexdef(x.oid), "
            "  (SELECT p.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent "
            "   WHERE h.inhrelid = x.oid), ix.indisvalid "
            "FROM pg_index ix JOIN pg_class x ON x.oid = ix.indexrelid "
            "JOIN pg_class t ON t.oid = ix.indrelid "
            "WHERE t.relname = 'events' OR t.relname LIKE 'events\\_%'")).all())


def test_the_indexes_are_the_plain_statements_and_downgrade_upgrade_work(empty_target):
    engine = create_engine(empty_target)
    try:
        migrate(engine, command.upgrade, BEFORE)
        before = schema(engine)
        with engine.begin() as c:              # the reference: what 0016 made before
            for statement in PLAIN:
                c.execute(sa.text(statement))
        plain = schema(engine)
        with engine.begin() as c:
            c.execute(sa.text('DROP INDEX ix_events_rare'))
            c.execute(sa.text('DROP INDEX ix_events_touches'))
        assert schema(engine) == before
        migrate(engine, command.upgrade, REVISION)
        made = schema(engine)
        assert made == plain
        names = {row[1] for row in made - before}
        assert {'ix_events_touches', 'ix_events_rare'} <= names
        if engine.dialect.name == 'postgresql':      # on every partition, attached and valid
            partitions = {row[0] for row in before if row[0] != 'events'}
            assert len(partitions) == 10 and len(made - before) == 2 * (1 + len(partitions))
            assert all(row[4] for row in made)
        migrate(engine, command.downgrade, BEFORE)
        assert schema(engine) == before
        migrate(engine, command.upgrade, 'head')
        assert schema(engine) == plain | (schema(engine) - made)     # later revisions may add
        assert made <= schema(engine)
    finally:
        engine.dispose()


@pytest.fixture
def pg_at_0015(pg_cluster):
    """A PostgreSQL database at 0015 with a few hundred events (so the builds read rows)."""
    name = pg_cluster.new_database()
    engine = create_engine(pg_cluster.url(name))
    migrate(engine, command.upgrade, BEFORE)
    _insert(engine, 'seed', 300)
    try:
        yield engine
    finally:
        engine.dispose()
        pg_cluster.drop_database(name)


def _insert(engine_or_connection, robot: str, n: int, lock_timeout_ms: int | None = None) -> None:
    rows = [dict(robot_id=robot, event_id=f'{robot}-{uuid.uuid4().hex}', time=1_790_000_000.0 + i,
                 seq=i, store_id='s-1', type=('recommendation', 'dialogue_turn')[i % 2], version=1,
                 customer='', data='{}', received_at=1_790_000_000.0) for i in range(n)]
    statement = sa.text('INSERT INTO events (robot_id, event_id, time, seq, store_id, type, '
                        'version, customer, data, received_at) VALUES (:robot_id, :event_id, '
                        ':time, :seq, :store_id, :type, :version, :customer, :data, :received_at)')
    if isinstance(engine_or_connection, sa.Connection):
        engine_or_connection.execute(statement, rows)
        return
    with engine_or_connection.begin() as c:
        if lock_timeout_ms is not None:     # a guard: an insert held by a lock fails, not hangs
            c.execute(sa.text(f"SET LOCAL lock_timeout = '{lock_timeout_ms}ms'"))
        c.execute(statement, rows)


def _migration_waiting(engine: sa.Engine, statement: str) -> bool:
    """A backend runs `statement`... and waits for a lock (here: for the open transaction)."""
    with engine.connect() as c:
        return bool(c.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE :q AND wait_event_type = 'Lock'"), {'q': statement + '%'}).scalar())


def _upgrade_beside_an_open_write(engine: sa.Engine, statement: str, then) -> list:
    """Upgrade to 0016 in a thread while another transaction holds an uncommitted insert into
    events (a long ingest transaction: every build must wait for it); once the migration waits
    at `statement`, call `then()`; then commit the open insert. Returns what the thread raised."""
    raised: list = []
    holder = engine.connect()
    holder.begin()
    _insert(holder, 'open-batch', 1)

    def run() -> None:
        try:
            migrate(engine, command.upgrade, REVISION)
        except Exception as exc:        # noqa: BLE001 - handed to the test
            raised.append(exc)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not _migration_waiting(engine, statement):
            assert thread.is_alive(), f'the migration ended before waiting: {raised}'
            assert time.monotonic() < deadline, f'the migration never waited at {statement!r}'
            time.sleep(0.05)
        then()
    finally:
        holder.commit()
        holder.close()
        thread.join(timeout=120)
    assert not thread.is_alive()
    return raised


def test_inserts_go_on_while_the_indexes_are_built(pg_at_0015):
    """While 0016's build of a partition's index waits for a long ingest transaction to end
    (as every index build must), other robots' inserts commit: 20 batches, one by one, each
    guarded by a lock timeout so that an insert held by the migration fails the test instead
    of hanging it. The plain CREATE INDEX of the migration before held them all (its SHARE lock
    request queued every insert behind the open transaction)."""
    engine = pg_at_0015
    committed: list[int] = []

    def insert_meanwhile() -> None:
        for n in range(20):
            _insert(engine, f'robot-{n}', 5, lock_timeout_ms=10_000)
            committed.append(n)
            assert _migration_waiting(engine, 'CREATE INDEX')       # still building
    raised = _upgrade_beside_an_open_write(engine, 'CREATE INDEX', insert_meanwhile)
    assert raised == []
    assert committed == list(range(20))
    with engine.connect() as c:
        assert c.execute(sa.text('SELECT count(*) FROM events')).scalar() == 300 + 1 + 100
        assert c.execute(sa.text('SELECT version_num FROM alembic_version')).scalar() == REVISION
        assert c.execute(sa.text('SELECT count(*) FROM pg_index WHERE NOT indisvalid')).scalar() == 0


def test_a_build_cancelled_half_way_is_finished_by_the_next_upgrade(pg_at_0015):
    """The migration's backend cancelled while a partition's index is being built CONCURRENTLY
    (an operator's Ctrl-C, a restart): the upgrade fails, the database stays at 0015 with an
    invalid index left on that partition; the next upgrade drops it, builds the rest and ends
    with the schema the plain statements make."""
    engine = pg_at_0015

    def cancel() -> None:
        with engine.connect() as c:
            assert c.execute(sa.text(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                "'CREATE INDEX CONCURRENTLY%' AND datname = current_database()")).scalar()
            c.commit()
    raised = _upgrade_beside_an_open_write(engine, 'CREATE INDEX CONCURRENTLY', cancel)
    assert raised and 'cancel' in str(raised[0]).lower()
    with engine.connect() as c:
        assert c.execute(sa.text('SELECT version_num FROM alembic_version')).scalar() == BEFORE
        assert c.execute(sa.text('SELECT count(*) FROM pg_index WHERE NOT indisvalid')).scalar() == 1
    migrate(engine, command.upgrade, REVISION)
    finished = schema(engine)
    with engine.connect() as c:
        assert c.execute(sa.text('SELECT count(*) FROM pg_index WHERE NOT indisvalid')).scalar() == 0
    migrate(engine, command.downgrade, BEFORE)
    with engine.begin() as c:
        for statement in PLAIN:
            c.execute(sa.text(statement))
    assert schema(engine) == finished
