"""The chain's store data and downlink: product master with store-level price, stock, zone and
promotion; promotions at chain, region or store level; members (pseudonymous, consent, home
store); the change log that numbers every downlink version; which robot may hold which member;
"forget this member" requests and each robot's confirmation.

Revision ID: 0002_platform
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_platform'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('products',
                    sa.Column('sku', sa.String(64), primary_key=True),
                    sa.Column('fields', sa.Text, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_table('store_products',
                    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), primary_key=True),
                    sa.Column('sku', sa.String(64), primary_key=True),
                    sa.Column('price_cny', sa.Float, nullable=True),
                    sa.Column('stock', sa.Integer, nullable=True),
                    sa.Column('zone', sa.String(64), nullable=True),
                    sa.Column('promotion', sa.String(1000), nullable=True),
                    sa.Column('promotion_en', sa.String(1000), nullable=True))
    op.create_table('promotions',
                    sa.Column('id', sa.String(64), primary_key=True),
                    sa.Column('scope', sa.String(80), nullable=False),
                    sa.Column('content', sa.Text, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_index('ix_promotions_scope', 'promotions', ['scope'])
    op.create_table('members',
                    sa.Column('member_id', sa.String(128), primary_key=True),
                    sa.Column('consent', sa.Boolean, nullable=False),
                    sa.Column('home_store', sa.String(64), nullable=True),
                    sa.Column('history', sa.Text, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
    op.create_index('ix_members_home', 'members', ['home_store'])
    op.create_table('changes',
                    sa.Column('version', sa.BigInteger().with_variant(sa.Integer, 'sqlite'),
                              primary_key=True, autoincrement=True),
                    sa.Column('scope', sa.String(80), nullable=False),
                    sa.Column('kind', sa.String(20), nullable=False),
                    sa.Column('key', sa.String(128), nullable=False),
                    sa.Column('at', sa.Float, nullable=False), sqlite_autoincrement=True)
    op.create_index('ix_changes_scope_version', 'changes', ['scope', 'version'])
    op.create_table('downlink_meta',
                    sa.Column('key', sa.String(40), primary_key=True),
                    sa.Column('value', sa.BigInteger, nullable=False))
    op.create_table('robot_members',
                    sa.Column('robot_id', sa.String(64), primary_key=True),
                    sa.Column('member_id', sa.String(128), primary_key=True),
                    sa.Column('sent_version', sa.BigInteger, nullable=False),
                    sa.Column('dropped_version', sa.BigInteger, nullable=True),
                    sa.Column('fetched_at', sa.Float, nullable=True))
    op.create_index('ix_robot_members_member', 'robot_members', ['member_id'])
    op.create_table('forget_requests',
                    sa.Column('member_id', sa.String(128), primary_key=True),
                    sa.Column('requested_at', sa.Float, nullable=False),
                    sa.Column('requested_by', sa.String(200), nullable=False))
    op.create_table('forget_robots',
                    sa.Column('member_id', sa.String(128), primary_key=True),
                    sa.Column('robot_id', sa.String(64), primary_key=True),
                    sa.Column('expected', sa.Boolean, nullable=False),
                    sa.Column('confirmed_at', sa.Float, nullable=True),
                    sa.Column('detail', sa.String(200), nullable=False, server_default=''))
    op.create_index('ix_appointments_customer', 'appointments', ['customer'])


def downgrade() -> None:
    op.drop_index('ix_appointments_customer', 'appointments')
    for table in ('forget_robots', 'forget_requests', 'robot_members', 'downlink_meta', 'changes',
                  'members', 'promotions', 'store_products', 'products'):
        op.drop_table(table)
