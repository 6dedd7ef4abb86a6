"""The IVF index types beyond the exact-search size (``ivfpq``, the default, and ``ivf``):
training, ids, removal, filters, persistence, retraining."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery

from lorebase.index.dense import DenseIndex
from lorebase.index.faiss_store import COMPACT_DEAD_SHARE, EXACT_FILTER_MAX, ChunkFaissStore
from lorebase.index.faiss_types import auto_nlist, new_faiss_index, pq_subquantizers
from lorebase.settings import IndexSettings

DIM = 16
KINDS = ["ivfpq", "ivf"]


def clustered(n: int, seed: int = 0, centres: int = 20) -> np.ndarray:
    """Unit vectors around a few centres, so k-means has structure to find."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, DIM))
    v = c[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def trained_store(kind: str, ids: np.ndarray, vecs: np.ndarray, nlist: int = 8, share: float = 1.0) -> ChunkFaissStore:
    """With every list probed and every candidate re-scored exactly, both types return exact results."""
    flat = ChunkFaissStore(new_faiss_index(DIM, "flat"), probe_share=share, refine_factor=10_000)
    flat.add_vectors(ids, vecs)
    return flat.converted(kind, nlist=nlist)


def exact_top(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    order = np.argsort(-(vecs @ q), kind="stable")[:k]
    return [int(ids[i]) for i in order]


def test_auto_sizes() -> None:
    assert auto_nlist(1_000_000) == 4096
    assert auto_nlist(200_000) == 2048
    assert auto_nlist(30) == 1  # too few vectors to train more than one list
    assert auto_nlist(390) == 10  # at least 39 training vectors per list
    assert auto_nlist(0) == 1
    assert pq_subquantizers(384) == 96 and pq_subquantizers(768) == 192 and pq_subquantizers(10) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_converted_trains_the_lists_and_keeps_every_id_and_exact_vector(kind: str) -> None:
    vecs = clustered(2000)
    ids = np.arange(5000, 7000)
    store = trained_store(kind, ids, vecs, nlist=16, share=0.25)
    assert store.index_type == kind and store.nlist == 16 and store.nprobe == 4 and store.trained_on == 2000
    assert store.present_ids().tolist() == ids.tolist()
    np.testing.assert_array_equal(store.vectors(np.array([5003, 6999])), vecs[[3, 1999]])
    assert store.search(vecs[42], 1)[0][0] == 5042


@pytest.mark.parametrize("kind", KINDS)
def test_probing_every_list_is_exact_search(kind: str) -> None:
    vecs = clustered(1500, seed=1)
    ids = np.arange(1, 1501)
    store = trained_store(kind, ids, vecs)
    for q in clustered(20, seed=2):
        got = store.search(q, 10)
        assert [i for i, _ in got] == exact_top(vecs, ids, q, 10)
        assert got[0][1] == pytest.approx(float(vecs[got[0][0] - 1] @ q), abs=1e-5)  # exact scores, not PQ estimates


@pytest.mark.parametrize("kind", KINDS)
def test_an_untrained_index_refuses_vectors(kind: str) -> None:
    store = ChunkFaissStore(new_faiss_index(DIM, kind, nlist=4))
    with pytest.raises(ValueError, match="untrained"):
        store.add_vectors(np.arange(3), clustered(3))


@pytest.mark.parametrize("kind", KINDS)
def test_add_replace_and_remove_by_chunk_id_through_llama_index_api(kind: str) -> None:
    vecs = clustered(400, seed=3)
    ids = np.arange(1000, 1400)
    store = trained_store(kind, ids, vecs)
    store.delete_nodes(["1007", "1008"])
    store.delete("1009")
    assert store.count == 397
    if kind == "ivf":
        assert store.client.ntotal == 397 and store.deleted == set()  # removed for real
    else:
        assert store.client.ntotal == 400 and store.deleted == {1007, 1008, 1009}  # marked
    res = store.query(VectorStoreQuery(query_embedding=vecs[7].tolist(), similarity_top_k=400))
    assert len(res.ids or []) == 397 and not {"1007", "1008", "1009"} & set(res.ids or [])
    live = np.setdiff1d(ids, [1007, 1008, 1009])
    assert [i for i, _ in store.search(vecs[7], 10)] == exact_top(vecs[live - 1000], live, vecs[7], 10)

    moved = clustered(1, seed=99)[0]
    store.add([TextNode(id_="1100", text="", embedding=moved.tolist())])  # chunk 1100 re-embedded
    assert store.count == 397 and store.present_ids().tolist().count(1100) == 1
    assert store.search(moved, 1)[0][0] == 1100
    np.testing.assert_array_equal(store.vectors(np.array([1100])), moved[None, :])
    store.add_vectors(np.array([1007]), vecs[7:8])  # a removed id may come back
    assert store.search(vecs[7], 1)[0][0] == 1007 and store.count == 398


def test_ivfpq_marks_are_compacted_away_keeping_the_training() -> None:
    vecs = clustered(500, seed=8)
    store = trained_store("ivfpq", np.arange(500), vecs)
    store.remove_ids(np.arange(int(COMPACT_DEAD_SHARE * 500)))  # exactly the share: marked only
    assert store.client.ntotal == 500
    store.remove_ids([499])  # past it: rebuilt without the dead
    assert store.deleted == set() and store.client.ntotal == store.count == 399
    assert store.nlist == 8 and store.trained_on == 500 and store.client.is_trained
    assert [i for i, _ in store.search(vecs[300], 3)] == exact_top(vecs[100:499], np.arange(100, 499), vecs[300], 3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n_allowed", [3, EXACT_FILTER_MAX + 1_000])
def test_node_ids_restrict_the_candidates(kind: str, n_allowed: int) -> None:
    """Few allowed ids are scored exactly; many go through a selector, with more lists probed."""
    n = max(2_000, n_allowed + 2_000)
    vecs = clustered(n, seed=4)
    ids = np.arange(n)
    store = trained_store(kind, ids, vecs)
    rng = np.random.default_rng(5)
    allowed = np.sort(rng.choice(n, n_allowed, replace=False))
    store.remove_ids(allowed[:1])
    got = store.search(vecs[0], 10, allowed=np.append(allowed, n + 7))  # absent and removed ids are no candidates
    live = allowed[1:]
    assert [i for i, _ in got] == exact_top(vecs[live], live, vecs[0], 10)


def make_index(directory: Path, **settings: int | float | str) -> DenseIndex:
    return DenseIndex(directory, IndexSettings(**settings), "emb-a", DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_keeps_the_trained_lists_and_marks(tmp_path: Path, kind: str) -> None:
    vecs = clustered(800, seed=6)
    d = make_index(tmp_path, exact_max_vectors=500, ivf_nlist=8, ann_index=kind)
    d.store.add_vectors(np.arange(800), vecs)
    d.fit_type()
    assert d.index_type == kind and d.store.trained_on == 800
    d.store.remove_ids([3])
    m = d.save()
    assert m.index_type == kind and m.trained_on == 800 and m.deleted == ([3] if kind == "ivfpq" else [])

    again = make_index(tmp_path, exact_max_vectors=500, ivf_nlist=8, ivf_probe_share=1.0, ivf_refine_factor=100, ann_index=kind)
    again.load()
    assert again.index_type == kind and again.store.nlist == 8 and again.store.trained_on == 800
    assert again.count == 799 and 3 not in [i for i, _ in again.search(vecs[3], 5)]
    again.store.remove_ids([5])
    again.store.add_vectors(np.array([900]), vecs[5:6])  # adds after loading go into the trained lists
    assert again.search(vecs[5], 1)[0][0] == 900
    scores = again.scores_of(vecs[5], [900, 5, 12345])
    assert set(scores) == {900} and scores[900] == pytest.approx(1.0, abs=1e-5)  # removed and unknown ids have no score


def test_grown_index_is_retrained_and_a_shrunk_one_goes_back_to_exact(tmp_path: Path) -> None:
    vecs = clustered(2600, seed=7)
    d = make_index(tmp_path, exact_max_vectors=500)
    d.store.add_vectors(np.arange(600), vecs[:600])
    d.fit_type()
    assert d.index_type == "ivfpq" and d.store.trained_on == 600 and d.store.nlist == auto_nlist(600)

    d.store.add_vectors(np.arange(600, 1200), vecs[600:1200])
    d.fit_type()  # 1200 is not more than twice 600: same lists
    assert d.store.trained_on == 600
    d.store.add_vectors(np.arange(1200, 2600), vecs[1200:])
    d.fit_type()  # more than twice: retrained for the new size
    assert d.store.trained_on == 2600 and d.store.nlist == auto_nlist(2600)
    assert sorted(d.store.live_ids().tolist()) == list(range(2600))

    d.store.remove_ids(np.arange(2400))
    d.fit_type()  # 200 left: at most half the threshold
    assert d.index_type == "flat" and sorted(d.store.live_ids().tolist()) == list(range(2400, 2600))
