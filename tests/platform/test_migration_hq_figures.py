"""Migration 0014_hq_figures on SQLite and PostgreSQL: a database at 0011_hq_pages whose funnel
already wrote HQ summaries is brought to the head by `upgrade` with each store's months summed
from its store-days (hq_store_months, the overview's whole months) and the covering index
replaced; downgrading to 0011_hq_pages drops the month summaries and restores the old index."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from retail_platform import hq
from platform_support import migrate as _migrate
from retail_platform.database import create_engine, head_revision, upgrade


def test_months_are_filled_from_the_store_days_and_dropped_on_downgrade(empty_target):
    engine = create_engine(empty_target)
    try:
        _migrate(engine, command.upgrade, '0011_hq_pages')
        days = [('s-1', '2026-09-30', 3), ('s-1', '2026-10-01', 5), ('s-1', '2026-10-31', 7),
                ('s-2', '2026-10-15', 11)]
        with engine.begin() as c:
            c.execute(sa.text('INSERT INTO hq_store_days (store_id, day, definitions, engaged, '
                              'purchased, opening_minutes) VALUES (:s, :d, 2, :n, :n, 600)'),
                      [{'s': s, 'd': d, 'n': n} for s, d, n in days])
        assert upgrade(engine) == ('0011_hq_pages', head_revision())
        with engine.connect() as c:
            months = {(r.store_id, r.month): (int(r.store_days), int(r.engaged), int(r.purchased),
                                              int(r.opening_minutes), int(r.appeared))
                      for r in c.execute(sa.text('SELECT * FROM hq_store_months'))}
        assert months == {('s-1', '2026-09'): (1, 3, 3, 600, 0), ('s-1', '2026-10'): (2, 12, 12, 1200, 0),
                          ('s-2', '2026-10'): (1, 11, 11, 600, 0)}
        indexes = {i['name']: i['column_names']
                   for i in sa.inspect(engine).get_indexes('hq_store_days')}
        assert set(hq.RANKED) <= set(indexes['ix_hq_store_days_figures'])
        assert 'ix_hq_store_days_pages' not in indexes
        _migrate(engine, command.downgrade, '0011_hq_pages')
        assert 'hq_store_months' not in set(sa.inspect(engine).get_table_names())
        indexes = {i['name'] for i in sa.inspect(engine).get_indexes('hq_store_days')}
        assert 'ix_hq_store_days_pages' in indexes and 'ix_hq_store_days_figures' not in indexes
    finally:
        engine.dispose()
