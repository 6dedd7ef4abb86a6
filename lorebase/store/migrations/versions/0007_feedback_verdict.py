"""feedback: the answer's verdict as it was shown, and whether it was verified

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verdict', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('verified', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_column('verified')
        batch_op.drop_column('verdict')
