"""Fleet audit and staff-call bounds: who started a rollout (`rollouts.started_by`, the
credential's name); a robot's repeated staff calls folded into its open call
(`staff_calls.repeats`, `staff_calls.updated_at`) and every call_id folded into one kept
(`staff_call_ids`), so a resend of any of them is answered with the same call id.

The table is a frozen copy of schema.py's at this revision.

Revision ID: 0013_fleet_audit
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_fleet_audit'
down_revision = '0012_attack'
branch_labels = None
depends_on = None

frozen = sa.MetaData()
sa.Table('staff_calls', frozen, sa.Column('id', sa.Integer, primary_key=True))

staff_call_ids = sa.Table(
    'staff_call_ids', frozen,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('call_id', sa.String(128), primary_key=True),
    sa.Column('call', sa.Integer, sa.ForeignKey('staff_calls.id'), nullable=False),
    sa.Column('digest', sa.String(64), nullable=False))       # SHA-256 of the call's JSON


def upgrade() -> None:
    with op.batch_alter_table('rollouts') as batch:
        batch.add_column(sa.Column('started_by', sa.String(200), nullable=False,
                                   server_default=''))
    with op.batch_alter_table('staff_calls') as batch:
        batch.add_column(sa.Column('repeats', sa.Integer, nullable=False, server_default='0'))
        batch.add_column(sa.Column('updated_at', sa.Float, nullable=True))
    staff_call_ids.create(op.get_bind())


def downgrade() -> None:
    staff_call_ids.drop(op.get_bind())
    with op.batch_alter_table('staff_calls') as batch:
        batch.drop_column('updated_at')
        batch.drop_column('repeats')
    with op.batch_alter_table('rollouts') as batch:
        batch.drop_column('started_by')
