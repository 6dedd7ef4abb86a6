"""scheduler: tracked sources added through the API, and APScheduler's job table

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:39:27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same columns SQLAlchemyJobStore declares; it creates the table only when missing, so
    # a table it made already (a scheduler started before this migration) is kept as it is.
    if not sa.inspect(op.get_bind()).has_table('apscheduler_jobs'):
        op.create_table('apscheduler_jobs',
        sa.Column('id', sa.Unicode(length=191), nullable=False),
        sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
        sa.Column('job_state', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_apscheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    op.create_table('tracked_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('spec', sa.String(length=2048), nullable=False),
    sa.Column('branch', sa.String(length=255), nullable=True),
    sa.Column('interval_s', sa.Float(), nullable=True),
    sa.Column('cron', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('tracked_sources')
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apscheduler_jobs_next_run_time'))
    op.drop_table('apscheduler_jobs')
