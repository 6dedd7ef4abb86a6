"""FAISS index types for the dense index: building an empty one, telling which one a loaded index is, and
sizing its lists and quantisers.

- ``flat``: ``IndexIDMap2`` around ``IndexFlatIP``: exact.
- ``ivfpq``: ``IndexIDMap2`` around ``IndexRefineFlat(IndexIVFPQFastScan)``: k-means lists of
  4-bit product-quantised codes (dim/4 sub-quantisers, scanned with SIMD), whose best
  ``refine_factor * k`` candidates are re-scored exactly against the full vectors kept beside
  them. Scanning 5/16 of the lists of 1M vectors takes about 3.5 ms on one core of our machine.
- ``ivf``: ``IndexIVFFlat`` keyed by chunk id (ids in its lists, a hashtable direct map): k-means
  lists of full vectors, removes for real.
- ``hnsw``: ``IndexIDMap2`` around ``IndexHNSWFlat``.

``ivf`` and ``ivfpq`` must be trained before vectors go in (``converted`` does it). ``hnsw`` and
``ivfpq`` cannot remove vectors, so deletes there are marks that searches skip, compacted away
when they pile up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# IVF k-means: training vectors per list (FAISS warns below 39) and iterations. 10 iterations
# lose no measurable recall against 25 here and train 2.5 times faster.
IVF_TRAIN_PER_LIST = 40
IVF_TRAIN_ITERATIONS = 10
# 4-bit PQ trains 16 centroids per sub-quantiser, so it needs at least 16 training vectors.
PQ_MIN_TRAIN = 16
INDEX_TYPES = ("flat", "ivfpq", "ivf", "hnsw")
TRAINED_TYPES = ("ivf", "ivfpq")
MARKED_DELETE_TYPES = ("hnsw", "ivfpq")


def ids_array(ids: Any) -> np.ndarray:
    """Chunk ids as FAISS takes them: a contiguous int64 array."""
    return np.ascontiguousarray(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64))


def auto_nlist(n: int) -> int:
    """IVF lists for ``n`` vectors: the power of two nearest 4 * sqrt(n), with at least 39 training
    vectors per list, from 1 to 65536."""
    if n <= 0:
        return 1
    want = 2 ** round(np.log2(max(4.0 * np.sqrt(n), 1.0)))
    return int(max(1, min(want, n // 39, 65536)))


def pq_subquantizers(dim: int) -> int:
    """Sub-quantisers for 4-bit PQ: about one per 4 dimensions (the largest divisor of dim up to dim/4)."""
    return max(d for d in range(1, max(1, dim // 4) + 1) if dim % d == 0)


def new_faiss_index(dim: int, index_type: str, m: int = 32, ef_construction: int = 40, nlist: int = 1) -> Any:
    """An empty index of ``index_type``; ``ivf`` and ``ivfpq`` ones are untrained (train before adding)."""
    import faiss

    if index_type == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ef_construction
        return faiss.IndexIDMap2(inner)
    if index_type == "ivfpq":
        spec = f"IVF{max(1, nlist)},PQ{pq_subquantizers(dim)}x4fs,RFlat"
        index = faiss.IndexIDMap2(faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT))
    elif index_type == "ivf":
        index = faiss.index_factory(dim, f"IVF{max(1, nlist)},Flat", faiss.METRIC_INNER_PRODUCT)
        # Lookups by chunk id (reconstruct, remove) without scanning every list.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
    else:
        raise ValueError(f"unknown index type {index_type!r} (types: {', '.join(INDEX_TYPES)})")
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.niter = IVF_TRAIN_ITERATIONS
    ivf.cp.seed = 1234
    return index


def trained_index(dim: int, index_type: str, ids: np.ndarray, vectors_of: Callable[[np.ndarray], np.ndarray],
                  nlist: int | None = None) -> Any:
    """An empty ``ivf`` or ``ivfpq`` index whose lists (``nlist``, default ``auto_nlist`` of the count) and,
    for ``ivfpq``, product quantiser are trained on a seeded sample of the vectors of ``ids``."""
    lists = auto_nlist(ids.size) if not nlist else min(nlist, max(1, ids.size))
    fresh = new_faiss_index(dim, index_type, nlist=lists)
    sample = ids
    if ids.size > IVF_TRAIN_PER_LIST * lists:
        sample = np.sort(np.random.default_rng(ids.size).choice(ids, IVF_TRAIN_PER_LIST * lists, replace=False))
    if ids.size:
        train = vectors_of(sample)
        if train.shape[0] < PQ_MIN_TRAIN:
            # A tiny index (tests, a low exact_max_vectors): 4-bit PQ needs 16 points per
            # sub-quantiser. Repeating them is harmless: refine_factor * k covers them all.
            train = np.resize(train, (PQ_MIN_TRAIN, dim))
        fresh.train(train)
    return fresh


def index_type_of(faiss_index: Any) -> str:
    import faiss

    if isinstance(faiss.downcast_index(faiss_index), faiss.IndexIVF):
        return "ivf"
    inner = faiss.downcast_index(faiss_index.index) if hasattr(faiss_index, "index") else faiss_index
    if isinstance(inner, faiss.IndexRefine):
        return "ivfpq"
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


def keyed_by_id(faiss_index: Any) -> bool:
    """Whether the index stores our ids itself: an id map, or an IVF index with a hashtable direct map."""
    import faiss

    index = faiss.downcast_index(faiss_index)
    if isinstance(index, faiss.IndexIVF):
        return int(index.direct_map.type) == int(faiss.DirectMap.Hashtable)
    return hasattr(faiss_index, "id_map")


@contextmanager
def one_omp_thread(faiss: Any) -> Iterator[None]:
    """Run one query on one OpenMP thread (the setting is per calling thread in libgomp).

    FAISS opens a parallel region even for a single query, and the region ends only when every
    thread has finished: on a busy 2-core machine the second thread waits for a time slice, and a
    1 ms HNSW search measured 16 ms at the median with two threads.
    """
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
