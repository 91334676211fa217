"""The data loop: till receipts, daily funnel rollups, the loop's watermark, members' profiles,
the pages' sessions; an index on events.received_at (the funnel finds late events by it).

Revision ID: 0003_loop
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_loop'
down_revision = '0002_platform'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('receipts',
                    sa.Column('receipt_id', sa.String(128), primary_key=True),
                    sa.Column('store_id', sa.String(64), nullable=False),
                    sa.Column('time', sa.Float, nullable=False),
                    sa.Column('customer', sa.String(128), nullable=False),
                    sa.Column('code', sa.String(16), nullable=False),
                    sa.Column('lines', sa.Text, nullable=False),
                    sa.Column('total_cny', sa.Float, nullable=False),
                    sa.Column('imported_at', sa.Float, nullable=False))
    op.create_index('ix_receipts_store_time', 'receipts', ['store_id', 'time'])
    op.create_index('ix_receipts_customer', 'receipts', ['customer'])
    op.create_index('ix_receipts_imported', 'receipts', ['imported_at'])
    op.create_table('funnel_daily',
                    sa.Column('store_id', sa.String(64), primary_key=True),
                    sa.Column('day', sa.String(10), primary_key=True),
                    sa.Column('definitions', sa.Integer, nullable=False),
                    sa.Column('metrics', sa.Text, nullable=False),
                    sa.Column('inputs', sa.String(400), nullable=True),
                    sa.Column('computed_at', sa.Float, nullable=False))
    op.create_table('loop_state',
                    sa.Column('key', sa.String(64), primary_key=True),
                    sa.Column('value', sa.Float, nullable=False))
    op.create_table('member_profiles',
                    sa.Column('customer', sa.String(128), primary_key=True),
                    sa.Column('profile', sa.Text, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_table('page_sessions',
                    sa.Column('session_hash', sa.String(64), primary_key=True),
                    sa.Column('token_hash', sa.String(64), nullable=False),
                    sa.Column('role', sa.String(20), nullable=False),
                    sa.Column('csrf', sa.String(64), nullable=False),
                    sa.Column('expires_at', sa.Float, nullable=False))
    op.create_index('ix_events_received', 'events', ['received_at'])


def downgrade() -> None:
    op.drop_index('ix_events_received', 'events')
    for table in ('page_sessions', 'member_profiles', 'loop_state', 'funnel_daily', 'receipts'):
        op.drop_table(table)
