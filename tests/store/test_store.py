from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from lorebase.store import Store
from lorebase.store.models import (
    AdapterVersion,
    Chunk,
    EvalRun,
    Feedback,
    IngestRun,
    JobRun,
    QAPair,
    Source,
    SyncCursor,
    source_id_for,
)


def _source(key: str = "code:o/r:m.py") -> Source:
    return Source(id=source_id_for(key), key=key, kind="code", title="m.py", text="print(1)\n", repo="o/r",
                  path="m.py", commit="c" * 40, start_line=1, end_line=1, content_hash="h1",
                  authored_at=datetime(2024, 5, 1, tzinfo=UTC), meta={"language": "python"})


def test_round_trip_of_every_record(settings, store: Store) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        src = _source()
        src.chunks = [Chunk(ordinal=0, text="print(1)", start_line=1, end_line=1, content_hash="c1", meta={"symbol": "m"})]
        s.add(src)
        s.add(QAPair(question="What does m.py print?", answer="1 [S1]", chunk_ids=[1], source_ids=[src.id], kind="code",
                     category="code.purpose", method="template", validated=True, split="train", question_hash="q"))
        s.add(Feedback(rating=-1, comment="wrong", question="q", answer="a", sources=[{"id": "S1"}], model="base"))
        s.add(AdapterVersion(name="a1", path="/x", base_model="m", data_hash="d", config={"r": 8}))
        s.add(EvalRun(eval_set="e.jsonl", eval_set_hash="h", model="m", embedder="e", metrics={"mrr": 0.5}))
        s.add(IngestRun(inputs=["x"], errors=[{"source": "a", "reason": "b"}]))
        s.add(JobRun(job="sync", counts={"added": 1}))
        s.add(SyncCursor(name="git:o/r:main", value="abc"))
    # a new store object on the same file: what was committed is there
    again = Store(settings.db_url)
    with again.session() as s:
        src = s.get(Source, source_id_for("code:o/r:m.py"))
        assert src is not None and src.meta == {"language": "python"}
        assert src.authored_at is not None and src.authored_at.replace(tzinfo=UTC) == datetime(2024, 5, 1, tzinfo=UTC)
        assert [c.text for c in src.chunks] == ["print(1)"]
        assert s.scalar(select(QAPair.answer)) == "1 [S1]"
        assert s.scalar(select(Feedback.sources)) == [{"id": "S1"}]
        assert s.scalar(select(AdapterVersion.config)) == {"r": 8}
        assert s.scalar(select(EvalRun.metrics)) == {"mrr": 0.5}
        assert s.scalar(select(IngestRun.errors)) == [{"source": "a", "reason": "b"}]
        assert s.scalar(select(JobRun.counts)) == {"added": 1}
        assert s.get(SyncCursor, "git:o/r:main").value == "abc"
    again.close()


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'wal.sqlite'}")  # SQLite's own settings: not a test for both stores
    with store.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
    store.close()


def test_deleting_a_source_cascades_to_chunks(store: Store) -> None:
    with store.session() as s:
        src = _source()
        src.chunks = [Chunk(ordinal=i, text=str(i), content_hash=str(i)) for i in range(3)]
        s.add(src)
    with store.session() as s:
        s.execute(text("DELETE FROM sources"))
    with store.session() as s:
        assert s.scalar(select(Chunk.id)) is None


def test_chunk_ids_are_never_reused(store: Store) -> None:
    # They double as FAISS ids: a reused id could resurrect a deleted vector.
    with store.session() as s:
        src = _source()
        src.chunks = [Chunk(ordinal=0, text="a", content_hash="a"), Chunk(ordinal=1, text="b", content_hash="b")]
        s.add(src)
    with store.session() as s:
        top = s.scalar(select(Chunk.id).order_by(Chunk.id.desc()))
        s.execute(text("DELETE FROM chunks"))
    with store.session() as s:
        s.add(Chunk(source_id=source_id_for("code:o/r:m.py"), ordinal=0, text="c", content_hash="c"))
    with store.session() as s:
        assert s.scalar(select(Chunk.id)) > top


def test_a_failed_unit_of_work_leaves_nothing(store: Store) -> None:
    with pytest.raises(IntegrityError):
        with store.session() as s:
            s.add(_source("code:o/r:a.py"))
            s.flush()
            s.add(Chunk(source_id="src_missing", ordinal=0, text="x", content_hash="x"))  # FK violation
    with store.session() as s:
        assert s.scalar(select(Source.id)) is None


def test_source_ids_are_stable() -> None:
    assert source_id_for("transcript:intro/l1") == source_id_for("transcript:intro/l1")
    assert source_id_for("transcript:intro/l1") != source_id_for("transcript:intro/l2")


def test_a_cursor_merged_twice_is_one_row_with_the_newer_value(store: Store) -> None:
    # ingest saves cursors with Session.merge: an upsert on either database
    with store.session() as s:
        s.merge(SyncCursor(name="git:o/r:main", value="a"))
    with store.session() as s:
        s.merge(SyncCursor(name="git:o/r:main", value="b"))
    with store.session() as s:
        rows = s.scalars(select(SyncCursor).where(SyncCursor.name.startswith("git:")))
        assert [(c.name, c.value) for c in rows] == [("git:o/r:main", "b")]


def test_times_are_utc_whatever_the_servers_zone(postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    from lorebase.index.filters import allowed_chunk_ids, parse_filters

    db = make_url(postgres_url).database
    zoned = Store(postgres_url, upgrade=False)
    with zoned.engine.begin() as c:  # a server set to another zone than UTC
        c.execute(text(f'ALTER DATABASE "{db}" SET timezone TO \'America/New_York\''))
    zoned.close()
    store = Store(postgres_url)
    with store.session() as s:
        assert s.scalar(text("SHOW timezone")) == "UTC"
        src = _source()  # authored 2024-05-01 00:00 UTC, 2024-04-30 20:00 in New York
        src.chunks = [Chunk(ordinal=0, text="x", content_hash="x")]
        s.add(src)
    with store.session() as s:
        assert s.scalar(select(Source.authored_at)) == datetime(2024, 5, 1, tzinfo=UTC)
    # a date filter means UTC days: the source is on May 1st, not April 30th
    assert allowed_chunk_ids(store, parse_filters({"since": "2024-05-01"})).size == 1
    assert allowed_chunk_ids(store, parse_filters({"until": "2024-04-30"})).size == 0
    store.close()
