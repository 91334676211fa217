"""The platform's tables as SQLAlchemy Core objects (the queries use them; the Alembic migrations
in `migrations/versions` create them, the same on SQLite and PostgreSQL except that PostgreSQL's
events table is partitioned by event time)."""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

organisations = sa.Table(
    'organisations', metadata,
    sa.Column('id', sa.String(64), primary_key=True),
    sa.Column('name', sa.String(200), nullable=False))

regions = sa.Table(
    'regions', metadata,
    sa.Column('id', sa.String(64), primary_key=True),
    sa.Column('organisation_id', sa.String(64), sa.ForeignKey('organisations.id'), nullable=False),
    sa.Column('name', sa.String(200), nullable=False))

stores = sa.Table(
    'stores', metadata,
    sa.Column('id', sa.String(64), primary_key=True),
    sa.Column('region_id', sa.String(64), sa.ForeignKey('regions.id'), nullable=True),
    sa.Column('name', sa.String(200), nullable=False),
    sa.Column('created_at', sa.Float, nullable=False))

robots = sa.Table(
    'robots', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=False),
    sa.Column('registered_at', sa.Float, nullable=False))

# Where a robot was from when (wall clock of the platform): an event keeps the store the robot
# was in at the event's time, also when it is uploaded after a move.
robot_assignments = sa.Table(
    'robot_assignments', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('since', sa.Float, primary_key=True),
    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=False))

credentials = sa.Table(
    'credentials', metadata,
    sa.Column('token_hash', sa.String(64), primary_key=True),
    sa.Column('role', sa.String(20), nullable=False),
    sa.Column('robot_id', sa.String(64), nullable=True),
    sa.Column('scope', sa.String(2000), nullable=False, server_default=''),
    sa.Column('name', sa.String(200), nullable=False, server_default=''),
    sa.Column('issued_at', sa.Float, nullable=False),
    sa.Column('revoked_at', sa.Float, nullable=True),
    sa.Index('ix_credentials_robot', 'robot_id'))

events = sa.Table(
    'events', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('event_id', sa.String(128), primary_key=True),
    sa.Column('time', sa.Float, primary_key=True),       # event time: PostgreSQL's partition key
    sa.Column('seq', sa.BigInteger, nullable=False),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('type', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False, server_default='1'),
    sa.Column('customer', sa.String(128), nullable=False),
    sa.Column('data', sa.Text, nullable=False),
    sa.Column('received_at', sa.Float, nullable=False),
    # the position in commit order (migration 0005_scale): PostgreSQL: the writing transaction's
    # id (its default); SQLite: ingest_clock's value in the writing transaction
    sa.Column('commit_seq', sa.BigInteger, nullable=False, server_default='0'))
EVENT_COLUMNS = ('robot_id', 'event_id', 'time', 'seq', 'store_id', 'type', 'version', 'customer',
                 'data', 'received_at')

# (documents: dropped by migration 0010_drop_documents with the whole-document endpoints)

appointments = sa.Table(
    'appointments', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('store_id', sa.String(64), sa.ForeignKey('stores.id'), nullable=True),
    sa.Column('robot_id', sa.String(64), nullable=True),
    sa.Column('customer', sa.String(128), nullable=False),
    sa.Column('time', sa.String(64), nullable=False),
    sa.Column('purpose', sa.String(1000), nullable=False),
    sa.Column('note', sa.String(4000), nullable=False))

flags = sa.Table(
    'flags', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('kind', sa.String(40), nullable=False),
    sa.Column('detail', sa.String(2000), nullable=False),
    sa.Column('created_at', sa.Float, nullable=False))

store_budgets = sa.Table(
    'store_budgets', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),
    sa.Column('tokens', sa.Float, nullable=False),
    sa.Column('updated_at', sa.Float, nullable=False))

ingest_clock = sa.Table(          # SQLite's commit-order counter (one row, id 1)
    'ingest_clock', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
    sa.Column('value', sa.BigInteger, nullable=False))

ingest_stats = sa.Table(
    'ingest_stats', metadata,
    sa.Column('store_id', sa.String(64), primary_key=True),   # '' for robots in no store
    sa.Column('accepted', sa.BigInteger, nullable=False),
    sa.Column('duplicate', sa.BigInteger, nullable=False),
    sa.Column('rejected', sa.BigInteger, nullable=False),
    sa.Column('last_seen', sa.Float, nullable=False),
    sa.Column('last_lag_s', sa.Float, nullable=False))

# --- fleet (migration 0004_fleet): heartbeats, alert tasks, staff calls, desired-state rollouts ---
fleet_heartbeats = sa.Table(
    'fleet_heartbeats', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('received_at', sa.Float, nullable=False),       # the platform's clock
    sa.Column('period_s', sa.Float, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # ok / degraded (silent is computed)
    sa.Column('heartbeat', sa.Text, nullable=False))          # retail_sync.fleet.Heartbeat JSON

fleet_tasks = sa.Table(
    'fleet_tasks', metadata,
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
    'staff_calls', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('store_id', sa.String(64), nullable=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('call_id', sa.String(128), nullable=False),
    sa.Column('request', sa.Text, nullable=False),            # retail_sync.fleet.StaffCall JSON
    sa.Column('created_at', sa.Float, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # open / answered / closed
    sa.Column('answered_at', sa.Float, nullable=True),
    sa.Column('answered_by', sa.String(200), nullable=True),
    sa.Column('repeats', sa.Integer, nullable=False, server_default='0'),   # 0013_fleet_audit
    sa.Column('updated_at', sa.Float, nullable=True),          # the last repeat folded in
    sa.UniqueConstraint('robot_id', 'call_id', name='ux_staff_calls_call'),
    sa.Index('ix_staff_calls_store', 'store_id', 'created_at'))

staff_call_ids = sa.Table(         # every call_id a robot sent, and the call it is (0012)
    'staff_call_ids', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('call_id', sa.String(128), primary_key=True),
    sa.Column('call', sa.Integer, sa.ForeignKey('staff_calls.id'), nullable=False),
    sa.Column('digest', sa.String(64), nullable=False))       # SHA-256 of the call's JSON

staff_messages = sa.Table(
    'staff_messages', metadata,
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
    'fleet_groups', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Index('ix_fleet_groups_group', 'group_id'))

desired_states = sa.Table(
    'desired_states', metadata,
    sa.Column('group_id', sa.String(64), primary_key=True),
    sa.Column('version', sa.Integer, primary_key=True),
    sa.Column('document', sa.Text, nullable=False),           # retail_sync.fleet.DesiredState JSON
    sa.Column('created_at', sa.Float, nullable=False),
    sa.Column('created_by', sa.String(200), nullable=False))

rollouts = sa.Table(
    'rollouts', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),
    sa.Column('state', sa.String(16), nullable=False),        # running / halted / done
    sa.Column('wave', sa.Integer, nullable=False),            # index into plan
    sa.Column('plan', sa.Text, nullable=False),               # JSON: [[robot ids], ...]
    sa.Column('soak_s', sa.Float, nullable=False),
    sa.Column('started_at', sa.Float, nullable=False),
    sa.Column('wave_started_at', sa.Float, nullable=False),
    sa.Column('reason', sa.String(500), nullable=False, server_default=''),
    sa.Column('started_by', sa.String(200), nullable=False, server_default=''))   # 0012

robot_desired = sa.Table(
    'robot_desired', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('group_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),         # the version it should run
    sa.Column('rollout_id', sa.Integer, nullable=True),
    sa.Column('assigned_at', sa.Float, nullable=False),
    sa.Column('running', sa.Integer, nullable=False, server_default='0'),   # version it reports
    sa.Column('error', sa.String(500), nullable=False, server_default=''))

desired_history = sa.Table(
    'desired_history', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('version', sa.Integer, nullable=False),
    sa.Column('rollout_id', sa.Integer, nullable=True),
    sa.Column('status', sa.String(16), nullable=False),       # assigned / running / refused
    sa.Column('detail', sa.String(500), nullable=False, server_default=''),
    sa.Column('at', sa.Float, nullable=False),
    sa.Index('ix_desired_history_robot', 'robot_id', 'id'))
# The opening hours each robot reported in its heartbeats (v4), per chain-local day: the funnel's
# availability counts that robot-day's opening minutes with them (migration 0015_robot_hours).
robot_hours = sa.Table(
    'robot_hours', metadata,
    sa.Column('robot_id', sa.String(64), primary_key=True),
    sa.Column('day', sa.String(10), primary_key=True),          # YYYY-MM-DD, chain local time
    sa.Column('opening_hours', sa.String(11), nullable=False),  # HH:MM-HH:MM (retail_common.hours)
    sa.Column('reported_at', sa.Float, nullable=False))         # the platform's clock, last report
FLEET_TABLES = (fleet_heartbeats, fleet_tasks, staff_calls, staff_messages, fleet_groups,
                desired_states, rollouts, robot_desired, desired_history, robot_hours)

# Incident recordings robots uploaded (MCAP files, no camera images): incidents.py. One row per
# (robot, Idempotency-Key); the bytes live in the row (committed with it: the receipt means durable).
incidents = sa.Table(
    'incidents', metadata,
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

# Requests from staff/HQ that a robot upload its incident recordings (incidents.py): the robot
# hears of the newest open one in its heartbeat's answer and reports it done in a later heartbeat.
incident_requests = sa.Table(
    'incident_requests', metadata,
    sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
    sa.Column('robot_id', sa.String(64), nullable=False),
    sa.Column('store_id', sa.String(64), nullable=False),
    sa.Column('requested_by', sa.String(200), nullable=False),
    sa.Column('requested_at', sa.Float, nullable=False),
    sa.Column('done_at', sa.Float, nullable=True),
    sa.Column('result', sa.String(300), nullable=False, server_default=''),
    sa.Index('ix_incident_requests_robot', 'robot_id', 'done_at'))
