"""llama-index's FAISS vector store keyed by chunk id, on an exact or an HNSW index.

We subclass ``FaissVectorStore`` rather than use ``FaissMapVectorStore`` (0.7.0): that one gives
each vector the FAISS id ``ntotal``, which collides with a live id after any delete, and keeps a
node-id map in a JSON side file. Here node ids are ``str(chunk.id)`` and FAISS ids are the chunk
ids themselves (never reused: SQLite AUTOINCREMENT), so no map is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissVectorStore

from lorebase.errors import InvalidInput
from lorebase.index.atomic_files import fsync_dir, fsync_file

log = logging.getLogger(__name__)

# Below this many allowed ids, a filtered HNSW search scores them exactly instead of walking the graph.
EXACT_FILTER_MAX = 20_000
# HNSW deletes are marks; past this share of dead vectors the graph is rebuilt without them.
COMPACT_DEAD_SHARE = 0.2


def _ids_array(ids: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64))


def new_faiss_index(dim: int, index_type: str, m: int = 32, ef_construction: int = 40) -> Any:
    import faiss

    if index_type == "flat":
        inner = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ef_construction
    else:
        raise ValueError(f"unknown index type {index_type!r}")
    return faiss.IndexIDMap2(inner)


def index_type_of(faiss_index: Any) -> str:
    import faiss

    inner = faiss.downcast_index(faiss_index.index) if hasattr(faiss_index, "index") else faiss_index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"


@contextmanager
def _one_omp_thread(faiss: Any) -> Iterator[None]:
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


class ChunkFaissStore(FaissVectorStore):
    """``FaissVectorStore`` keyed by chunk id: node ids are ``str(chunk.id)`` and so are FAISS ids.

    Adds and deletes work on both index types. HNSW cannot remove vectors, so deletes there are
    marks that searches skip (an ``IDSelector``); the graph is rebuilt without them when they
    pile up or when a marked id comes back.
    """

    _deleted: set[int] = PrivateAttr(default_factory=set)
    _ef_search: int = PrivateAttr(default=128)
    _m: int = PrivateAttr(default=32)
    _ef_construction: int = PrivateAttr(default=40)
    _present: np.ndarray | None = PrivateAttr(default=None)
    _skip_dead: Any = PrivateAttr(default=None)
    _gpu_index: Any = PrivateAttr(default=None)

    def __init__(
        self,
        faiss_index: Any,
        deleted: set[int] | None = None,
        ef_search: int = 128,
        m: int = 32,
        ef_construction: int = 40,
    ) -> None:
        super().__init__(faiss_index=faiss_index)
        self._deleted = set(deleted or ())
        self._ef_search = ef_search
        self._m = m
        self._ef_construction = ef_construction

    @classmethod
    def class_name(cls) -> str:
        return "ChunkFaissStore"

    # --- what is in it ---------------------------------------------------------------------------

    @property
    def index_type(self) -> str:
        return index_type_of(self._faiss_index)

    @property
    def dim(self) -> int:
        return int(self._faiss_index.d)

    @property
    def deleted(self) -> set[int]:
        return set(self._deleted)

    def present_ids(self) -> np.ndarray:
        """Every id stored, dead marks included, sorted."""
        if self._present is None:
            import faiss

            self._present = np.sort(faiss.vector_to_array(self._faiss_index.id_map).astype(np.int64))
        return self._present

    def live_ids(self) -> np.ndarray:
        ids = self.present_ids()
        if self._deleted:
            ids = ids[~np.isin(ids, _ids_array(self._deleted))]
        return ids

    @property
    def count(self) -> int:
        return int(self._faiss_index.ntotal) - len(self._deleted)

    def _changed(self) -> None:
        self._present = None
        self._skip_dead = None
        self._gpu_index = None

    # --- writes ----------------------------------------------------------------------------------

    def add(self, nodes: list[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes whose ``node_id`` is a chunk id. Adding an id that is already there replaces it."""
        if not nodes:
            return []
        ids = _ids_array(int(n.node_id) for n in nodes)
        vecs = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        self.add_vectors(ids, vecs)
        return [str(i) for i in ids]

    def add_vectors(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        ids = _ids_array(ids)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vecs.shape}")
        again = ids[np.isin(ids, self.present_ids())]
        if again.size:
            if self.index_type == "hnsw":
                self._rebuild_graph(exclude=again)
            else:
                self._faiss_index.remove_ids(again)
        self._faiss_index.add_with_ids(vecs, ids)
        self._changed()

    def remove_ids(self, ids: Any) -> int:
        """Remove these chunk ids (absent ones are ignored). Returns how many were there."""
        ids = _ids_array(ids)
        there = ids[np.isin(ids, self.live_ids())]
        if there.size == 0:
            return 0
        if self.index_type == "hnsw":
            self._deleted.update(int(i) for i in there)
            if len(self._deleted) > COMPACT_DEAD_SHARE * max(self._faiss_index.ntotal, 1):
                self._rebuild_graph()
        else:
            self._faiss_index.remove_ids(there)
        self._changed()
        return int(there.size)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self.remove_ids([int(ref_doc_id)])

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        if filters is not None:
            # Our filters live in the store (lorebase.index.filters); FAISS holds only ids and vectors.
            raise InvalidInput("deleting by metadata filter is not supported here: delete by chunk id")
        if node_ids is None:
            raise ValueError("node_ids must be given")
        self.remove_ids([int(i) for i in node_ids])

    def clear(self) -> None:
        self._faiss_index.reset()
        self._deleted.clear()
        self._changed()

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = _ids_array(ids)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._faiss_index.reconstruct_batch(ids), dtype=np.float32)

    def converted(self, index_type: str) -> ChunkFaissStore:
        """A new store of ``index_type`` holding the live vectors of this one."""
        ids = self.live_ids()
        fresh = new_faiss_index(self.dim, index_type, self._m, self._ef_construction)
        if ids.size:
            fresh.add_with_ids(self.vectors(ids), ids)
        return ChunkFaissStore(fresh, ef_search=self._ef_search, m=self._m, ef_construction=self._ef_construction)

    def _rebuild_graph(self, exclude: np.ndarray | None = None) -> None:
        ids = self.live_ids()
        if exclude is not None and exclude.size:
            ids = ids[~np.isin(ids, exclude)]
        vecs = self.vectors(ids)
        fresh = new_faiss_index(self.dim, self.index_type, self._m, self._ef_construction)
        if ids.size:
            fresh.add_with_ids(vecs, ids)
        log.info("rebuilt the HNSW graph: %d live vectors, %d dropped", ids.size, self._faiss_index.ntotal - ids.size)
        self._faiss_index = fresh
        self._deleted.clear()
        self._changed()

    # --- reads -----------------------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` by inner product; ``node_ids``, when given, restricts the candidates."""
        if query.filters is not None:
            raise ValueError("metadata filters are applied from the store: pass node_ids instead")
        vec = np.asarray(query.query_embedding, dtype=np.float32).reshape(1, -1)
        allowed = None if query.node_ids is None else _ids_array(int(i) for i in query.node_ids)
        hits = self.search(vec, query.similarity_top_k, allowed)
        return VectorStoreQueryResult(ids=[str(i) for i, _ in hits], similarities=[s for _, s in hits])

    def search(self, vec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        import faiss

        vec = np.ascontiguousarray(vec, dtype=np.float32).reshape(1, -1)
        if k <= 0 or self._faiss_index.ntotal == 0:
            return []
        hnsw = self.index_type == "hnsw"
        if allowed is not None:
            allowed = self._live_among(allowed)
            if allowed.size == 0:
                return []
            if hnsw and allowed.size <= EXACT_FILTER_MAX:
                scores = self.vectors(allowed) @ vec[0]
                top = np.argsort(-scores, kind="stable")[:k]
                return [(int(allowed[i]), float(scores[i])) for i in top]
            batch = faiss.IDSelectorBatch(allowed)
            params = faiss.SearchParametersHNSW(sel=batch, efSearch=max(self._ef_search, k)) if hnsw else faiss.SearchParameters(sel=batch)
            keep = batch  # the params hold a raw pointer: keep the selector alive through the search
            k = min(k, int(allowed.size))
        elif hnsw:
            params = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))
            if self._deleted:
                if self._skip_dead is None:
                    dead = faiss.IDSelectorBatch(_ids_array(sorted(self._deleted)))
                    self._skip_dead = (dead, faiss.IDSelectorNot(dead))
                params.sel = self._skip_dead[1]
            keep = self._skip_dead
        else:
            params, keep = None, None
        k = min(k, self.count)
        index = self._faiss_index
        if params is None and faiss.get_num_gpus() > 0:
            index = self._on_gpu()
        with _one_omp_thread(faiss):
            dists, labels = index.search(vec, k, params=params) if params is not None else index.search(vec, k)
        del keep
        return [(int(i), float(d)) for i, d in zip(labels[0], dists[0], strict=True) if i >= 0]

    def _live_among(self, ids: np.ndarray) -> np.ndarray:
        """The live ids among ``ids``, sorted: binary search in the cached sorted ids, O(m log n)."""
        ids = np.unique(_ids_array(ids))
        present = self.present_ids()
        if ids.size == 0 or present.size == 0:
            return ids[:0]
        pos = np.minimum(np.searchsorted(present, ids), present.size - 1)
        ids = ids[present[pos] == ids]
        if self._deleted:
            ids = ids[~np.isin(ids, _ids_array(self._deleted))]
        return ids

    def _on_gpu(self) -> Any:
        """A GPU copy of a flat index for unfiltered searches (HNSW and selectors stay on the CPU)."""
        import faiss

        if self.index_type != "flat":
            return self._faiss_index
        if self._gpu_index is None:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self._faiss_index)
        return self._gpu_index

    # --- files -----------------------------------------------------------------------------------

    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Write the FAISS file atomically: a tmp file, fsync, rename."""
        import faiss

        path = Path(persist_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._faiss_index, str(tmp))
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
