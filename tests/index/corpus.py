"""Writing sources and chunks straight into a real store, the way ingest does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from lorebase.store import Store
from lorebase.store.models import Chunk, IndexTombstone, Source, source_id_for


def add_source(store: Store, key: str, chunks: list[str | dict[str, Any]], kind: str = "doc", **fields: Any) -> list[int]:
    """One source with its chunks (indexed=False); returns the chunk ids in order."""
    drafts = [c if isinstance(c, dict) else {"text": c} for c in chunks]
    fields.setdefault("title", key.split(":")[-1])
    with store.session() as s:
        src = Source(
            id=source_id_for(key),
            key=key,
            kind=kind,
            text="\n".join(d["text"] for d in drafts),
            content_hash="h",
            **fields,
        )
        src.chunks = [Chunk(ordinal=i, content_hash=f"c{i}", **d) for i, d in enumerate(drafts)]
        s.add(src)
        s.flush()
        return [c.id for c in src.chunks]


def delete_source(store: Store, key: str) -> list[int]:
    """Delete a source and its chunks, writing their tombstones in the same transaction."""
    with store.session() as s:
        src = s.scalars(select(Source).where(Source.key == key)).one()
        ids = [c.id for c in src.chunks]
        s.add_all(IndexTombstone(chunk_id=i) for i in ids)
        s.delete(src)
        return ids


def chunk_states(store: Store) -> dict[int, bool]:
    with store.session() as s:
        return {i: ok for i, ok in s.execute(select(Chunk.id, Chunk.indexed)).all()}


def tombstones(store: Store) -> list[int]:
    with store.session() as s:
        return list(s.scalars(select(IndexTombstone.chunk_id)))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)
