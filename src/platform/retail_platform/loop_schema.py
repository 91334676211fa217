"""The tables of the data loop (receipts, funnel rollups, members' profiles, page sessions) as
SQLAlchemy Core objects on the platform's metadata; created by migration `0003_loop`."""
from __future__ import annotations

import sqlalchemy as sa

from retail_platform.schema import metadata

# A till receipt of the chain (`retailbot platform import-purchases`): one row per store and
# receipt id; its lines as canonical JSON ([{"sku", "qty", "price_cny"}]), so an import is one insert each.
receipts = sa.Table(
    'receipts', metadata,
    # a till's receipt number is its store's: keyed by both (migration 0012_attack)
    sa.Column('receipt_id', sa.String(128), primary_key=True),
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('time', sa.Float, nullable=False),              # seconds since 1970 (UTC)
    sa.Column('customer', sa.String(128), nullable=False),    # pseudonymous member id, '' = none
    sa.Column('code', sa.String(16), nullable=False),         # the robot screen's code, '' = none
    sa.Column('lines', sa.Text, nullable=False),
    sa.Column('total_cny', sa.Float, nullable=False),
    sa.Column('imported_at', sa.Float, nullable=False),
    sa.Index('ix_receipts_store_time', 'store_id', 'time'),
    sa.Index('ix_receipts_customer', 'customer'),
    sa.Index('ix_receipts_imported', 'imported_at'))

# The funnel of one store on one day (docs/metrics.md), recomputed whole from that day's events
# and receipts whenever either changes; `metrics` is the JSON the pure function returned.
funnel_daily = sa.Table(
    'funnel_daily', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),         # YYYY-MM-DD in the chain's zone
    sa.Column('definitions', sa.Integer, nullable=False),      # docs/metrics.md version
    sa.Column('metrics', sa.Text, nullable=False),
    sa.Column('inputs', sa.String(400), nullable=True),        # funnel.fingerprint
    sa.Column('computed_at', sa.Float, nullable=False))

# Key/value state of the loop's background work (the funnel's received_at watermark, ...).
loop_state = sa.Table(
    'loop_state', metadata,
    sa.Column('key', sa.String(64), primary_key=True),
    sa.Column('value', sa.Float, nullable=False))

# What consenting members said, merged (retail_platform.profiles); deleted by forget_profile.
member_profiles = sa.Table(
    'member_profiles', metadata,
    sa.Column('customer', sa.String(128), primary_key=True),
    sa.Column('profile', sa.Text, nullable=False),
    sa.Column('updated_at', sa.Float, nullable=False))

# Sessions of the HQ / store-manager pages: the hash of the cookie, the credential behind it.
page_sessions = sa.Table(
    'page_sessions', metadata,
    sa.Column('session_hash', sa.String(64), primary_key=True),
    sa.Column('token_hash', sa.String(64), nullable=False),    # the serve credential's too
    sa.Column('role', sa.String(20), nullable=False),
    sa.Column('csrf', sa.String(64), nullable=False),
    sa.Column('expires_at', sa.Float, nullable=False))

# HQ summaries (migration 0008_hq), written by the funnel's refresh in the same transaction as
# funnel_daily, so the HQ pages aggregate a range in SQL instead of parsing every store-day's JSON:
# a store-day's counts as columns (funnel.COUNTS; rates are recomputed from sums, never stored),
# its campaigns' counts, and each robot's newest event seen by the rollups.
hq_store_days = sa.Table(
    'hq_store_days', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),
    sa.Column('definitions', sa.Integer, nullable=False),
    *[sa.Column(name, sa.Float if name == 'attributed_revenue_cny' else sa.BigInteger,
                nullable=False, server_default='0')
      for name in ('appeared', 'conversations', 'engaged', 'need_captured', 'recommended',
                   'guided', 'purchased', 'attributed_revenue_cny', 'vip_appointments',
                   'vip_shows', 'appointment_purchases', 'tours_started', 'tours_finished',
                   'staff_assists', 'staff_resolved', 'active_minutes', 'opening_minutes',
                   'campaign_offers', 'campaign_accepted', 'campaign_purchases')],
    # the overview's range reads covered by the index alone (migration 0014_hq_figures): the
    # stages and the inputs of the ranking's rates
    sa.Index('ix_hq_store_days_figures', 'day', 'store_id', 'appeared', 'engaged',
             'need_captured', 'recommended', 'guided', 'purchased', 'vip_appointments',
             'vip_shows', 'tours_started', 'tours_finished', 'active_minutes', 'opening_minutes'))

MONTH_COUNTS = ('appeared', 'engaged', 'need_captured', 'recommended', 'guided', 'purchased',
                'vip_appointments', 'vip_shows', 'tours_started', 'tours_finished',
                'active_minutes', 'opening_minutes')
hq_store_months = sa.Table(      # a store's month of hq_store_days summed (migration 0014_hq_figures)
    'hq_store_months', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('month', sa.String(7), primary_key=True),           # YYYY-MM (chain-local days)
    sa.Column('store_days', sa.BigInteger, nullable=False),
    *[sa.Column(name, sa.BigInteger, nullable=False, server_default='0') for name in MONTH_COUNTS],
    sa.Index('ix_hq_store_months_month', 'month', 'store_id'))

hq_campaign_days = sa.Table(
    'hq_campaign_days', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),
    sa.Column('campaign_id', sa.String(64), primary_key=True),
    sa.Column('offers', sa.BigInteger, nullable=False),
    sa.Column('accepted', sa.BigInteger, nullable=False),
    sa.Column('purchases', sa.BigInteger, nullable=False),
    sa.Index('ix_hq_campaign_days_campaign', 'campaign_id', 'day'))

hq_robot_last = sa.Table(
    'hq_robot_last', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('last_event', sa.Float, nullable=False))
