"""Drop the `documents` table: the whole-document endpoints that wrote and read it
(`GET /v1/catalog|promotions|histories`, `PUT /v1/admin/{kind}`,
`/v1/stores/{id}/documents/{kind}`) are gone; the robot's only downlink is
`/v1/robots/{id}/downlink` (retail_platform.chain). Downgrading recreates the table empty (its
old contents are not kept: nothing read them).

Revision ID: 0010_drop_documents
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_drop_documents'
down_revision = '0009_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table('documents')


def downgrade() -> None:
    op.create_table('documents',                            # as 0001_chain made it
                    sa.Column('scope', sa.String(80), primary_key=True),
                    sa.Column('kind', sa.String(20), primary_key=True),
                    sa.Column('content', sa.LargeBinary, nullable=False),
                    sa.Column('media_type', sa.String(60), nullable=False),
                    sa.Column('etag', sa.String(40), nullable=False),
                    sa.Column('updated_at', sa.Float, nullable=False))
