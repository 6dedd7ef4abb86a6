"""Replicas in step: several indexes (one per API replica, each in its own data home) follow one
store through the change log; what one replica does never makes another miss a change. Every test
runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.index.follow import IndexFollower
from lorebase.index.sync import IndexSyncer
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from tests.index.corpus import add_source, chunk_states, delete_source, tombstones


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = load_settings(home=tmp_path / "home", database_url=db_url)
    s.ensure_home()
    return s


@pytest.fixture
def replica(tmp_path: Path, settings: Settings, store: Store, embedder: LorebaseEmbedding) -> Callable[[str], IndexSyncer]:
    """The index syncer of replica NAME: its own data home (and index), the shared store."""

    def make(name: str) -> IndexSyncer:
        s = load_settings(home=tmp_path / name, database_url=settings.database_url or settings.db_url)
        syncer = IndexSyncer(s, store, embedder, progress=False)
        syncer.open()
        return syncer

    return make


def ids_in(syncer: IndexSyncer) -> list[int]:
    return sorted(syncer.dense.store.live_ids().tolist())


def test_a_deletion_cleared_by_one_replica_still_reaches_the_other(store: Store, replica: Callable[[str], IndexSyncer]) -> None:
    a, b = replica("a"), replica("b")
    keep = add_source(store, "doc:r:keep.md", ["Install with pip.", "Configure the database URL."])
    drop = add_source(store, "doc:r:drop.md", ["Boil the pasta for nine minutes."])
    a.sync()
    b.sync()
    assert ids_in(a) == ids_in(b) == sorted(keep + drop)

    delete_source(store, "doc:r:drop.md")
    assert a.sync().removed == 1
    assert tombstones(store) == []  # replica a cleared the hint ...
    assert b.sync().removed == 1  # ... and b still learns of the deletion, from the log
    new = add_source(store, "doc:r:new.md", ["Caching keeps hot pages in memory."])
    assert a.sync().added == 1 and set(chunk_states(store).values()) == {True}  # a marked it indexed ...
    assert b.sync().added == 1  # ... and b still embeds it
    assert ids_in(a) == ids_in(b) == sorted(keep + new)
    assert a.dense.log_seq == b.dense.log_seq


def test_a_cold_replica_builds_from_the_store_then_follows_the_log(store: Store, replica: Callable[[str], IndexSyncer],
                                                                    embedder: LorebaseEmbedding) -> None:
    a = replica("a")
    first = add_source(store, "doc:r:one.md", ["The scheduler retries a failed job three times."])
    a.sync()
    cold = replica("cold")  # opening finds chunks indexed elsewhere and none here: built from the store
    assert ids_in(cold) == first and cold.dense.log_seq == a.dense.log_seq

    delete_source(store, "doc:r:one.md")
    later = add_source(store, "doc:r:two.md", ["Reciprocal rank fusion adds one over sixty plus the rank."])
    follower = IndexFollower(cold, interval_s=0.1)
    assert follower.step() is True and ids_in(cold) == later
    assert follower.step() is False  # nothing new in the log
    top = cold.dense.search(embedder.embed(["how does rank fusion combine retrievers"])[0], 1)
    assert top[0][0] == later[0]

    restarted = replica("cold")  # its saved index and position survive a restart
    assert restarted.status()["log_behind"] == 0 and ids_in(restarted) == later


def test_a_replica_crashing_after_its_save_loses_nothing_and_duplicates_nothing(
    store: Store, replica: Callable[[str], IndexSyncer]
) -> None:
    a = replica("a")
    add_source(store, "doc:r:one.md", ["First page.", "Second page."])
    a.sync()
    add_source(store, "doc:r:two.md", ["Third page."])
    delete_source(store, "doc:r:one.md")
    plan = a.plan()
    a.apply(plan, a.embed(plan.texts))  # dies here: saved with its new position, hints not cleared

    again = replica("a")
    assert again.open() is None
    again.sync()
    present = again.dense.store.present_ids().tolist()
    assert len(present) == len(set(present)) and sorted(present) == sorted(chunk_states(store))
    assert tombstones(store) == [] and set(chunk_states(store).values()) == {True}
