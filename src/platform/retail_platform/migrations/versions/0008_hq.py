"""HQ summaries of the funnel (retail_platform.hq): a store-day's counts as columns, its
campaigns' counts, each robot's newest event seen by the rollups; filled here from the
funnel_daily rows already computed (afterwards `funnel.refresh` keeps them, in the transaction
that writes funnel_daily).

The tables are a frozen copy of loop_schema.py's at this revision.

Revision ID: 0008_hq
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0008_hq'
down_revision = '0007_observe'
branch_labels = None
depends_on = None

COUNTS = ('appeared', 'conversations', 'engaged', 'need_captured', 'recommended', 'guided',
          'purchased', 'attributed_revenue_cny', 'vip_appointments', 'vip_shows',
          'appointment_purchases', 'tours_started', 'tours_finished', 'staff_assists',
          'staff_resolved', 'active_minutes', 'opening_minutes', 'campaign_offers',
          'campaign_accepted', 'campaign_purchases')
frozen = sa.MetaData()

hq_store_days = sa.Table(
    'hq_store_days', frozen,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),
    sa.Column('definitions', sa.Integer, nullable=False),
    *[sa.Column(name, sa.Float if name == 'attributed_revenue_cny' else sa.BigInteger,
                nullable=False, server_default='0') for name in COUNTS],
    sa.Index('ix_hq_store_days_day', 'day', 'store_id'))

hq_campaign_days = sa.Table(
    'hq_campaign_days', frozen,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),
    sa.Column('campaign_id', sa.String(64), primary_key=True),
    sa.Column('offers', sa.BigInteger, nullable=False),
    sa.Column('accepted', sa.BigInteger, nullable=False),
    sa.Column('purchases', sa.BigInteger, nullable=False),
    sa.Index('ix_hq_campaign_days_campaign', 'campaign_id', 'day'))

hq_robot_last = sa.Table(
    'hq_robot_last', frozen,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('last_event', sa.Float, nullable=False))

funnel_daily = sa.Table(
    'funnel_daily', frozen,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),
    sa.Column('metrics', sa.Text, nullable=False))


def upgrade() -> None:
    bind = op.get_bind()
    for table in (hq_store_days, hq_campaign_days, hq_robot_last):
        table.create(bind)
    robots: dict[str, float] = {}
    days, campaigns = [], []

    def flush() -> None:
        if days:
            bind.execute(hq_store_days.insert(), days)
        if campaigns:
            bind.execute(hq_campaign_days.insert(), campaigns)
        days.clear()
        campaigns.clear()
    f = funnel_daily.c
    after = ('', '')
    while True:                      # keyset pages of 2,000 store-days: bounded memory
        page = bind.execute(sa.select(f.store_id, f.day, f.metrics).where(
            sa.or_(f.store_id > after[0], sa.and_(f.store_id == after[0], f.day > after[1])))
            .order_by(f.store_id, f.day).limit(2000)).all()
        if not page:
            break
        after = (page[-1].store_id, page[-1].day)
        for row in page:
            try:
                m = json.loads(row.metrics)
            except ValueError:
                continue           # a row the next refresh recomputes (its definitions differ)
            days.append({'store_id': row.store_id, 'day': row.day,
                         'definitions': m.get('definitions', 0),
                         **{k: m.get(k) or 0 for k in COUNTS}})
            for cid, tally in (m.get('campaigns') or {}).items():
                campaigns.append({'store_id': row.store_id, 'day': row.day, 'campaign_id': cid,
                                  **{k: tally.get(k) or 0 for k in ('offers', 'accepted',
                                                                     'purchases')}})
            for rid, r in (m.get('robots') or {}).items():
                if r.get('last_event') is not None:
                    robots[rid] = max(robots.get(rid, r['last_event']), r['last_event'])
        flush()
    if robots:
        bind.execute(hq_robot_last.insert(), [{'robot_id': k, 'last_event': v}
                                              for k, v in robots.items()])


def downgrade() -> None:
    for table in (hq_robot_last, hq_campaign_days, hq_store_days):
        table.drop(op.get_bind())
