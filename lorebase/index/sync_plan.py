"""One sync round's plan, read from the store: which ids leave the index and which chunks are (re)embedded,
with their texts and, for joined transcript windows, the chunks whose vectors they sum."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from lorebase.index.texts import indexed_text
from lorebase.store import change_log
from lorebase.store.models import Chunk, IndexTombstone, Source

if TYPE_CHECKING:
    from lorebase.store import Store


# Rows per UPDATE/DELETE statement (SQLite's bound-parameter limit is 32k; stay well below it).
SQL_BATCH = 900

T = TypeVar("T")


@dataclass
class Plan:
    """What one sync round does: ids and texts read from the store at its start.

    ``tombstones``: ids to drop from the index (removed in the log, or tombstoned); ``chunk_ids``:
    chunks to (re)embed, with their ``texts``; ``log_seq``: the log position the round reaches;
    ``parts`` maps a joined window's id to the ids of the chunks it joins (its text is not embedded)."""

    tombstones: list[int]
    chunk_ids: list[int]
    texts: list[str]
    log_seq: int = 0
    log_rows: int = 0
    parts: dict[int, list[int]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.tombstones and not self.chunk_ids and not self.log_rows


def parts_of(s: Any, rows: Sequence[Any]) -> dict[int, list[int]]:
    """For each row (id, text, title, meta, source_id) that is a joined window: the ids of its chunks."""
    wanted: dict[int, tuple[str, int, int]] = {}
    for r in rows:
        j = (r[3] or {}).get("joins")
        if isinstance(j, list) and len(j) == 2:
            wanted[r[0]] = (r[4], int(j[0]), int(j[1]))
    if not wanted:
        return {}
    by_pos: dict[tuple[str, int], int] = {}
    for sid_batch in batches(sorted({w[0] for w in wanted.values()})):
        for cid, sid, ordinal in s.execute(select(Chunk.id, Chunk.source_id, Chunk.ordinal).where(Chunk.source_id.in_(sid_batch))):
            by_pos[(sid, ordinal)] = cid
    return {cid: [by_pos[(sid, o)] for o in range(lo, hi + 1) if (sid, o) in by_pos] for cid, (sid, lo, hi) in wanted.items()}


def batches(ids: Sequence[T], size: int = SQL_BATCH) -> Iterator[Sequence[T]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def read_plan(store: Store, log_seq: int, limit: int) -> Plan:
    """The next round for an index at ``log_seq``: up to ``limit`` log entries after it, folded into ids to
    drop and chunks to (re)embed, plus chunks still pending and tombstones no syncer has confirmed."""
    with store.session() as s:
        changes = change_log.read_changes(s, log_seq, limit)
        tomb = set(s.scalars(select(IndexTombstone.chunk_id)))
        pending = set(s.scalars(select(Chunk.id).where(Chunk.indexed.is_(False)).order_by(Chunk.id).limit(limit)))
        wanted = sorted(changes.added | pending)
        rows: list[Any] = []
        for batch in batches(wanted):
            rows += s.execute(
                select(Chunk.id, Chunk.text, Source.title, Chunk.meta, Chunk.source_id)
                .join(Source, Chunk.source_id == Source.id)
                .where(Chunk.id.in_(batch))
            ).all()
        rows.sort(key=lambda r: r[0])
        parts = parts_of(s, rows)
    present = {r[0] for r in rows}
    # An added chunk that is gone already was removed later in the log: drop it, never embed it.
    gone = changes.removed | tomb | (changes.added - present)
    return Plan(sorted(gone), [r[0] for r in rows], [indexed_text(r[2], r[1]) for r in rows],
                log_seq=changes.upto, log_rows=changes.rows, parts=parts)
