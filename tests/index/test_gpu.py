"""faiss-gpu: unfiltered exact searches run on a GPU copy and agree with the CPU index."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(faiss.get_num_gpus() == 0, reason="needs faiss-gpu and a CUDA GPU"),
]


def test_flat_search_on_gpu_matches_cpu() -> None:
    from lorebase.index.faiss_store import ChunkFaissStore
    from lorebase.index.faiss_types import new_faiss_index

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = ChunkFaissStore(new_faiss_index(64, "flat"))
    store.add_vectors(np.arange(10_000, 12_000), vecs)
    on_gpu = store.search(vecs[5], 10)
    assert store._gpu_index is not None  # the GPU copy served it
    cpu = store.client.search(vecs[5:6], 10)
    assert [i for i, _ in on_gpu] == cpu[1][0].tolist()
    store.remove_ids([10_005])  # a write drops the stale GPU copy
    assert store._gpu_index is None and 10_005 not in [i for i, _ in store.search(vecs[5], 10)]
