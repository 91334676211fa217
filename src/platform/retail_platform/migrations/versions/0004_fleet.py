"""Fleet: robots' latest heartbeats, alert tasks for store staff, staff calls and the messages
staff send back, robot groups, desired-state documents, rollouts and per-robot history.

The tables are a frozen copy of schema.py's at this revision (a later revision changes them
with its own operations, never by editing this one).

Revision ID: 0004_fleet
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_fleet'
down_revision = '0003_loop'
branch_labels = None
depends_on = None

frozen = sa.MetaData()

fleet_heartbeats = sa.Table(
    'fleet_heartbeats', frozen,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('received_at', sa.Float, nullable=False),       # the platform's clock
    sa.Column('period_s', sa.Float, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # ok / degraded (silent is computed)
    sa.Column('heartbeat', sa.Text, nullable=False))          # retail_sync.fleet.Heartbeat JSON

fleet_tasks = sa.Table(
    'fleet_tasks', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('kind', sa.String(32), nullable=False),
    sa.Column('detail', sa.String(500), nullable=False),
    sa.Column('opened_at', sa.Float, nullable=False),
    sa.Column('acknowledged_at', sa.Float, nullable=True),
    sa.Column('acknowledged_by', sa.String(200), nullable=True),
    sa.Column('resolved_at', sa.Float, nullable=True),
    sa.Column('resolved_by', sa.String(200), nullable=True),
    sa.Column('note', sa.String(500), nullable=False, server_default=''),
    sa.Index('ix_fleet_tasks_store', 'store_id', 'resolved_at'),
    sa.Index('ux_fleet_tasks_open', 'robot_id', 'kind', unique=True,
             sqlite_where=sa.text('resolved_at IS NULL'),
             postgresql_where=sa.text('resolved_at IS NULL')))

staff_calls = sa.Table(
    'staff_calls', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('call_id', sa.String(128), nullable=False),
    sa.Column('request', sa.Text, nullable=False),            # retail_sync.fleet.StaffCall JSON
    sa.Column('created_at', sa.Float, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # open / answered / closed
    sa.Column('answered_at', sa.Float, nullable=True),
    sa.Column('answered_by', sa.String(200), nullable=True),
    sa.UniqueConstraint('robot_id', 'call_id', name='ux_staff_calls_call'),
    sa.Index('ix_staff_calls_store', 'store_id', 'created_at'))

staff_messages = sa.Table(
    'staff_messages', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('call', sa.Integer, sa.ForeignKey('staff_calls.id'), nullable=False),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('kind', sa.String(16), nullable=False),         # answer / say
    sa.Column('text', sa.String(500), nullable=False),
    sa.Column('created_by', sa.String(200), nullable=False),
    sa.Column('created_at', sa.Float, nullable=False),
    sa.Column('delivered_at', sa.Float, nullable=True),
    sa.Index('ix_staff_messages_robot', 'robot_id', 'id'))

fleet_groups = sa.Table(
    'fleet_groups', frozen,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Index('ix_fleet_groups_group', 'group_id'))

desired_states = sa.Table(
    'desired_states', frozen,
    sa.Column('group_id', sa.String(64), primary_key=True),
    sa.Column('version', sa.Integer, primary_key=True),
    sa.Column('document', sa.Text, nullable=False),           # retail_sync.fleet.DesiredState JSON
    sa.Column('created_at', sa.Float, nullable=False),
    sa.Column('created_by', sa.String(200), nullable=False))

rollouts = sa.Table(
    'rollouts', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # running / halted / done
    sa.Column('wave', sa.Integer, nullable=False),            # index into plan
    sa.Column('plan', sa.Text, nullable=False),               # JSON: [[robot ids], ...]
    sa.Column('soak_s', sa.Float, nullable=False),
    sa.Column('started_at', sa.Float, nullable=False),
    sa.Column('wave_started_at', sa.Float, nullable=False),
    sa.Column('reason', sa.String(500), nullable=False, server_default=''))

robot_desired = sa.Table(
    'robot_desired', frozen,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),         # the version it should run
    sa.Column('rollout_id', sa.Integer, nullable=True),
    sa.Column('assigned_at', sa.Float, nullable=False),
    sa.Column('running', sa.Integer, nullable=False, server_default='0'),   # version it reports
    sa.Column('error', sa.String(500), nullable=False, server_default=''))

desired_history = sa.Table(
    'desired_history', frozen,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),
    sa.Column('rollout_id', sa.Integer, nullable=True),
    sa.Column('status', sa.String(16), nullable=False),       # assigned / running / refused
    sa.Column('detail', sa.String(500), nullable=False, server_default=''),
    sa.Column('at', sa.Float, nullable=False),
    sa.Index('ix_desired_history_robot', 'robot_id', 'id'))
TABLES = (fleet_heartbeats, fleet_tasks, staff_calls, staff_messages, fleet_groups, desired_states,
          rollouts, robot_desired, desired_history)


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:                # with their indexes (the partial unique one included)
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind)
