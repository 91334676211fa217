"""Fleet: robots' latest heartbeats, alert tasks for store staff, staff calls and the messages
staff send back, robot groups, desired-state documents, rollouts and per-robot history.

Revision ID: 0002_fleet
"""
from __future__ import annotations

from alembic import op

revision = '0002_fleet'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from retail_platform.schema import FLEET_TABLES
    bind = op.get_bind()
    for table in FLEET_TABLES:          # the tables and their indexes exactly as schema.py says
        table.create(bind)


def downgrade() -> None:
    from retail_platform.schema import FLEET_TABLES
    bind = op.get_bind()
    for table in reversed(FLEET_TABLES):
        table.drop(bind)
