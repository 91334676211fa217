"""Observe: incident recordings uploaded by robots (incidents.py).

The table is a frozen copy of schema.py's at this revision.

Revision ID: 0007_observe
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_observe'
down_revision = '0006_campaigns'
branch_labels = None
depends_on = None

frozen = sa.MetaData()

incidents = sa.Table(
    'incidents', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('store_id', sa.String(64), nullable=False),
    sa.Column('key', sa.String(128), nullable=False),
    sa.Column('sha256', sa.String(64), nullable=False),
    sa.Column('bytes', sa.BigInteger, nullable=False),
    sa.Column('reasons', sa.String(500), nullable=False, server_default=''),
    sa.Column('received_at', sa.Float, nullable=False),
    sa.Column('content', sa.LargeBinary, nullable=False),
    sa.UniqueConstraint('robot_id', 'key', name='ux_incidents_key'),
    sa.Index('ix_incidents_store', 'store_id', 'id'))


def upgrade() -> None:
    incidents.create(op.get_bind())


def downgrade() -> None:
    incidents.drop(op.get_bind())
