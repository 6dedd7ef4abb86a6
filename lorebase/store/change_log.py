"""Reading and pruning the index change log (``IndexChange``; written by triggers on ``chunks``).

Retention is bounded two ways, whichever cuts more: the newest ``max_entries`` rows are kept, and
rows older than ``max_age_days`` go. The cursor ``index_changes:pruned_through`` records the last
``seq`` pruned; an index whose position is below it may have missed a change and is rebuilt from
the store instead of following the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.orm import Session

from lorebase.store.db import Store
from lorebase.store.models import IndexChange, SyncCursor, utcnow

PRUNED_CURSOR = "index_changes:pruned_through"


@dataclass
class Changes:
    """The net effect of log rows ``after < seq <= upto`` on a set of chunk ids."""

    upto: int
    added: set[int]  # their last entry is an add: (re)index them if they still exist
    removed: set[int]  # their last entry is a remove: drop their vectors
    rows: int


def last_seq(s: Session) -> int:
    """The newest sequence number given out, pruned or not (0 for an empty, unpruned log)."""
    top = s.scalar(select(func.max(IndexChange.seq)))
    return max(int(top or 0), pruned_through(s))


def pruned_through(s: Session) -> int:
    row = s.get(SyncCursor, PRUNED_CURSOR)
    return int(row.value) if row is not None else 0


def read_changes(s: Session, after: int, limit: int) -> Changes:
    """Up to ``limit`` rows after ``after``, in order, folded into what they leave per chunk."""
    rows = s.execute(
        select(IndexChange.seq, IndexChange.chunk_id, IndexChange.op)
        .where(IndexChange.seq > after)
        .order_by(IndexChange.seq)
        .limit(limit)
    ).all()
    last: dict[int, str] = {}
    for _seq, chunk_id, op in rows:
        last[chunk_id] = op  # chunk ids are never reused: an id is added once and removed once at most
    return Changes(
        upto=rows[-1][0] if rows else after,
        added={i for i, op in last.items() if op == "add"},
        removed={i for i, op in last.items() if op == "remove"},
        rows=len(rows),
    )


def changed_since(s: Session, after: int) -> tuple[set[int], set[int]]:
    """Every chunk id added, and every one removed, after ``after`` (for a consistency check)."""
    added: set[int] = set()
    removed: set[int] = set()
    for chunk_id, op in s.execute(select(IndexChange.chunk_id, IndexChange.op).where(IndexChange.seq > after)):
        (added if op == "add" else removed).add(chunk_id)
    return added, removed


def prune(store: Store, max_entries: int, max_age_days: float) -> int:
    """Delete log rows beyond the retention bounds; returns how many went."""
    with store.session() as s:
        top = int(s.scalar(select(func.max(IndexChange.seq))) or 0)
        cut = top - max_entries
        old = s.scalar(select(func.max(IndexChange.seq)).where(IndexChange.created_at < utcnow() - timedelta(days=max_age_days)))
        cut = max(cut, int(old or 0))
        # Row lock on PostgreSQL: two replicas pruning at once serialise here and the cursor only grows.
        cursor = s.scalars(select(SyncCursor).where(SyncCursor.name == PRUNED_CURSOR).with_for_update()).one_or_none()
        done = int(cursor.value) if cursor is not None else 0
        if cut <= done:
            return 0
        gone = cast(CursorResult[Any], s.execute(delete(IndexChange).where(IndexChange.seq <= cut))).rowcount or 0
        if cursor is None:
            s.add(SyncCursor(name=PRUNED_CURSOR, value=str(cut)))
        else:
            cursor.value, cursor.updated_at = str(cut), utcnow()
        return int(gone)
