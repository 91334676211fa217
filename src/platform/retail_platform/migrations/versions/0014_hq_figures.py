"""The HQ overview's month summaries and covering index (`hq.figures`):

* `hq_store_months`: a store's calendar month of `hq_store_days` summed (its store-days and the
  counts the overview reads: the funnel's stages and the inputs of the ranking's rates), written
  by the funnel's refresh in the transaction that writes the days (`funnel.write_months`) and
  filled here from the days already summarised, so a range's whole months are read as one row
  per store (a month of 1,000 stores: 1,000 rows, not 30,000);
* `ix_hq_store_days_figures`: hq_store_days by (day, store_id) with the same counts, so the
  range's partial months and the trend are read from the index alone (SQLite: no lookup of each
  store-day's row); it replaces ix_hq_store_days_pages (0011_hq_pages), its prefix.

Revision ID: 0014_hq_figures
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_hq_figures'
down_revision = '0013_fleet_audit'
branch_labels = None
depends_on = None

STAGES = ['appeared', 'engaged', 'need_captured', 'recommended', 'guided', 'purchased']
RATE_INPUTS = ['vip_appointments', 'vip_shows', 'tours_started', 'tours_finished',
               'active_minutes', 'opening_minutes']
frozen = sa.MetaData()
hq_store_days = sa.Table('hq_store_days', frozen, sa.Column('store_id', sa.String(64)),
                         sa.Column('day', sa.String(10)),
                         *[sa.Column(k, sa.BigInteger) for k in STAGES + RATE_INPUTS])


def upgrade() -> None:
    months = op.create_table(
        'hq_store_months',
        sa.Column('store_id', sa.String(64), primary_key=True),
        sa.Column('month', sa.String(7), primary_key=True),
        sa.Column('store_days', sa.BigInteger, nullable=False),
        *[sa.Column(name, sa.BigInteger, nullable=False, server_default='0')
          for name in STAGES + RATE_INPUTS])
    op.create_index('ix_hq_store_months_month', 'hq_store_months', ['month', 'store_id'])
    h = hq_store_days.c
    month = sa.func.substr(h.day, 1, 7)
    op.get_bind().execute(months.insert().from_select(
        ['store_id', 'month', 'store_days', *STAGES, *RATE_INPUTS],
        sa.select(h.store_id, month, sa.func.count(),
                  *[sa.func.sum(getattr(h, k)) for k in STAGES + RATE_INPUTS])
        .group_by(h.store_id, month)))
    op.create_index('ix_hq_store_days_figures', 'hq_store_days',
                    ['day', 'store_id', *STAGES, *RATE_INPUTS])
    op.drop_index('ix_hq_store_days_pages', 'hq_store_days')


def downgrade() -> None:
    op.create_index('ix_hq_store_days_pages', 'hq_store_days', ['day', 'store_id', *STAGES])
    op.drop_index('ix_hq_store_days_figures', 'hq_store_days')
    op.drop_index('ix_hq_store_months_month', 'hq_store_months')
    op.drop_table('hq_store_months')
