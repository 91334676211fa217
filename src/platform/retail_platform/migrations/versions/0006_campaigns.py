"""Campaigns: HQ's offers to members, by audience, place and time (retail_platform.campaigns).

Revision ID: 0006_campaigns
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_campaigns'
down_revision = '0005_scale'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
                    sa.Column('id', sa.String(64), primary_key=True),
                    sa.Column('definition', sa.Text, nullable=False),
                    sa.Column('starts_at', sa.Float, nullable=False),
                    sa.Column('ends_at', sa.Float, nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False),
                    sa.Column('updated_by', sa.String(200), nullable=False))
    op.create_index('ix_campaigns_window', 'campaigns', ['ends_at'])


def downgrade() -> None:
    op.drop_index('ix_campaigns_window', table_name='campaigns')
    op.drop_table('campaigns')
