"""Migration 0012_attack on SQLite and PostgreSQL: a database at 0011_hq_pages with receipts is
brought to the head in place, its receipts kept; afterwards two stores may each hold their
receipt 0001 (the key is store and number), a second 0001 of one store is still refused by the
key; downgrading keeps one receipt per number (the earliest imported)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from retail_platform.database import create_engine, head_revision, upgrade
from platform_support import migrate as _migrate

INSERT = sa.text('INSERT INTO receipts (receipt_id, store_id, time, customer, code, lines, '
                 "total_cny, imported_at) VALUES (:r, :s, 1.78e9, 'm-1', '', '[]', 10.0, :at)")


def test_receipts_are_rekeyed_in_place(empty_target):
    engine = create_engine(empty_target)
    try:
        _migrate(engine, command.upgrade, '0011_hq_pages')
        with engine.begin() as c:
            c.execute(INSERT, [{'r': '0001', 's': 's-1', 'at': 1.0}, {'r': '0002', 's': 's-1', 'at': 2.0}])
        assert upgrade(engine) == ('0011_hq_pages', head_revision())
        with engine.begin() as c:
            c.execute(INSERT, {'r': '0001', 's': 's-2', 'at': 3.0})     # another store's 0001
            rows = c.execute(sa.text('SELECT store_id, receipt_id FROM receipts '
                                     'ORDER BY store_id, receipt_id')).all()
        assert [tuple(r) for r in rows] == [('s-1', '0001'), ('s-1', '0002'), ('s-2', '0001')]
        with pytest.raises(sa.exc.IntegrityError):
            with engine.begin() as c:
                c.execute(INSERT, {'r': '0001', 's': 's-1', 'at': 4.0})
        indexes = {i['name'] for i in sa.inspect(engine).get_indexes('receipts')}
        assert {'ix_receipts_store_time', 'ix_receipts_customer', 'ix_receipts_imported'} <= indexes
        _migrate(engine, command.downgrade, '0011_hq_pages')
        with engine.begin() as c:
            kept = c.execute(sa.text('SELECT store_id, receipt_id FROM receipts '
                                     'ORDER BY receipt_id')).all()
        assert [tuple(r) for r in kept] == [('s-1', '0001'), ('s-1', '0002')]
        assert upgrade(engine) == ('0011_hq_pages', head_revision())
    finally:
        engine.dispose()
