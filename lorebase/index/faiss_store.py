"""llama-index's FAISS vector store keyed by chunk id, on an exact or an approximate index.

We subclass ``FaissVectorStore`` rather than use ``FaissMapVectorStore`` (0.7.0): that one gives
each vector the FAISS id ``ntotal``, which collides with a live id after any delete, and keeps a
node-id map in a JSON side file. Here node ids are ``str(chunk.id)`` and FAISS ids are the chunk
ids themselves (never reused: SQLite AUTOINCREMENT), so no map is needed.

The index types (flat, ivfpq, ivf, hnsw) are built and recognised in :mod:`lorebase.index.faiss_types`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryResult
from llama_index.vector_stores.faiss import FaissVectorStore
from llama_index.vector_stores.faiss.base import DEFAULT_PERSIST_PATH

from lorebase.errors import InvalidInput
from lorebase.index.atomic_files import write_faiss_atomic
from lorebase.index.faiss_types import (
    MARKED_DELETE_TYPES,
    TRAINED_TYPES,
    ids_array,
    index_type_of,
    new_faiss_index,
    one_omp_thread,
    trained_index,
)

log = logging.getLogger(__name__)

# Below this many allowed ids, a filtered approximate search scores them exactly instead.
EXACT_FILTER_MAX = 20_000
# Where deletes are marks (HNSW, IVF-PQ), past this share of dead vectors the index is rebuilt without them.
COMPACT_DEAD_SHARE = 0.2
# Vectors copied per step when converting or compacting (bounds the extra memory).
COPY_STEP = 100_000


class ChunkFaissStore(FaissVectorStore):
    """``FaissVectorStore`` keyed by chunk id: node ids are ``str(chunk.id)`` and so are FAISS ids.

    Adds and deletes work on every index type. Where FAISS cannot remove vectors (HNSW, IVF-PQ
    behind its id map), deletes are marks that searches skip (an ``IDSelector``), and the index is
    rebuilt without them when they pile up or when a marked id comes back; flat and IVF remove
    for real.
    """

    _deleted: set[int] = PrivateAttr(default_factory=set)
    _ef_search: int = PrivateAttr(default=128)
    _m: int = PrivateAttr(default=32)
    _ef_construction: int = PrivateAttr(default=40)
    _probe_share: float = PrivateAttr(default=0.3125)
    _refine_factor: int = PrivateAttr(default=16)
    _trained_on: int = PrivateAttr(default=0)
    _present: np.ndarray | None = PrivateAttr(default=None)
    _by_position: tuple[np.ndarray, np.ndarray] | None = PrivateAttr(default=None)
    _skip_dead: Any = PrivateAttr(default=None)
    _gpu_index: Any = PrivateAttr(default=None)

    def __init__(
        self,
        faiss_index: Any,
        deleted: set[int] | None = None,
        ef_search: int = 128,
        m: int = 32,
        ef_construction: int = 40,
        probe_share: float = 0.3125,
        refine_factor: int = 16,
        trained_on: int = 0,
    ) -> None:
        super().__init__(faiss_index=faiss_index)
        self._deleted = set(deleted or ())
        self._ef_search = ef_search
        self._m = m
        self._ef_construction = ef_construction
        self._probe_share = probe_share
        self._refine_factor = refine_factor
        self._trained_on = trained_on

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

            if self.index_type == "ivf":
                ivf = faiss.extract_index_ivf(self._faiss_index)
                lists = ivf.invlists
                parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy() for i in range(ivf.nlist) if lists.list_size(i)]
                ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            else:
                ids = faiss.vector_to_array(self._faiss_index.id_map)
            self._present = np.sort(ids.astype(np.int64))
        return self._present

    def live_ids(self) -> np.ndarray:
        ids = self.present_ids()
        if self._deleted:
            ids = ids[~np.isin(ids, ids_array(self._deleted))]
        return ids

    @property
    def count(self) -> int:
        return int(self._faiss_index.ntotal) - len(self._deleted)

    @property
    def nlist(self) -> int:
        """IVF lists (0 for the other types)."""
        import faiss

        return int(faiss.extract_index_ivf(self._faiss_index).nlist) if self.index_type in TRAINED_TYPES else 0

    @property
    def nprobe(self) -> int:
        """IVF lists searched per query: ``probe_share`` of them, at least one."""
        return max(1, min(self.nlist, round(self._probe_share * self.nlist)))

    @property
    def trained_on(self) -> int:
        """For IVF types, how many vectors the index held when its lists were trained."""
        return self._trained_on

    def _changed(self) -> None:
        self._present = None
        self._by_position = None
        self._skip_dead = None
        self._gpu_index = None

    # --- writes ----------------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Add nodes whose ``node_id`` is a chunk id. Adding an id that is already there replaces it."""
        if not nodes:
            return []
        ids = ids_array(int(n.node_id) for n in nodes)
        vecs = np.asarray([n.get_embedding() for n in nodes], dtype=np.float32)
        self.add_vectors(ids, vecs)
        return [str(i) for i in ids]

    def add_vectors(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        ids = ids_array(ids)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if vecs.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vecs.shape}")
        if not self._faiss_index.is_trained:
            raise ValueError(f"an untrained {self.index_type} index takes no vectors: build it with converted()")
        again = ids[np.isin(ids, self.present_ids())]
        if again.size:
            if self.index_type in MARKED_DELETE_TYPES:
                self._compact(exclude=again)
            else:
                self._remove(again)
        self._faiss_index.add_with_ids(vecs, ids)
        self._changed()

    def _remove(self, ids: np.ndarray) -> None:
        """Really remove present ``ids`` (flat and IVF)."""
        import faiss

        if self.index_type == "ivf":
            # The hashtable direct map looks each id up; a batch selector would scan every list.
            self._faiss_index.remove_ids(faiss.IDSelectorArray(ids))
        else:
            self._faiss_index.remove_ids(ids)

    def remove_ids(self, ids: Any) -> int:
        """Remove these chunk ids (absent ones are ignored). Returns how many were there."""
        ids = ids_array(ids)
        there = ids[np.isin(ids, self.live_ids())]
        if there.size == 0:
            return 0
        if self.index_type in MARKED_DELETE_TYPES:
            self._deleted.update(int(i) for i in there)
            if len(self._deleted) > COMPACT_DEAD_SHARE * max(self._faiss_index.ntotal, 1):
                self._compact()
        else:
            self._remove(there)
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
        """The stored vectors of ``ids`` (all present; exact for every type, IVF-PQ keeps them beside its codes)."""
        ids = ids_array(ids)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._faiss_index.reconstruct_batch(ids), dtype=np.float32)

    def _copy_into(self, fresh: Any, ids: np.ndarray) -> None:
        for i in range(0, ids.size, COPY_STEP):
            part = ids[i : i + COPY_STEP]
            fresh.add_with_ids(self.vectors(part), part)

    def converted(self, index_type: str, nlist: int | None = None) -> ChunkFaissStore:
        """A new store of ``index_type`` holding the live vectors of this one.

        For the IVF types the lists (``nlist``, default ``auto_nlist`` of the count) and, for
        ``ivfpq``, the product quantiser are trained on a seeded sample of the live vectors first.
        Vectors are copied in steps, so the extra memory is the new index, not a third copy.
        """
        ids = self.live_ids()
        trained_on = 0
        if index_type in TRAINED_TYPES:
            fresh = trained_index(self.dim, index_type, ids, self.vectors, nlist)
            trained_on = int(ids.size)
        else:
            fresh = new_faiss_index(self.dim, index_type, self._m, self._ef_construction)
        self._copy_into(fresh, ids)
        return ChunkFaissStore(
            fresh, ef_search=self._ef_search, m=self._m, ef_construction=self._ef_construction,
            probe_share=self._probe_share, refine_factor=self._refine_factor, trained_on=trained_on,
        )  # fmt: skip

    def _compact(self, exclude: np.ndarray | None = None) -> None:
        """Rebuild without the dead marks (and without ``exclude``). IVF-PQ keeps its training."""
        import faiss

        ids = self.live_ids()
        if exclude is not None and exclude.size:
            ids = ids[~np.isin(ids, exclude)]
        if self.index_type == "ivfpq":
            fresh = faiss.clone_index(self._faiss_index)
            fresh.reset()  # drops the vectors, keeps the trained lists and quantiser
        else:
            fresh = new_faiss_index(self.dim, self.index_type, self._m, self._ef_construction)
        self._copy_into(fresh, ids)
        log.info("rebuilt the %s index: %d live vectors, %d dropped", self.index_type, ids.size, self._faiss_index.ntotal - ids.size)
        self._faiss_index = fresh
        self._deleted.clear()
        self._changed()

    # --- reads -----------------------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` by inner product; ``node_ids``, when given, restricts the candidates."""
        if query.filters is not None:
            raise ValueError("metadata filters are applied from the store: pass node_ids instead")
        vec = np.asarray(query.query_embedding, dtype=np.float32).reshape(1, -1)
        allowed = None if query.node_ids is None else ids_array(int(i) for i in query.node_ids)
        hits = self.search(vec, query.similarity_top_k, allowed)
        return VectorStoreQueryResult(ids=[str(i) for i, _ in hits], similarities=[s for _, s in hits])

    def search(self, vec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        import faiss

        vec = np.ascontiguousarray(vec, dtype=np.float32).reshape(1, -1)
        if k <= 0 or self._faiss_index.ntotal == 0:
            return []
        kind = self.index_type
        share = 1.0
        if allowed is not None:
            allowed = self.live_among(allowed)
            if allowed.size == 0:
                return []
            if kind != "flat" and allowed.size <= EXACT_FILTER_MAX:
                scores = self.vectors(allowed) @ vec[0]
                top = np.argsort(-scores, kind="stable")[:k]
                return [(int(allowed[i]), float(scores[i])) for i in top]
            # Only a share of each probed IVF list is allowed: probe more lists to see as many allowed vectors.
            share = allowed.size / max(self._faiss_index.ntotal, 1)
            k = min(k, int(allowed.size))
        nprobe = min(self.nlist, int(np.ceil(self.nprobe / share))) if kind in TRAINED_TYPES else 0
        keep: Any = None  # params hold raw pointers: keep their selectors alive through the search
        if kind == "ivfpq":
            # Selectors act on the inner index, whose ids are positions in the id map.
            sel = self._skip_dead_positions() if allowed is None else faiss.IDSelectorBatch(self._positions(allowed))
            keep = sel
            base = faiss.SearchParametersIVF(nprobe=nprobe) if sel is None else faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
            params = faiss.IndexRefineSearchParameters(k_factor=self._refine_factor, base_index_params=base)
            keep = (keep, base)
        elif allowed is not None:
            batch = keep = faiss.IDSelectorBatch(allowed)
            if kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=batch, efSearch=max(self._ef_search, k))
            elif kind == "ivf":
                params = faiss.SearchParametersIVF(sel=batch, nprobe=nprobe)
            else:
                params = faiss.SearchParameters(sel=batch)
        elif kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        elif kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self._ef_search, k))
            if self._deleted:
                if self._skip_dead is None:
                    dead = faiss.IDSelectorBatch(ids_array(sorted(self._deleted)))
                    self._skip_dead = (dead, faiss.IDSelectorNot(dead))
                params.sel = self._skip_dead[1]
            keep = self._skip_dead
        else:
            params = None
        k = min(k, self.count)
        index = self._faiss_index
        if params is None and faiss.get_num_gpus() > 0:
            index = self._on_gpu()
        with one_omp_thread(faiss):
            dists, labels = index.search(vec, k, params=params) if params is not None else index.search(vec, k)
        del keep
        return [(int(i), float(d)) for i, d in zip(labels[0], dists[0], strict=True) if i >= 0]

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions in the id map (the inner index's own ids) of present ``ids``."""
        import faiss

        if self._by_position is None:
            id_map = faiss.vector_to_array(self._faiss_index.id_map).astype(np.int64)
            order = np.argsort(id_map, kind="stable")
            self._by_position = (id_map[order], order.astype(np.int64))
        sorted_ids, order = self._by_position
        return np.ascontiguousarray(order[np.searchsorted(sorted_ids, ids_array(ids))])

    def _skip_dead_positions(self) -> Any:
        """For IVF-PQ: a selector of every inner position but the dead marks' (None when there are none)."""
        import faiss

        if not self._deleted:
            return None
        if self._skip_dead is None:
            dead = faiss.IDSelectorBatch(self._positions(ids_array(sorted(self._deleted))))
            self._skip_dead = (dead, faiss.IDSelectorNot(dead))
        return self._skip_dead[1]

    def live_among(self, ids: np.ndarray) -> np.ndarray:
        """The live ids among ``ids``, sorted: binary search in the cached sorted ids, O(m log n)."""
        ids = np.unique(ids_array(ids))
        present = self.present_ids()
        if ids.size == 0 or present.size == 0:
            return ids[:0]
        pos = np.minimum(np.searchsorted(present, ids), present.size - 1)
        ids = ids[present[pos] == ids]
        if self._deleted:
            ids = ids[~np.isin(ids, ids_array(self._deleted))]
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

    def persist(self, persist_path: str = DEFAULT_PERSIST_PATH, fs: Any = None) -> None:
        """Write the FAISS file atomically: a tmp file, fsync, rename."""
        write_faiss_atomic(self._faiss_index, Path(persist_path))
