"""Index builds in migrations that do not hold ingest's writes on a live PostgreSQL database.

`CREATE INDEX ... ON events` on PostgreSQL takes a SHARE lock on the table until the migration's
transaction ends: every insert waits for the whole build (31 s for `0016_hq_funnel_indexes` at
50 M events), and `CREATE INDEX CONCURRENTLY` is refused on a partitioned table and inside a
transaction. `create_index` builds the same index the way PostgreSQL's documentation gives for
partitioned tables (ddl.sgml, "Partition Maintenance"), outside the migration's transaction
(Alembic's `autocommit_block`):

1. `CREATE INDEX CONCURRENTLY ON partition ...` for each partition, its name chosen by PostgreSQL
   exactly as the recursion of a plain `CREATE INDEX` on the parent chooses it (so the schema is
   the one the plain statement makes: names and definitions); inserts go on meanwhile (the
   build waits for the writes running when it starts, without making new ones wait);
2. `CREATE INDEX name ON ONLY table ...` (the parent's index alone, no rows read) and
   `ALTER INDEX name ATTACH PARTITION partition_index` for each, in one short transaction:
   metadata only; the parent's index is valid with the last attach. Its locks (the parent's
   SHARE, each partition index's ACCESS EXCLUSIVE) wait at most `LOCK_WAIT_MS` for running
   writes, then it gives way and tries again, so inserts never queue behind it for longer.

It can run again after an interruption (a killed migration, a cancelled build): a partition
whose index is attached is skipped, an equivalent valid index left unattached is attached, an
invalid one (what a cancelled `CONCURRENTLY` leaves) is dropped concurrently and built again,
and the parent's index is created only if missing. SQLite: the plain statement (a file database
has one writer at a time anyway). Migrations that use it run with Alembic owning the
transactions (`database.migrate`); `statement_timeout` is lifted for the builds only (a
partition of a large chain takes minutes).
"""
from __future__ import annotations

import re
import time

import sqlalchemy as sa

# `pg_get_indexdef` without what names the index and its table: "USING btree (...) WHERE ..."
_HEAD = re.compile(r'^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ')


def create_index(name: str, table: str, columns: str, where: str | None = None) -> None:
    """CREATE INDEX `name` ON `table` (`columns`) [WHERE `where`] inside an Alembic migration;
    on PostgreSQL without holding writes to a partitioned `table` (see the module's words)."""
    from alembic import op
    definition = f'({columns})' + (f' WHERE {where}' if where else '')
    if op.get_bind().dialect.name != 'postgresql':
        op.execute(f'CREATE INDEX {name} ON {table} {definition}')
        return
    with op.get_context().autocommit_block():
        c = op.get_bind()
        c.execute(sa.text('SET statement_timeout = 0'))
        try:
            wanted = _shape(c, table, definition)
            built = [_partition_index(c, name, p, wanted, definition) for p in partitions(c, table)]
            _attach(c, name, table, definition, [index for index in built if index])
            valid = c.execute(sa.text('SELECT indisvalid FROM pg_index '
                                      'WHERE indexrelid = CAST(:n AS regclass)'),
                              {'n': name}).scalar_one()
            if not valid:
                raise RuntimeError(f'index {name} on {table} is not valid after every partition\'s '
                                   'index was attached')
        finally:
            c.execute(sa.text('RESET statement_timeout'))


LOCK_WAIT_MS = 2000     # the attach step waits this long for running writes, then tries again
ATTACH_TRIES = 30       # ... this many times (1, 2, ... 10 s apart), then the migration fails


def _attach(c: sa.Connection, name: str, table: str, definition: str, indexes: list[str]) -> None:
    """The parent's index ON ONLY and every partition's attached, in one short transaction
    (metadata only; it takes the parent's SHARE lock and each partition index's ACCESS EXCLUSIVE
    lock until it commits): waiting at most LOCK_WAIT_MS for running writes, so that inserts
    never queue behind it for longer; on a lock timeout it gives way and tries again."""
    statements = [f'CREATE INDEX IF NOT EXISTS {name} ON ONLY {table} {definition}',
                  *[f'ALTER INDEX {name} ATTACH PARTITION {index}' for index in indexes]]
    for attempt in range(1, ATTACH_TRIES + 1):
        c.execute(sa.text('BEGIN'))
        try:
            c.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'"))
            for statement in statements:
                c.execute(sa.text(statement))
            c.execute(sa.text('COMMIT'))
            return
        except sa.exc.OperationalError as exc:
            c.execute(sa.text('ROLLBACK'))
            if getattr(exc.orig, 'sqlstate', None) != '55P03' or attempt == ATTACH_TRIES:
                raise
            time.sleep(min(10, attempt))


def _shape(c: sa.Connection, table: str, definition: str) -> str:
    """The index's definition as PostgreSQL prints it (`pg_get_indexdef` from USING on), found
    on an empty temporary copy of the table's columns: no lock on `table` but ACCESS SHARE."""
    c.execute(sa.text(f'CREATE TEMPORARY TABLE online_ddl_shape (LIKE {table})'))
    try:
        c.execute(sa.text(f'CREATE INDEX online_ddl_shape_ix ON online_ddl_shape {definition}'))
        return _tail(c.execute(sa.text("SELECT pg_get_indexdef(CAST('online_ddl_shape_ix' "
                                       'AS regclass))')).scalar_one())
    finally:
        c.execute(sa.text('DROP TABLE online_ddl_shape'))


def partitions(c: sa.Connection, table: str) -> list[str]:
    """The partitions of `table` (one level; a partition that is itself partitioned is refused:
    its index would need the same three steps one level down)."""
    rows = c.execute(sa.text(
        'SELECT quote_ident(k.relname), k.relkind FROM pg_inherits i '
        'JOIN pg_class k ON k.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass) '
        'ORDER BY k.relname'), {'t': table}).all()
    deeper = [r[0] for r in rows if r[1] != 'r']
    if deeper:
        raise RuntimeError(f'{table}: partitions {", ".join(deeper)} are partitioned themselves; '
                           'online_ddl builds one level only')
    return [r[0] for r in rows]


def _tail(indexdef: str) -> str:
    return _HEAD.sub('', indexdef)


def _partition_index(c: sa.Connection, name: str, partition: str, wanted: str,
                     definition: str) -> str | None:
    """The index of `partition` to attach to `name` (None: one is attached already), built
    CONCURRENTLY unless an equivalent valid one is there."""
    rows = c.execute(sa.text(
        'SELECT quote_ident(x.relname), pg_get_indexdef(x.oid), ix.indisvalid, '
        '  EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = x.oid '
        '          AND h.inhparent = to_regclass(:n)) '
        'FROM pg_index ix JOIN pg_class x ON x.oid = ix.indexrelid '
        'WHERE ix.indrelid = CAST(:p AS regclass)'), {'n': name, 'p': partition}).all()
    if any(attached for *_, attached in rows):
        return None
    same = [(index, valid) for index, indexdef, valid, _ in rows if _tail(indexdef) == wanted]
    for index, valid in same:
        if valid:
            return index
    for index, _ in same:               # invalid: what a cancelled build leaves
        c.execute(sa.text(f'DROP INDEX CONCURRENTLY {index}'))
    before = {r[0] for r in rows} - {index for index, _ in same}
    c.execute(sa.text(f'CREATE INDEX CONCURRENTLY ON {partition} {definition}'))
    built = [index for index, indexdef in c.execute(sa.text(
        'SELECT quote_ident(x.relname), pg_get_indexdef(x.oid) FROM pg_index ix '
        'JOIN pg_class x ON x.oid = ix.indexrelid WHERE ix.indrelid = CAST(:p AS regclass)'),
        {'p': partition}).all() if index not in before and _tail(indexdef) == wanted]
    if len(built) != 1:
        raise RuntimeError(f'{partition}: expected one new index like {name}, found {built}')
    return built[0]
