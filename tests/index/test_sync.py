"""The syncer keeps FAISS and the store in step, across crashes, damage and rebuilds, on SQLite and
on PostgreSQL (every test runs on both)."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from lorebase.errors import StoreError
from lorebase.index.dense import MANIFEST_NAME, DenseIndex
from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.index.sync import IndexSyncer
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from tests.index.corpus import add_source, chunk_states, delete_source, tombstones

TEXTS = {
    "doc:r:install.md": ["Install the package with pip and run the setup command.", "Configure the database URL before starting."],
    "doc:r:faq.md": ["Why is my query slow? Check that the index is built.", "Passwords are never stored in plain text."],
    "doc:r:cook.md": ["Boil the pasta for nine minutes in salted water."],
}


@pytest.fixture
def settings(tmp_path, db_url: str) -> Settings:  # type: ignore[no-untyped-def]
    s = load_settings(home=tmp_path / "home", database_url=db_url)
    s.ensure_home()
    return s


def fill(store: Store) -> dict[str, list[int]]:
    return {key: add_source(store, key, texts) for key, texts in TEXTS.items()}


def faiss_ids(syncer: IndexSyncer) -> list[int]:
    return syncer.dense.store.present_ids().tolist()


def nearest(syncer: IndexSyncer, embedder: LorebaseEmbedding, text: str) -> int:
    return syncer.dense.search(embedder.embed([text])[0], 1)[0][0]


def test_sync_adds_pending_chunks_persists_and_reloads(
    store: Store, make_syncer: Callable[..., IndexSyncer], embedder: LorebaseEmbedding
) -> None:
    ids = fill(store)
    syncer = make_syncer()
    assert syncer.open() is None  # nothing saved, nothing indexed: no rebuild needed
    r = syncer.sync()
    all_ids = sorted(i for v in ids.values() for i in v)
    assert (r.added, r.removed, r.total) == (5, 0, 5)
    assert set(chunk_states(store).values()) == {True}
    assert sorted(faiss_ids(syncer)) == all_ids

    fresh = make_syncer()
    assert fresh.open() is None
    assert sorted(faiss_ids(fresh)) == all_ids
    assert nearest(fresh, embedder, "cooking spaghetti in boiling water") == ids["doc:r:cook.md"][0]
    assert fresh.sync().added == 0  # nothing pending


def test_tombstones_remove_vectors_and_are_cleared(store: Store, make_syncer: Callable[..., IndexSyncer]) -> None:
    ids = fill(store)
    syncer = make_syncer()
    syncer.sync()
    gone = delete_source(store, "doc:r:faq.md")
    assert sorted(tombstones(store)) == sorted(gone)
    r = syncer.sync()
    assert (r.added, r.removed, r.total) == (0, 2, 3)
    assert tombstones(store) == []
    assert not set(gone) & set(faiss_ids(syncer))
    assert sorted(faiss_ids(syncer)) == sorted(ids["doc:r:install.md"] + ids["doc:r:cook.md"])


def test_crash_after_save_before_commit_leaves_no_duplicates(store: Store, make_syncer: Callable[..., IndexSyncer]) -> None:
    fill(store)
    first = make_syncer()
    first.sync()
    new = add_source(store, "doc:r:new.md", ["A brand new page about caching.", "And a second chunk on eviction."])
    gone = delete_source(store, "doc:r:cook.md")

    # The process dies between saving the index and updating the store.
    plan = first.plan()
    first.apply(plan, first.embed(plan.texts))
    assert all(chunk_states(store)[i] is False for i in new) and sorted(tombstones(store)) == gone

    after = make_syncer()
    assert after.open() is None  # pending and tombstoned ids in FAISS are expected, not damage
    r = after.sync()
    assert r.added == 2 and r.total == 6
    present = faiss_ids(after)
    assert len(present) == len(set(present)) == 6
    assert sorted(present) == sorted(chunk_states(store))
    assert tombstones(store) == [] and set(chunk_states(store).values()) == {True}


def test_damaged_index_file_is_rebuilt_with_nothing_lost(
    store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings, embedder: LorebaseEmbedding
) -> None:
    ids = fill(store)
    syncer = make_syncer()
    syncer.sync()
    manifest = syncer.dense.manifest
    assert manifest is not None
    path = settings.index_dir / manifest.file
    path.write_bytes(b"garbage" + path.read_bytes()[7:])

    again = make_syncer()
    reason = again.open()
    assert reason is not None and "checksum" in reason
    assert sorted(faiss_ids(again)) == sorted(chunk_states(store))
    assert nearest(again, embedder, "how do I install it with pip") == ids["doc:r:install.md"][0]
    assert make_syncer().open() is None  # the rebuilt index is saved and sound


def test_missing_index_with_indexed_chunks_is_rebuilt(store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings) -> None:
    fill(store)
    make_syncer().sync()
    for p in settings.index_dir.glob("dense*"):
        p.unlink()
    again = make_syncer()
    reason = again.open()
    assert reason is not None and "5 chunks are marked indexed" in reason
    assert sorted(faiss_ids(again)) == sorted(chunk_states(store))


def test_an_older_copy_of_the_index_catches_up_from_the_log(store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings) -> None:
    fill(store)
    syncer = make_syncer()
    syncer.sync()
    old = settings.index_dir / "old"
    old.mkdir()
    syncer.dense.save(old)  # an older copy of the index, with its log position ...
    extra = add_source(store, "doc:r:late.md", ["Added after the copy was made."])
    gone = delete_source(store, "doc:r:cook.md")
    syncer.sync()
    for p in old.iterdir():  # ... restored over the current one: it lacks a chunk and holds a deleted one
        p.replace(settings.index_dir / p.name)

    again = make_syncer()
    assert again.open() is None  # behind, not damaged: no re-embedding of everything
    assert extra[0] not in faiss_ids(again) and gone[0] in faiss_ids(again)
    r = again.sync()
    assert (r.added, r.removed, r.rebuilt) == (1, 1, False)
    assert sorted(faiss_ids(again)) == sorted(chunk_states(store))


def test_index_out_of_step_with_the_store_is_rebuilt(store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings) -> None:
    ids = fill(store)
    syncer = make_syncer()
    syncer.sync()
    lost = ids["doc:r:faq.md"][0]
    syncer.dense.store.remove_ids([lost])  # a vector lost although the index claims its log position
    syncer.dense.save()

    again = make_syncer()
    reason = again.open()
    assert reason is not None and "1 indexed chunks are missing" in reason
    assert lost in faiss_ids(again) and len(faiss_ids(again)) == 5


def test_an_index_behind_the_pruned_log_is_rebuilt(store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings,
                                                    tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lorebase.store.change_log import pruned_through

    fill(store)
    first = make_syncer()
    first.sync()
    add_source(store, "doc:r:a.md", ["One more page."])
    add_source(store, "doc:r:b.md", ["And another page."])
    # Another replica (its own index) that keeps one log entry: it catches up, then prunes the rest.
    other = make_syncer(load_settings(home=tmp_path / "other", database_url=settings.database_url,
                                      index={"change_log_max_entries": 1}))
    assert other.sync().total == 7
    with store.session() as s:
        assert pruned_through(s) > first.dense.log_seq

    behind = make_syncer()  # the first replica, restarted: its position is gone from the log
    reason = behind.open()
    assert reason is not None and "keeps only changes after" in reason
    assert sorted(faiss_ids(behind)) == sorted(chunk_states(store))


def test_embedder_change_needs_rebuild_and_rebuild_swaps_atomically(
    store: Store, make_syncer: Callable[..., IndexSyncer], settings: Settings, embedder: LorebaseEmbedding
) -> None:
    fill(store)
    other = DenseIndex(settings.index_dir, settings.index, "some-other-embedder", embedder.dim)
    other.store.add_vectors(np.array([1]), embedder.embed(["x"]))
    other.save()

    with pytest.raises(StoreError, match="lorebase index rebuild"):
        make_syncer().open()

    reader = make_syncer()  # another process, still serving what it loaded before the rebuild
    reader.dense.embedder_name = "some-other-embedder"
    reader.dense.load()
    assert reader.dense.count == 1

    r = make_syncer().rebuild()
    assert r.rebuilt and r.total == 5
    assert not list(settings.index_dir.glob(".rebuild-*"))  # the staging folder is gone
    assert len(list(settings.index_dir.glob("dense-*.faiss"))) == 1
    assert make_syncer().open() is None
    assert set(chunk_states(store).values()) == {True}
    assert reader.dense.count == 1  # it kept serving the old index until it looked again


def test_a_changed_long_text_setting_needs_a_rebuild(
    store: Store, settings: Settings, embedder: LorebaseEmbedding
) -> None:
    """Vectors of long chunks made by truncating and by pooling must not mix in one index: the
    manifest records the way, and a server configured the other way refuses the index until it
    is rebuilt (a manifest from before the setting existed was embedded by truncating)."""
    fill(store)
    first = IndexSyncer(settings, store, embedder, progress=False)
    first.open()
    first.sync()
    assert first.status()["long_texts"] == "truncate"
    manifest = settings.index_dir / MANIFEST_NAME
    older = json.loads(manifest.read_text())
    del older["long_texts"]  # as written before the setting existed
    manifest.write_text(json.dumps(older))
    assert IndexSyncer(settings, store, embedder, progress=False).open() is None

    pooled_settings = settings.model_copy(update={"index": settings.index.model_copy(update={"embed_long_texts": "pool"})})
    pooled = LorebaseEmbedding(embedder.path, model_name=embedder.model_name, dtype=embedder.dtype, long_texts="pool")
    with pytest.raises(StoreError, match="embed_long_texts 'truncate'.*lorebase index rebuild"):
        IndexSyncer(pooled_settings, store, pooled, progress=False).open()

    r = IndexSyncer(pooled_settings, store, pooled, progress=False).rebuild()
    assert r.rebuilt and r.total == 5
    reopened = IndexSyncer(pooled_settings, store, pooled, progress=False)
    assert reopened.open() is None and reopened.status()["long_texts"] == "pool"
    with pytest.raises(StoreError, match="embed_long_texts 'pool'"):  # and back needs a rebuild too
        IndexSyncer(settings, store, embedder, progress=False).open()


@pytest.mark.parametrize("ann", ["ivfpq", "ivf", "hnsw"])
def test_approximate_index_is_used_above_the_threshold(tmp_path, store: Store, embedder: LorebaseEmbedding, ann: str) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(home=tmp_path / "home", index={"exact_max_vectors": 2, "hnsw_m": 8, "ann_index": ann})
    ids = fill(store)
    syncer = IndexSyncer(settings, store, embedder, progress=False)
    syncer.sync()
    assert syncer.dense.index_type == ann and syncer.dense.manifest.index_type == ann  # type: ignore[union-attr]
    assert nearest(syncer, embedder, "boiling pasta") == ids["doc:r:cook.md"][0]

    gone = delete_source(store, "doc:r:cook.md")
    new = add_source(store, "doc:r:new.md", ["Caching keeps hot pages in memory."])
    plan = syncer.plan()
    syncer.apply(plan, syncer.embed(plan.texts))  # crash before commit, on the approximate index this time
    again = IndexSyncer(settings, store, embedder, progress=False)
    assert again.open() is None
    r = again.sync()
    assert r.total == 5 and again.dense.index_type == ann
    live = again.dense.store.live_ids().tolist()
    assert sorted(live) == sorted(chunk_states(store)) and new[0] in live and not set(gone) & set(live)
    assert len(again.dense.store.present_ids()) == len(set(again.dense.store.present_ids().tolist()))

    rebuilt = again.rebuild()  # built exact, then converted (an IVF index is trained first)
    assert rebuilt.total == 5 and again.dense.index_type == ann
    assert sorted(again.dense.store.live_ids().tolist()) == sorted(chunk_states(store))
    assert nearest(again, embedder, "keeping hot pages cached") == new[0]


LECTURE = [
    "Gradient descent moves the weights against the slope of the loss.",
    "A smaller learning rate makes each step shorter and the descent slower.",
    "Next week we look at regularisation and weight decay.",
]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_a_joined_window_gets_the_normalised_sum_of_its_chunks_vectors(
    store: Store, make_syncer: Callable[..., IndexSyncer], embedder: LorebaseEmbedding
) -> None:
    from sqlalchemy import select

    from lorebase.index.texts import indexed_text
    from lorebase.store.models import Chunk, source_id_for

    timed = [{"text": t, "start_time": 30.0 * i, "end_time": 30.0 * (i + 1)} for i, t in enumerate(LECTURE)]
    joined = {"text": "\n".join(LECTURE[:2]), "start_time": 0.0, "end_time": 60.0, "meta": {"joins": [0, 1], "scale": 2}}
    ids = add_source(store, "transcript:c/l1", [*timed, joined], kind="transcript", lecture="L1")
    syncer = make_syncer()
    syncer.open()
    syncer.sync()
    parts = embedder.embed([indexed_text("c/l1", t) for t in LECTURE])  # each chunk is embedded with its source title
    want = _unit(parts[0] + parts[1])
    got = syncer.dense.store.vectors(np.asarray(ids, dtype=np.int64))
    assert np.allclose(got[3], want, atol=1e-5)
    assert not np.allclose(got[3], embedder.embed([indexed_text("c/l1", joined["text"])])[0], atol=1e-3)  # not its own text's vector

    # A window added later, whose chunks are already in the index (an earlier round), and a rebuild.
    with store.session() as s:
        s.add(Chunk(source_id=source_id_for("transcript:c/l1"), ordinal=4, text="\n".join(LECTURE[1:]), start_time=30.0,
                    end_time=90.0, content_hash="j2", meta={"joins": [1, 2], "scale": 2}))
    syncer.sync()
    with store.session() as s:
        later = s.scalar(select(Chunk.id).where(Chunk.ordinal == 4))
    assert np.allclose(syncer.dense.store.vectors(np.asarray([later]))[0], _unit(parts[1] + parts[2]), atol=1e-5)
    syncer.rebuild()
    again = syncer.dense.store.vectors(np.asarray([ids[3], later], dtype=np.int64))
    assert np.allclose(again[0], want, atol=1e-5) and np.allclose(again[1], _unit(parts[1] + parts[2]), atol=1e-5)
