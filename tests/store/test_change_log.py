"""The index change log: written by triggers on chunks in the same transaction as the change,
whoever writes (the ORM, raw SQL, a foreign-key cascade), in commit order, with bounded retention."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from lorebase.store import Store
from lorebase.store.change_log import last_seq, prune, pruned_through, read_changes
from lorebase.store.models import Chunk, IndexChange, Source, source_id_for


def _add(store: Store, key: str, n: int) -> list[int]:
    with store.session() as s:
        src = Source(id=source_id_for(key), key=key, kind="doc", title=key, text="t", content_hash="h")
        src.chunks = [Chunk(ordinal=i, text=f"{key} {i}", content_hash=str(i)) for i in range(n)]
        s.add(src)
        s.flush()
        return [c.id for c in src.chunks]


def _log(store: Store) -> list[tuple[int, str]]:
    with store.session() as s:
        return [(c, op) for c, op in s.execute(select(IndexChange.chunk_id, IndexChange.op).order_by(IndexChange.seq))]


def test_every_chunk_change_is_logged_in_order_whoever_makes_it(store: Store) -> None:
    a = _add(store, "doc:a", 2)
    b = _add(store, "doc:b", 1)
    with store.session() as s:
        s.execute(text("DELETE FROM chunks WHERE id = :i"), {"i": a[0]})  # raw SQL
    with store.session() as s:
        s.execute(text("DELETE FROM sources WHERE id = :i"), {"i": source_id_for("doc:b")})  # a cascade
    assert _log(store) == [(a[0], "add"), (a[1], "add"), (b[0], "add"), (a[0], "remove"), (b[0], "remove")]
    with store.session() as s:
        changes = read_changes(s, 0, 100)
        assert (changes.added, changes.removed, changes.rows) == ({a[1]}, {a[0], b[0]}, 5)
        assert changes.upto == last_seq(s)
        assert read_changes(s, changes.upto, 100).rows == 0


def test_a_rolled_back_change_leaves_no_entry(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Source(id="src_x", key="doc:x", kind="doc", title="x", text="t", content_hash="h",
                     chunks=[Chunk(ordinal=0, text="x", content_hash="x")]))
        s.flush()
        raise RuntimeError("the ingest of this source failed")
    assert _log(store) == []


def test_pruning_keeps_the_newest_entries_and_records_how_far_it_went(store: Store) -> None:
    _add(store, "doc:a", 5)
    with store.session() as s:
        top = last_seq(s)
    assert prune(store, max_entries=2, max_age_days=30) == 3
    with store.session() as s:
        assert pruned_through(s) == top - 2
        assert [r.rows for r in [read_changes(s, 0, 100)]] == [2]
        assert last_seq(s) == top
    assert prune(store, max_entries=2, max_age_days=30) == 0  # nothing more to do
    with store.session() as s:  # entries past the age bound go too, even within the count bound
        s.execute(text("UPDATE index_changes SET created_at = :t"), {"t": "2000-01-01 00:00:00"})
    assert prune(store, max_entries=100, max_age_days=30) == 2
    with store.session() as s:
        assert pruned_through(s) == top and last_seq(s) == top  # an empty log still knows where it was


def test_postgres_numbers_changes_in_commit_order(postgres_url: str) -> None:
    """A writer that took a number but has not committed holds back the next writer, so a reader
    that has seen number N can never later see a smaller one commit."""
    store = Store(postgres_url)
    try:
        first = store.engine.connect()
        tx = first.begin()
        first.execute(text("INSERT INTO sources (id, key, kind, title, text, content_hash, meta, first_ingested_at, "
                           "last_ingested_at) VALUES ('s1', 'doc:1', 'doc', '', '', 'h', '{}', now(), now())"))
        first.execute(text("INSERT INTO chunks (source_id, ordinal, text, content_hash, meta, indexed) "
                           "VALUES ('s1', 0, 'x', 'x', '{}', false)"))
        done = threading.Event()

        def second() -> None:
            _add(store, "doc:2", 1)
            done.set()

        t = threading.Thread(target=second)
        t.start()
        time.sleep(1.0)
        assert not done.is_set(), "the second writer logged a change while the first had not committed"
        with store.session() as s:
            assert last_seq(s) == 0
        tx.commit()
        first.close()
        t.join(timeout=30)
        assert done.is_set()
        with store.session() as s:
            rows = s.execute(select(IndexChange.seq, IndexChange.chunk_id).order_by(IndexChange.seq)).all()
            first_chunk = s.scalar(select(Chunk.id).where(Chunk.source_id == "s1"))
        assert [c for _, c in rows][0] == first_chunk and len(rows) == 2
    finally:
        store.close()
