"""Two partial indexes on `events` for the set-based funnel pass (funnel_sets), both on
(store_id, time) and holding only the rows of a few types:

* `ix_events_touches`: recommendations and screen codes, the touches a later day's conversation
  can take a receipt with (`funnel_sets._TOUCHES` reads the touches of the span's stores over
  the whole window, ~1/7 of the events of the bench's floor);
* `ix_events_rare`: VIP check-ins and campaign offers/acceptances (`funnel_sets._RARE`), which
  the pass otherwise finds by reading every event of the span.

Measured at 50 M events (benches/loop_funnel.py, src/platform/README.md): the two statements
were 18 of 81 s of a 2 000-store-day pass. Both engines support partial indexes; PostgreSQL
builds them on every partition of the events table without holding ingest's writes
(`retail_platform.online_ddl`: the parent's index ON ONLY, each partition's CONCURRENTLY, then
attached; the names and definitions are those a plain CREATE INDEX on the parent gives).

Revision ID: 0016_hq_funnel_indexes
"""
from __future__ import annotations

from alembic import op

from retail_platform import online_ddl

revision = '0016_hq_funnel_indexes'
down_revision = '0015_robot_hours'
branch_labels = None
depends_on = None

TOUCHES = "type IN ('recommendation', 'screen_code')"
RARE = "type IN ('vip_checkin', 'campaign_offered', 'campaign_accepted')"


def upgrade() -> None:
    # PostgreSQL: ON ONLY the parent, CONCURRENTLY on each partition, attached (online_ddl):
    # ingest's inserts go on while the partitions' indexes are built (a plain CREATE INDEX
    # held them for the whole build: 31 s at 50 M events); the same names and definitions
    online_ddl.create_index('ix_events_touches', 'events', 'store_id, time', TOUCHES)
    online_ddl.create_index('ix_events_rare', 'events', 'store_id, time', RARE)


def downgrade() -> None:
    # dropping a partitioned index (and its partitions' with it) is metadata and files only, but
    # it takes the table's ACCESS EXCLUSIVE lock for that moment (CONCURRENTLY is refused on it)
    op.execute('DROP INDEX ix_events_rare')
    op.execute('DROP INDEX ix_events_touches')
