"""Fleet: requests that a robot upload its incident recordings (incidents.py).

The table is a frozen copy of schema.py's at this revision.

Revision ID: 0009_incidents
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_incidents'
down_revision = '0008_hq'
branch_labels = None
depends_on = None

frozen = sa.MetaData()

incident_requests = sa.Table(
    'incident_requests', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('store_id', sa.String(64), nullable=False),
    sa.Column('requested_by', sa.String(200), nullable=False),
    sa.Column('requested_at', sa.Float, nullable=False),
    sa.Column('done_at', sa.Float, nullable=True),
    sa.Column('result', sa.String(300), nullable=False, server_default=''),
    sa.Index('ix_incident_requests_robot', 'robot_id', 'done_at'))


def upgrade() -> None:
    incident_requests.create(op.get_bind())


def downgrade() -> None:
    incident_requests.drop(op.get_bind())
