"""Ingest at scale: a commit-ordered position for every stored event (`events.commit_seq`), so a
reader paging a store's events by it never skips a batch that committed late.

PostgreSQL: `commit_seq` defaults to the writing transaction's id (`pg_current_xact_id()`, a
64-bit xid8 that never wraps); a reader only reads below the oldest transaction still in
progress (`pg_snapshot_xmin(pg_current_snapshot())`), where no row can appear any more.
SQLite (one writer at a time): `commit_seq` is taken from the one-row `ingest_clock` in the
writing transaction, so its order is the commit order. Rows stored before this revision have
commit_seq 0 (read first). Adding the column is instant on both engines (a constant default);
the index is built once.

Revision ID: 0005_scale
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_scale'
down_revision = '0004_fleet'
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == 'postgresql'
    op.add_column('events', sa.Column('commit_seq', sa.BigInteger, nullable=False,
                                      server_default='0'))
    if postgresql:
        op.execute('ALTER TABLE events ALTER COLUMN commit_seq '
                   'SET DEFAULT (pg_current_xact_id()::text::bigint)')
    op.create_table('ingest_clock',
                    sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
                    sa.Column('value', sa.BigInteger, nullable=False))
    op.execute('INSERT INTO ingest_clock (id, value) VALUES (1, 0)')
    op.create_index('ix_events_store_commit', 'events',
                    ['store_id', 'commit_seq', 'robot_id', 'seq'])


def downgrade() -> None:
    op.drop_index('ix_events_store_commit', 'events')
    op.drop_table('ingest_clock')
    op.drop_column('events', 'commit_seq')
