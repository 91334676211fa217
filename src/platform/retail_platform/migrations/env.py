"""Alembic environment: the connection comes from retail_platform.database (never a URL here)."""
from __future__ import annotations

from alembic import context

connection = context.config.attributes['connection']
# PostgreSQL (database.migrate): the connection is outside a transaction and Alembic runs each
# migration in one of its own, so a migration may step out of it (online_ddl's CONCURRENTLY
# builds in `autocommit_block`); SQLite: the caller's one transaction around them all
context.configure(connection=connection, target_metadata=None, render_as_batch=True,
                  transaction_per_migration=context.config.attributes.get('per_migration', False))
with context.begin_transaction():
    context.run_migrations()
