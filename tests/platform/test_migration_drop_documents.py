"""Migration 0010_drop_documents on SQLite and PostgreSQL: a database at 0009_incidents that still holds
an old whole-document row is brought to the head by `upgrade` (the documents table is gone, the
rest of the data stays), and downgrading to 0009_incidents recreates the table."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from platform_support import migrate as _migrate
from retail_platform.database import create_engine, head_revision, upgrade


def test_a_database_before_the_drop_loses_only_its_documents_table(empty_target):
    engine = create_engine(empty_target)
    try:
        _migrate(engine, command.upgrade, '0009_incidents')
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO stores (id, name, created_at) VALUES ('s-1', 'One', 1.0)"))
            c.execute(sa.text("INSERT INTO documents (scope, kind, content, media_type, etag, "
                              "updated_at) VALUES ('chain', 'promotions', :b, 'application/json', "
                              "'\"x\"', 1.0)"), {'b': b'[]'})
        assert upgrade(engine) == ('0009_incidents', head_revision())   # through 0010 to the head
        tables = set(sa.inspect(engine).get_table_names())
        assert 'documents' not in tables and 'stores' in tables
        with engine.begin() as c:
            assert c.execute(sa.text('SELECT name FROM stores')).scalars().all() == ['One']
        _migrate(engine, command.downgrade, '0009_incidents')
        assert 'documents' in sa.inspect(engine).get_table_names()
        assert upgrade(engine) == ('0009_incidents', head_revision())   # through 0010 to the head
    finally:
        engine.dispose()
