"""The chain platform's first schema: organisation, regions, stores, robots, credentials, events
(partitioned by event time on PostgreSQL), documents, appointments, flags, budgets, statistics.

Revision ID: 0001
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# One partition per year (a few partitions keep planning cheap: every query that cannot prune by
# time plans over all of them); other times (a robot clock far off) go to events_default.
FIRST_YEAR, LAST_YEAR = 2024, 2032


def _events_postgresql() -> None:
    op.execute("""
        CREATE TABLE events (
            robot_id varchar(64) NOT NULL, event_id varchar(128) NOT NULL,
            time double precision NOT NULL, seq bigint NOT NULL, store_id varchar(64),
            type varchar(64) NOT NULL, version integer NOT NULL DEFAULT 1,
            customer varchar(128) NOT NULL, data text NOT NULL,
            received_at double precision NOT NULL,
            PRIMARY KEY (robot_id, event_id, time)
        ) PARTITION BY RANGE (time)""")
    op.execute('CREATE TABLE events_default PARTITION OF events DEFAULT')
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        start = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp()
        end = datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp()
        op.execute(f'CREATE TABLE events_{year} PARTITION OF events '
                   f'FOR VALUES FROM ({start}) TO ({end})')


def upgrade() -> None:
    op.create_table('organisations',
                    sa.Column('id', sa.String(64), primary_key=True),
                    sa.Column('name', sa.String(200), nullable=False))
    op.create_table('regions',
                    sa.Column('id', sa.String(64), primary_key=True),
                    sa.Column('organisation_id', sa.String(64), sa.ForeignKey('organisations.id'),
                              nullable=False),
                    sa.Column('name', sa.String(200), nullable=False))
    op.create_table('stores',
                    sa.Column('id', sa.String(64), primary_key=True),
                    sa.Column('region_id', sa.String(64), sa.ForeignKey('regions.id'), nullable=True),
                    sa.Column('name', sa.String(200), nullable=False),
                    sa.Column('created_at', sa.Float, nullable=False))
    op.create_table('robots',
                    sa.Column('robot_id', sa.String(64), primary_key=True),
                    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=False),
                    sa.Column('registered_at', sa.Float, nullable=False))
    op.create_table('robot_assignments',
                    sa.Column('robot_id', sa.String(64), primary_key=True),
                    sa.Column('since', sa.Float, primary_key=True),
                    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=False))
    op.create_table('credentials',
                    sa.Column('token_hash', sa.String(64), primary_key=True),
                    sa.Column('role', sa.String(20), nullable=False),
                    sa.Column('robot_id', sa.String(64), nullable=True),
                    sa.Column('scope', sa.String(2000), nullable=False, server_default=''),
                    sa.Column('name', sa.String(200), nullable=False, server_default=''),
                    sa.Column('issued_at', sa.Float, nullable=False),
                    sa.Column('revoked_at', sa.Float, nullable=True))
    op.create_index('ix_credentials_robot', 'credentials', ['robot_id'])
    if op.get_bind().dialect.name == 'postgresql':
        _events_postgresql()
    else:
        op.create_table('events',
                        sa.Column('robot_id', sa.String(64), primary_key=True),
                        sa.Column('event_id', sa.String(128), primary_key=True),
                        sa.Column('time', sa.Float, nullable=False),
                        sa.Column('seq', sa.BigInteger, nullable=False),
                        sa.Column('store_id', sa.String(64), nullable=True),
                        sa.Column('type', sa.String(64), nullable=False),
                        sa.Column('version', sa.Integer, nullable=False, server_default='1'),
                        sa.Column('customer', sa.String(128), nullable=False),
                        sa.Column('data', sa.Text, nullable=False),
                        sa.Column('received_at', sa.Float, nullable=False))
    op.create_index('ix_events_robot_seq', 'events', ['robot_id', 'seq'])
    op.create_index('ix_events_store_time', 'events', ['store_id', 'time'])
    op.create_table('documents',
                    sa.Column('scope', sa.String(80), primary_key=True),
                    sa.Column('kind', sa.String(20), primary_key=True),
                    sa.Column('content', sa.LargeBinary, nullable=False),
                    sa.Column('media_type', sa.String(60), nullable=False),
                    sa.Column('etag', sa.String(40), nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_table('appointments',
                    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=True),
                    sa.Column('robot_id', sa.String(64), nullable=True),
                    sa.Column('customer', sa.String(128), nullable=False),
                    sa.Column('time', sa.String(64), nullable=False),
                    sa.Column('purpose', sa.String(1000), nullable=False),
                    sa.Column('note', sa.String(4000), nullable=False))
    op.create_table('flags',
                    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column('robot_id', sa.String(64), nullable=False),
                    sa.Column('kind', sa.String(40), nullable=False),
                    sa.Column('detail', sa.String(2000), nullable=False),
                    sa.Column('created_at', sa.Float, nullable=False))
    op.create_table('store_budgets',
                    sa.Column('store_id', sa.String(64), primary_key=True),
                    sa.Column('tokens', sa.Float, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_table('ingest_stats',
                    sa.Column('store_id', sa.String(64), primary_key=True),
                    sa.Column('accepted', sa.BigInteger, nullable=False),
                    sa.Column('duplicate', sa.BigInteger, nullable=False),
                    sa.Column('rejected', sa.BigInteger, nullable=False),
                    sa.Column('last_seen', sa.Float, nullable=False),
                    sa.Column('last_lag_s', sa.Float, nullable=False))
    op.execute("INSERT INTO organisations (id, name) VALUES ('chain', 'the chain')")


def downgrade() -> None:
    for table in ('ingest_stats', 'store_budgets', 'flags', 'appointments', 'documents', 'events',
                  'credentials', 'robot_assignments', 'robots', 'stores', 'regions', 'organisations'):
        op.drop_table(table)
