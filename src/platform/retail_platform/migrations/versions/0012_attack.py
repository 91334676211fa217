"""Receipts keyed by (store_id, receipt_id): till receipt numbers are a store's (two stores'
tills both print receipt 0001). Keyed by receipt_id alone, the second store's receipt was refused
as `receipt_id_reused`, and a store manager could block another store's receipts by importing
its numbers first. The table is rebuilt (the same on SQLite and PostgreSQL); rows are kept.

Revision ID: 0012_attack
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_attack'
down_revision = '0011_hq_pages'
branch_labels = None
depends_on = None

COLUMNS = 'receipt_id, store_id, time, customer, code, lines, total_cny, imported_at'


def _rebuild(key: list[str], name: str) -> None:
    op.create_table('receipts_rekeyed',
                    sa.Column('receipt_id', sa.String(128), nullable=False),
                    sa.Column('store_id', sa.String(64), nullable=False),
                    sa.Column('time', sa.Float, nullable=False),
                    sa.Column('customer', sa.String(128), nullable=False),
                    sa.Column('code', sa.String(16), nullable=False),
                    sa.Column('lines', sa.Text, nullable=False),
                    sa.Column('total_cny', sa.Float, nullable=False),
                    sa.Column('imported_at', sa.Float, nullable=False),
                    sa.PrimaryKeyConstraint(*key, name=name))
    op.execute(f'INSERT INTO receipts_rekeyed ({COLUMNS}) SELECT {COLUMNS} FROM receipts')
    op.drop_table('receipts')
    op.rename_table('receipts_rekeyed', 'receipts')
    op.create_index('ix_receipts_store_time', 'receipts', ['store_id', 'time'])
    op.create_index('ix_receipts_customer', 'receipts', ['customer'])
    op.create_index('ix_receipts_imported', 'receipts', ['imported_at'])


def upgrade() -> None:
    _rebuild(['store_id', 'receipt_id'], 'pk_receipts_store_receipt')


def downgrade() -> None:
    # receipts of one number in several stores cannot all be kept under one key: the earliest
    # imported one stays
    op.execute('DELETE FROM receipts WHERE EXISTS (SELECT 1 FROM receipts AS o WHERE '
               'o.receipt_id = receipts.receipt_id AND (o.imported_at < receipts.imported_at OR '
               '(o.imported_at = receipts.imported_at AND o.store_id < receipts.store_id)))')
    _rebuild(['receipt_id'], 'pk_receipts_receipt')
