"""Two partial indexes on `events` for the set-based funnel pass (funnel_sets), both on
(store_id, time) and holding only the rows of a few types:

* `ix_events_touches`: recommendations and screen codes, the touches a later day's conversation
  can take a receipt with (`funnel_sets._TOUCHES` reads the touches of the span's stores over
  the whole window, ~1/7 of the events of the bench's floor);
* `ix_events_rare`: VIP check-ins and campaign offers/acceptances (`funnel_sets._RARE`), which
  the pass otherwise finds by reading every event of the span.

Measured at 50 M events (benches/loop_funnel.py, src/platform/README.md): the two statements
were 18 of 81 s of a 2 000-store-day pass. Both engines support partial indexes; PostgreSQL
builds them on every partition of the events table.

Revision ID: 0016_hq_funnel_indexes
"""
from __future__ import annotations

from alembic import op

revision = '0016_hq_funnel_indexes'
down_revision = '0015_robot_hours'
branch_labels = None
depends_on = None

TOUCHES = "type IN ('recommendation', 'screen_code')"
RARE = "type IN ('vip_checkin', 'campaign_offered', 'campaign_accepted')"


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # each index reads the whole events table: past the platform's 60 s statement timeout
        # on a large chain (this transaction only). The build holds ingest's writes to events
        # (CREATE INDEX CONCURRENTLY is refused on a partitioned table and in a transaction).
        op.execute('SET LOCAL statement_timeout = 0')
    op.execute(f'CREATE INDEX ix_events_touches ON events (store_id, time) WHERE {TOUCHES}')
    op.execute(f'CREATE INDEX ix_events_rare ON events (store_id, time) WHERE {RARE}')


def downgrade() -> None:
    op.execute('DROP INDEX ix_events_rare')
    op.execute('DROP INDEX ix_events_touches')
