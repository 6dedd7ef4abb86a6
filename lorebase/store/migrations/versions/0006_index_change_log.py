"""index change log: every chunk added or removed, in commit order, written by triggers on chunks

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# advisory_key("index_changes") in lorebase.store.advisory, as a literal: a migration never changes.
CHANGE_LOG_KEY = 1737798647194453592

SQLITE_TRIGGERS = (
    "CREATE TRIGGER chunks_log_add AFTER INSERT ON chunks BEGIN "
    "INSERT INTO index_changes (chunk_id, op) VALUES (NEW.id, 'add'); END",
    "CREATE TRIGGER chunks_log_remove AFTER DELETE ON chunks BEGIN "
    "INSERT INTO index_changes (chunk_id, op) VALUES (OLD.id, 'remove'); END",
)

# One writer of the log at a time, from its first chunk change to its commit: a sequence number is
# taken only while holding the lock, and the lock goes only after the commit is visible, so numbers
# become visible in order and a reader never skips one that commits later.
POSTGRES_FUNCTION = f"""
CREATE FUNCTION lorebase_log_chunk_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({CHANGE_LOG_KEY});
    IF TG_OP = 'INSERT' THEN
        INSERT INTO index_changes (chunk_id, op) VALUES (NEW.id, 'add');
        RETURN NEW;
    END IF;
    INSERT INTO index_changes (chunk_id, op) VALUES (OLD.id, 'remove');
    RETURN OLD;
END
$$
"""
POSTGRES_TRIGGER = (
    "CREATE TRIGGER chunks_change_log AFTER INSERT OR DELETE ON chunks "
    "FOR EACH ROW EXECUTE FUNCTION lorebase_log_chunk_change()"
)


def upgrade() -> None:
    op.create_table('index_changes',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chunk_id', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('index_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_index_changes_created_at'), ['created_at'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)
    # The log starts empty: chunks already there are in the indexes (or pending, indexed=False),
    # and nothing was pruned yet. The row exists from now on, so pruning only ever updates it.
    op.execute("INSERT INTO sync_cursors (name, value, updated_at) "
               "VALUES ('index_changes:pruned_through', '0', CURRENT_TIMESTAMP)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS chunks_change_log ON chunks")
        op.execute("DROP FUNCTION IF EXISTS lorebase_log_chunk_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS chunks_log_add")
        op.execute("DROP TRIGGER IF EXISTS chunks_log_remove")
    op.execute("DELETE FROM sync_cursors WHERE name = 'index_changes:pruned_through'")
    with op.batch_alter_table('index_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_index_changes_created_at'))
    op.drop_table('index_changes')
