"""The opening hours each robot reported, per chain-local day (`robot_hours`): heartbeat v4's
`opening_hours`, kept by the fleet (`Fleet.record_heartbeat`, the day's last report wins) and
read by the funnel's availability (`funnel.robot_minutes`: a robot-day without a row counts the
chain's default 10:00-22:00, as every day did before this revision).

Revision ID: 0015_robot_hours
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015_robot_hours'
down_revision = '0014_hq_figures'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'robot_hours',
        sa.Column('robot_id', sa.String(64), primary_key=True),
        sa.Column('day', sa.String(10), primary_key=True),
        sa.Column('opening_hours', sa.String(11), nullable=False),
        sa.Column('reported_at', sa.Float, nullable=False))


def downgrade() -> None:
    op.drop_table('robot_hours')
