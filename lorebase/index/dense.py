"""The persisted dense index: a ``ChunkFaissStore`` plus its manifest, in ``settings.index_dir``.

- ``dense-<generation>.faiss``: the FAISS index: exact (an ``IndexIDMap2`` around ``IndexFlatIP``)
  up to ``index.exact_max_vectors`` vectors, the approximate ``index.ann_index`` beyond (IVF-PQ
  with exact re-scoring by default; see ``faiss_store``).
- ``dense.json``: the manifest: embedder name, dim, count, index type, the file's name and
  sha256, created/updated times, the ids deleted but not yet compacted away (HNSW, IVF-PQ), for
  the IVF types how many vectors their lists were trained on, and ``log_seq``: the last change-log
  entry the index reflects (saved with it, so index and position are one commit). An index
  embedded by a tuned embedder (lorebase.finetune.embedder_tuning) also names its folder and the
  configured embedder it was tuned from: the manifest decides which embedder searches this index,
  so one rename swaps both. ``long_texts`` is how chunks longer than the embedder reads were
  embedded (``index.embed_long_texts``): vectors made one way beside vectors made the other would
  rank long chunks inconsistently, so a changed setting asks for a rebuild like a changed embedder.

Saving writes a new generation file (tmp, fsync, rename), then the manifest (tmp, fsync, rename):
the manifest rename is the single commit point, so a reader or a crash sees the old index or the
new one, never a mix. Old generation files are removed after the commit.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lorebase.errors import StoreError
from lorebase.index.atomic_files import fsync_dir, sha256_file, write_atomic
from lorebase.index.faiss_store import ChunkFaissStore
from lorebase.index.faiss_types import TRAINED_TYPES, keyed_by_id, new_faiss_index

if TYPE_CHECKING:
    from lorebase.settings import IndexSettings

log = logging.getLogger(__name__)

MANIFEST_NAME = "dense.json"
FORMAT_VERSION = 1
# An IVF index is retrained (new k-means lists, sized for the new count) once it holds this many
# times the vectors its lists were trained on: lists trained on a fraction of today's corpus
# grow unbalanced and slow, and miss its new topics.
IVF_RETRAIN_GROWTH = 2.0


class IndexDamaged(Exception):
    """The saved index cannot be trusted (missing, unreadable, checksum); the syncer rebuilds it."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Manifest:
    embedder: str
    dim: int
    count: int
    index_type: str
    file: str
    sha256: str
    created_at: str
    updated_at: str
    embed_dtype: str = "float32"
    deleted: list[int] = field(default_factory=list)
    trained_on: int = 0
    log_seq: int = 0
    format: int = FORMAT_VERSION
    embedder_path: str | None = None  # a tuned embedder's folder (None: the configured embedder)
    embedder_base: str | None = None  # the configured embedder it was tuned from
    long_texts: str = "truncate"  # index.embed_long_texts when embedded (older manifests: always truncate)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError) as e:
            raise IndexDamaged(f"manifest {path} is unreadable: {e}") from e

    def write(self, path: Path) -> None:
        write_atomic(path, (json.dumps(asdict(self), indent=2) + "\n").encode("utf-8"))


def long_texts_hint(directory: Path, built: str, wanted: str) -> str:
    return (
        f"the index in {directory} embedded long chunks with index.embed_long_texts {built!r}, but the setting is "
        f"now {wanted!r}: run `lorebase index rebuild` to re-embed everything that way, or set it back to {built!r}"
    )


def rebuild_hint(directory: Path, built: str, built_dim: int, wanted: str, wanted_dim: int) -> str:
    return (
        f"the index in {directory} was built with embedder {built!r} (dim {built_dim}), but the configured embedder "
        f"is {wanted!r} (dim {wanted_dim}): run `lorebase index rebuild` to re-embed everything with it"
    )


class DenseIndex:
    """The persisted dense index of one directory, for one embedder (name and dim)."""

    def __init__(self, directory: Path, settings: IndexSettings, embedder_name: str, dim: int, embed_dtype: str = "float32",
                 long_texts: str = "truncate") -> None:
        self.directory = Path(directory)
        self.settings = settings
        self.embedder_name = embedder_name
        self.dim = dim
        self.embed_dtype = embed_dtype
        self.long_texts = long_texts
        self.lock = threading.RLock()
        self.store: ChunkFaissStore = self.new_store("flat")
        self.manifest: Manifest | None = None
        # Written into the manifest: set for an index embedded by a tuned embedder.
        self.embedder_path: str | None = None
        self.embedder_base: str | None = None
        # Called with a loaded manifest that names another embedder with its folder (a swap by
        # another process): switches the owner's embedder, or raises. Unset: such a manifest is an error.
        self.on_switch: Callable[[Manifest], None] | None = None
        self.generation = 0  # counts embedder switches: a query embedded before one must not search after it
        self._stamp: tuple[int, int, int] | None = None
        # The last change-log entry applied (lorebase.store.change_log); moves with the store under the lock.
        self.log_seq = 0
        # Set by IndexSyncer.open once the saved index was loaded and checked against the store.
        self.verified = False

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_NAME

    def new_store(self, index_type: str) -> ChunkFaissStore:
        """An empty store (``flat`` or ``hnsw``; an IVF store comes from ``converted``, which trains it)."""
        s = self.settings
        return ChunkFaissStore(
            new_faiss_index(self.dim, index_type, s.hnsw_m, s.hnsw_ef_construction),
            ef_search=s.hnsw_ef_search,
            m=s.hnsw_m,
            ef_construction=s.hnsw_ef_construction,
            probe_share=s.ivf_probe_share,
            refine_factor=s.ivf_refine_factor,
        )

    @property
    def count(self) -> int:
        return self.store.count

    @property
    def index_type(self) -> str:
        return self.store.index_type

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load(self) -> None:
        """Load the saved index. StoreError when it belongs to another embedder or was embedded with
        another ``index.embed_long_texts``; IndexDamaged when broken."""
        import faiss

        with self.lock:
            stamp = self.manifest_stamp()
            if stamp is None:
                raise IndexDamaged(f"no index manifest in {self.directory}")
            m = Manifest.read(self.manifest_path)
            switch = m.embedder != self.embedder_name or m.dim != self.dim
            if switch and (self.on_switch is None or not m.embedder_path):
                raise StoreError(rebuild_hint(self.directory, m.embedder, m.dim, self.embedder_name, self.dim))
            if m.long_texts != self.long_texts:
                raise StoreError(long_texts_hint(self.directory, m.long_texts, self.long_texts))
            path = self.directory / m.file
            if not path.is_file():
                raise IndexDamaged(f"index file {path} is missing")
            digest = sha256_file(path)
            if digest != m.sha256:
                raise IndexDamaged(f"index file {path} does not match its manifest checksum")
            try:
                index = faiss.read_index(str(path))
            except RuntimeError as e:
                raise IndexDamaged(f"index file {path} is unreadable: {e}") from e
            if index.d != m.dim or not keyed_by_id(index):
                raise IndexDamaged(f"index file {path} is not an index keyed by chunk id of dim {m.dim}")
            s = self.settings
            store = ChunkFaissStore(
                index, deleted=set(m.deleted), ef_search=s.hnsw_ef_search, m=s.hnsw_m, ef_construction=s.hnsw_ef_construction,
                probe_share=s.ivf_probe_share, refine_factor=s.ivf_refine_factor, trained_on=m.trained_on,
            )  # fmt: skip
            if store.count != m.count:
                raise IndexDamaged(f"index file {path} holds {store.count} vectors, its manifest says {m.count}")
            if switch:
                assert self.on_switch is not None
                self.on_switch(m)  # the embedder first: a search never pairs the new vectors with the old model
                self.embedder_name, self.dim, self.generation = m.embedder, m.dim, self.generation + 1
            self.embedder_path, self.embedder_base = m.embedder_path, m.embedder_base
            self.store, self.manifest, self._stamp, self.log_seq = store, m, stamp, m.log_seq

    def reload_if_changed(self) -> bool:
        """Pick up an index saved by another process (e.g. a sync run by the scheduler)."""
        stamp = self.manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        try:
            self.load()
        except IndexDamaged as e:  # a save raced with our read; the next search tries again
            log.warning("could not reload the dense index yet: %s", e)
            return False
        return True

    def reset(self) -> None:
        """Forget everything in memory (not on disk): an empty exact index."""
        with self.lock:
            self.store = self.new_store("flat")
            self.manifest = None
            self.log_seq = 0

    def adopt(self, store: ChunkFaissStore) -> None:
        """Swap in a complete store built elsewhere (a rebuild): searches move over in one step."""
        with self.lock:
            self.store = store

    def fit_type(self) -> None:
        """Exact search up to ``exact_max_vectors``, ``ann_index`` beyond; back to exact below half of it.

        An IVF index is also retrained once it has grown ``IVF_RETRAIN_GROWTH`` times past the
        count it was trained on. A conversion (minutes at a million vectors) only reads the
        current store, so it runs outside the lock and searches go on; the new store is swapped
        in at the end. Writers are one at a time (the syncer's file lock).
        """
        with self.lock:
            store = self.store
        new = fitted(store, self.settings)
        if new is not store:
            with self.lock:
                self.store = new

    def scores_of(self, vec: np.ndarray, ids: list[int]) -> dict[int, float]:
        """Inner product of ``vec`` with the stored vector of each live id in ``ids`` (others left out)."""
        with self.lock:
            live = self.store.live_among(np.asarray(ids, dtype=np.int64))
            if live.size == 0:
                return {}
            scores = self.store.vectors(live) @ np.asarray(vec, dtype=np.float32).reshape(-1)
        return {int(i): float(x) for i, x in zip(live, scores, strict=True)}

    def save(self, directory: Path | None = None) -> Manifest:
        """Persist atomically into ``directory`` (default: our own). Returns the committed manifest.

        Writing only reads the index, so searches go on meanwhile; writers are already one at a
        time (IndexSyncer's file lock).
        """
        directory = Path(directory or self.directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            store, previous, log_seq = self.store, self.manifest, self.log_seq
        name = f"dense-{uuid.uuid4().hex[:12]}.faiss"
        path = directory / name
        store.persist(str(path))
        now = _now()
        m = Manifest(
            embedder=self.embedder_name,
            dim=self.dim,
            count=store.count,
            index_type=store.index_type,
            file=name,
            sha256=sha256_file(path),
            created_at=previous.created_at if previous is not None else now,
            updated_at=now,
            embed_dtype=self.embed_dtype,
            deleted=sorted(store.deleted),
            trained_on=store.trained_on,
            log_seq=log_seq,
            embedder_path=self.embedder_path,
            embedder_base=self.embedder_base,
            long_texts=self.long_texts,
        )
        m.write(directory / MANIFEST_NAME)
        remove_stale_files(directory, keep=name)
        if directory == self.directory:
            with self.lock:
                self.manifest, self._stamp = m, self.manifest_stamp()
        return m

    def install(self, built_dir: Path) -> None:
        """Move an index saved in ``built_dir`` (same filesystem) into our directory, atomically."""
        m = Manifest.read(built_dir / MANIFEST_NAME)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.replace(built_dir / m.file, self.directory / m.file)
        fsync_dir(self.directory)
        m.write(self.manifest_path)
        remove_stale_files(self.directory, keep=m.file)
        with self.lock:
            self.manifest, self._stamp, self.log_seq = m, self.manifest_stamp(), m.log_seq

    def search(self, vec: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        with self.lock:
            return self.store.search(vec, k, allowed)


def wanted_type(store: ChunkFaissStore, settings: IndexSettings) -> str:
    """The index type ``store`` should have for its size (with hysteresis: exact again only below half the limit)."""
    n, limit, kind = store.count, settings.exact_max_vectors, store.index_type
    if n > limit:
        return settings.ann_index
    if kind != "flat" and n > limit // 2:
        return kind
    return "flat"


def fitted(store: ChunkFaissStore, settings: IndexSettings) -> ChunkFaissStore:
    """``store`` itself, or a converted (or, for a grown IVF index, retrained) copy of it."""
    want = wanted_type(store, settings)
    retrain = (
        want == store.index_type and want in TRAINED_TYPES and store.count > IVF_RETRAIN_GROWTH * max(store.trained_on, 1)
    )
    if want == store.index_type and not retrain:
        return store
    log.info("dense index: %s -> %s at %d vectors%s", store.index_type, want, store.count, " (retraining)" if retrain else "")
    return store.converted(want, nlist=settings.ivf_nlist or None)


def remove_stale_files(directory: Path, keep: str) -> None:
    for p in directory.glob("dense-*.faiss*"):
        if p.name != keep:
            p.unlink(missing_ok=True)
