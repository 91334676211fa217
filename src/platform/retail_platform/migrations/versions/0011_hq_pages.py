"""The HQ pages' covering index: hq_store_days by (day, store_id) with the funnel's stage counts
(appeared, engaged, need_captured, recommended, guided, purchased), so the chain's funnel, its
trend, the regions and the ranking's sort keys over a range are read from the index alone (no
lookup of each store-day's row); it replaces ix_hq_store_days_day (day, store_id), its prefix.

Revision ID: 0011_hq_pages
"""
from __future__ import annotations

from alembic import op

revision = '0011_hq_pages'
down_revision = '0010_drop_documents'
branch_labels = None
depends_on = None

STAGES = ['appeared', 'engaged', 'need_captured', 'recommended', 'guided', 'purchased']


def upgrade() -> None:
    op.create_index('ix_hq_store_days_pages', 'hq_store_days', ['day', 'store_id', *STAGES])
    op.drop_index('ix_hq_store_days_day', 'hq_store_days')


def downgrade() -> None:
    op.create_index('ix_hq_store_days_day', 'hq_store_days', ['day', 'store_id'])
    op.drop_index('ix_hq_store_days_pages', 'hq_store_days')
