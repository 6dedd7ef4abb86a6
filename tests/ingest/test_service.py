"""The ingest service against a real store, fed by simple readers defined here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from lorebase.ingest.records import (
    ChunkDraft,
    Cursor,
    Event,
    Fail,
    ReadContext,
    Remove,
    ScopeComplete,
    Skip,
    SourceDraft,
    Upsert,
)
from lorebase.ingest.service import IngestService
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Chunk, IndexTombstone, IngestRun, Source, SourceKind, SyncCursor, source_id_for


@dataclass
class ListReader:
    events: list[Event]
    label: str = "test reader"
    seen_cursor: list[str | None] = field(default_factory=list)
    explode_after: int | None = None

    def read(self, ctx: ReadContext) -> Iterator[Event]:
        self.seen_cursor.append(ctx.cursor("c"))
        for i, e in enumerate(self.events):
            if self.explode_after is not None and i == self.explode_after:
                raise RuntimeError("disk on fire")
            yield e


def doc(name: str, body: str, n_chunks: int = 2) -> SourceDraft:
    return SourceDraft(
        key=f"doc:o/r:{name}", kind=SourceKind.doc, title=name, text=body, repo="o/r", path=name,
        chunks=[ChunkDraft(text=f"{body} part {i}", start_line=i + 1, end_line=i + 1) for i in range(n_chunks)],
    )


def counts(store: Store) -> tuple[int, int, int]:
    with store.session() as s:
        return (s.scalar(select(func.count(Source.id))), s.scalar(select(func.count(Chunk.id))),
                s.scalar(select(func.count(IndexTombstone.chunk_id))))


@pytest.fixture
def service(settings: Settings, store: Store) -> IngestService:
    return IngestService(settings, store, progress=False)


def test_add_then_unchanged_then_modified(service: IngestService, store: Store) -> None:
    r1 = service.run([ListReader([Upsert(doc("a.md", "alpha")), Upsert(doc("b.md", "beta"))])], inputs=["x"])
    assert (r1.added, r1.updated, r1.unchanged, r1.chunks_added) == (2, 0, 0, 4) and r1.ok
    assert counts(store) == (2, 4, 0)

    with store.session() as s:
        before = {c.id: c.content_hash for c in s.scalars(select(Chunk))}
        stamp = s.get(Source, source_id_for("doc:o/r:a.md")).last_ingested_at

    r2 = service.run([ListReader([Upsert(doc("a.md", "alpha")), Upsert(doc("b.md", "beta"))])], inputs=["x"])
    assert (r2.added, r2.updated, r2.unchanged, r2.chunks_added, r2.chunks_removed) == (0, 0, 2, 0, 0)
    with store.session() as s:  # nothing rewritten: same chunk ids, same timestamps
        assert {c.id: c.content_hash for c in s.scalars(select(Chunk))} == before
        assert s.get(Source, source_id_for("doc:o/r:a.md")).last_ingested_at == stamp

    r3 = service.run([ListReader([Upsert(doc("a.md", "ALPHA", n_chunks=3))])], inputs=["x"])
    assert (r3.updated, r3.chunks_added, r3.chunks_removed) == (1, 3, 2)
    with store.session() as s:
        b_ids = {c.id for c in s.scalars(select(Chunk).where(Chunk.source_id == source_id_for("doc:o/r:b.md")))}
        assert b_ids <= set(before)  # b.md untouched
        a_chunks = list(s.scalars(select(Chunk).where(Chunk.source_id == source_id_for("doc:o/r:a.md"))))
        assert [c.text for c in a_chunks] == ["ALPHA part 0", "ALPHA part 1", "ALPHA part 2"]
        assert not any(c.indexed for c in a_chunks)
        tomb = set(s.scalars(select(IndexTombstone.chunk_id)))
    assert tomb == set(before) - b_ids  # the replaced chunks await removal from the index


def test_remove_and_scope_complete(service: IngestService, store: Store) -> None:
    service.run([ListReader([Upsert(doc("a.md", "a")), Upsert(doc("b.md", "b")), Upsert(doc("c.md", "c"))])], inputs=[])
    r = service.run([ListReader([Remove("doc:o/r:a.md"), Remove("doc:o/r:never.md")])], inputs=[])
    assert r.removed == 1 and r.chunks_removed == 2
    # a full scan that lists only c.md: b.md is gone; a source outside the scope stays
    other = SourceDraft(key="doc:other/repo:x.md", kind=SourceKind.doc, title="x", text="x", chunks=[])
    service.run([ListReader([Upsert(other)])], inputs=[])
    r = service.run([ListReader([Upsert(doc("c.md", "c")), ScopeComplete("doc:o/r:")])], inputs=[])
    assert (r.removed, r.unchanged) == (1, 1)
    with store.session() as s:
        assert set(s.scalars(select(Source.key))) == {"doc:o/r:c.md", "doc:other/repo:x.md"}


def test_scope_prefix_is_literal(service: IngestService, store: Store) -> None:
    # '_' and '%' in a prefix must not act as LIKE wildcards
    service.run([ListReader([Upsert(doc("a.md", "a")), Upsert(SourceDraft(
        key="doc:oXr:z.md", kind=SourceKind.doc, title="z", text="z", chunks=[]))])], inputs=[])
    service.run([ListReader([ScopeComplete("doc:o_r:")])], inputs=[])
    with store.session() as s:
        assert s.scalar(select(func.count(Source.id))) == 2


def test_failures_skips_and_cursors(service: IngestService, store: Store) -> None:
    reader = ListReader([Upsert(doc("a.md", "a")), Fail("bad.vtt", "no WEBVTT header"), Skip("logo.png", "binary"),
                         Upsert(doc("b.md", "b")), Cursor("c", "v1")])
    r = service.run([reader], inputs=["folder"])
    assert (r.added, r.failed, r.skipped, r.status) == (2, 1, 1, "partial")
    assert r.errors == [{"source": "bad.vtt", "reason": "no WEBVTT header"}]
    d = r.as_dict()
    assert d["seconds"] >= 0 and d["run_id"] == r.run_id and d["failed"] == 1
    with store.session() as s:
        run = s.get(IngestRun, r.run_id)
        assert run.status == "partial" and run.failed == 1 and run.finished_at is not None
        assert s.get(SyncCursor, "c").value == "v1"
    again = ListReader([Cursor("c", "v2")])
    service.run([again], inputs=[])
    assert again.seen_cursor == ["v1"]


def test_a_reader_that_crashes_keeps_what_it_wrote_and_no_cursor(service: IngestService, store: Store) -> None:
    events: list[Event] = [Upsert(doc("a.md", "a")), Upsert(doc("b.md", "b")), Cursor("c", "new"), ScopeComplete("doc:o/r:")]
    service.run([ListReader([Upsert(doc("old.md", "o"))])], inputs=[])
    r = service.run([ListReader(events, explode_after=1), ListReader([Upsert(doc("z.md", "z"))], label="second")], inputs=[])
    assert r.failed == 1 and "disk on fire" in r.errors[0]["reason"] and r.added == 2  # a.md and z.md
    with store.session() as s:
        assert s.get(SyncCursor, "c") is None  # not advanced
        assert s.get(Source, source_id_for("doc:o/r:old.md")) is not None  # scope not applied after a crash
    # the redo is duplicate-free
    r2 = service.run([ListReader(events)], inputs=[])
    assert (r2.added, r2.unchanged) == (1, 1) and r2.removed == 2  # old.md and z.md were outside this full scan
    assert counts(store)[:2] == (2, 4)


def test_bad_source_does_not_stop_the_batch(service: IngestService, store: Store) -> None:
    bad = doc("bad.md", "x")
    bad.meta = {"not json": object()}  # cannot be stored
    r = service.run([ListReader([Upsert(bad), Upsert(doc("good.md", "g"))])], inputs=[])
    assert r.failed == 1 and r.added == 1 and r.errors[0]["source"] == "doc:o/r:bad.md"
    with store.session() as s:
        assert s.get(Source, source_id_for("doc:o/r:bad.md")) is None


def test_unknown_spec_is_reported_and_batch_goes_on(service: IngestService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = service.ingest([str(tmp_path / "missing"), "github:not a repo"])
    assert r.failed == 2 and r.status == "partial"
    assert "no such file" in r.errors[0]["reason"] and "github:OWNER/REPO" in r.errors[1]["reason"]


def test_a_source_that_turns_unreadable_keeps_its_last_good_version(service: IngestService, store: Store) -> None:
    service.run([ListReader([Upsert(doc("a.md", "a")), Upsert(doc("b.md", "b")), ScopeComplete("doc:o/r:")])], inputs=[])
    r = service.run([ListReader([Fail("doc:o/r:a.md", "malformed"), ScopeComplete("doc:o/r:")])], inputs=[])
    assert r.failed == 1 and r.removed == 1  # b.md is gone, a.md stays
    with store.session() as s:
        assert set(s.scalars(select(Source.key))) == {"doc:o/r:a.md"}
