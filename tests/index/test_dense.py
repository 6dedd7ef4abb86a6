"""The FAISS store keyed by chunk id, and its persisted form (files, manifest, checks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from lorebase.errors import StoreError
from lorebase.index.dense import DenseIndex, IndexDamaged
from lorebase.index.faiss_store import ChunkFaissStore
from lorebase.index.faiss_types import new_faiss_index
from lorebase.settings import IndexSettings

DIM = 16


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def top_ids(store: ChunkFaissStore, vec: np.ndarray, k: int, node_ids: list[str] | None = None) -> list[str]:
    res = store.query(VectorStoreQuery(query_embedding=vec.tolist(), similarity_top_k=k, node_ids=node_ids))
    return list(res.ids or [])


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_query_and_delete_by_chunk_id_through_llama_index_api(kind: str) -> None:
    vecs = unit_vectors(50)
    store = ChunkFaissStore(new_faiss_index(DIM, kind, m=8, ef_construction=40))
    ids = list(range(1000, 1050))
    assert store.add([TextNode(id_=str(i), text="", embedding=v.tolist()) for i, v in zip(ids, vecs, strict=True)]) == [str(i) for i in ids]
    assert store.index_type == kind

    assert top_ids(store, vecs[7], 1) == ["1007"]
    store.delete_nodes(["1007", "1008"])
    store.delete("1009")
    assert store.count == 47
    after = top_ids(store, vecs[7], 50)
    assert len(after) == 47 and not {"1007", "1008", "1009"} & set(after)
    assert 1007 not in store.live_ids()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_adding_an_id_again_replaces_it(kind: str) -> None:
    vecs = unit_vectors(11)
    store = ChunkFaissStore(new_faiss_index(DIM, kind, m=8))
    store.add_vectors(np.arange(1, 11), vecs[:10])
    store.add_vectors(np.array([3]), vecs[10:11])  # chunk 3 re-embedded
    assert store.count == 10
    assert sorted(store.live_ids().tolist()) == list(range(1, 11))
    assert top_ids(store, vecs[10], 1) == ["3"]
    hits = top_ids(store, vecs[2], 10)  # the old vector of 3 is gone
    assert hits.count("3") == 1 and hits[0] != "3"


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_node_ids_restrict_the_candidates(kind: str) -> None:
    vecs = unit_vectors(40, seed=1)
    store = ChunkFaissStore(new_faiss_index(DIM, kind, m=8))
    store.add_vectors(np.arange(40), vecs)
    store.remove_ids([21])
    allowed = ["5", "17", "33"]
    # ids absent from the index (999) or removed from it (21) are simply not candidates
    got = top_ids(store, vecs[0], 10, node_ids=[*allowed, "999", "21"])
    assert sorted(got) == sorted(allowed)
    expected = sorted(allowed, key=lambda i: -float(vecs[int(i)] @ vecs[0]))
    assert got == expected
    assert top_ids(store, vecs[0], 10, node_ids=["999"]) == []


def test_hnsw_deletes_compact_the_graph_once_they_pile_up() -> None:
    vecs = unit_vectors(20, seed=2)
    store = ChunkFaissStore(new_faiss_index(DIM, "hnsw", m=8))
    store.add_vectors(np.arange(20), vecs)
    store.remove_ids([0, 1])  # 10%: marked only
    assert store.deleted == {0, 1} and store.client.ntotal == 20
    store.remove_ids([2, 3, 4])  # 25%: rebuilt without them
    assert store.deleted == set() and store.client.ntotal == 15
    assert not {"0", "1", "2", "3", "4"} & set(top_ids(store, vecs[0], 20))


def make_index(directory: Path, name: str = "emb-a", dim: int = DIM, **settings: int | str) -> DenseIndex:
    return DenseIndex(directory, IndexSettings(**settings), name, dim)


def test_save_and_load_round_trip_with_manifest(tmp_path: Path) -> None:
    vecs = unit_vectors(30)
    d = make_index(tmp_path)
    d.store.add_vectors(np.arange(100, 130), vecs)
    d.save()
    manifest = json.loads((tmp_path / "dense.json").read_text())
    faiss_file = tmp_path / manifest["file"]
    assert manifest["embedder"] == "emb-a" and manifest["dim"] == DIM and manifest["count"] == 30
    assert manifest["index_type"] == "flat"
    assert manifest["sha256"] == hashlib.sha256(faiss_file.read_bytes()).hexdigest()
    assert manifest["created_at"] and manifest["updated_at"]

    again = make_index(tmp_path)
    again.load()
    assert sorted(again.store.live_ids().tolist()) == list(range(100, 130))
    assert [i for i, _ in again.search(vecs[4], 3)] == [i for i, _ in d.search(vecs[4], 3)]
    assert again.search(vecs[4], 1)[0][0] == 104

    d.store.remove_ids([104])
    d.save()
    assert len(list(tmp_path.glob("dense-*.faiss"))) == 1  # the old generation is cleaned up
    assert json.loads((tmp_path / "dense.json").read_text())["created_at"] == manifest["created_at"]


def test_another_embedder_name_or_dim_asks_for_a_rebuild(tmp_path: Path) -> None:
    d = make_index(tmp_path)
    d.store.add_vectors(np.arange(3), unit_vectors(3))
    d.save()
    with pytest.raises(StoreError, match="lorebase index rebuild") as e:
        make_index(tmp_path, name="emb-b").load()
    assert "emb-a" in str(e.value) and "emb-b" in str(e.value)
    with pytest.raises(StoreError, match="lorebase index rebuild"):
        make_index(tmp_path, dim=DIM * 2).load()


def test_damaged_or_missing_file_is_reported_as_damage(tmp_path: Path) -> None:
    d = make_index(tmp_path)
    d.store.add_vectors(np.arange(3), unit_vectors(3))
    m = d.save()
    path = tmp_path / m.file
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IndexDamaged, match="checksum"):
        make_index(tmp_path).load()
    path.unlink()
    with pytest.raises(IndexDamaged, match="missing"):
        make_index(tmp_path).load()
    (tmp_path / "dense.json").write_text("{not json")
    with pytest.raises(IndexDamaged, match="unreadable"):
        make_index(tmp_path).load()


@pytest.mark.parametrize("ann", ["ivfpq", "ivf", "hnsw"])
def test_approximate_index_above_the_exact_threshold_and_back(tmp_path: Path, ann: str) -> None:
    vecs = unit_vectors(30)
    d = make_index(tmp_path, exact_max_vectors=20, hnsw_m=8, ann_index=ann)
    d.store.add_vectors(np.arange(30), vecs)
    d.fit_type()
    assert d.index_type == ann
    d.save()
    again = make_index(tmp_path, exact_max_vectors=20, hnsw_m=8, ann_index=ann)
    again.load()
    assert again.index_type == ann and again.search(vecs[12], 1)[0][0] == 12
    again.store.remove_ids(np.arange(21))  # 9 left: at most half the threshold
    again.fit_type()
    assert again.index_type == "flat" and sorted(again.store.live_ids().tolist()) == list(range(21, 30))
