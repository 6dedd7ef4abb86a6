"""Keeping a dense index in step with the store, crash-consistently, on one host or many.

Every chunk added to or removed from the store is logged, in the same transaction, in the ordered
change log (``IndexChange``, written by triggers). Each index remembers, in its manifest, the last
log entry it reflects (``log_seq``), so any number of replicas, each with its own index, follow
the one store: nothing one replica does (clearing a tombstone, marking a chunk indexed) can make
another miss a change. The store also keeps two hints for the single-host case: new chunks are
written ``indexed=False`` and deleted chunk ids get an ``IndexTombstone``.

``IndexSyncer.sync`` then, round by round,

1. plans: the log entries after ``log_seq`` folded into chunks to remove and chunks to add, plus
   any chunk still ``indexed=False`` and any tombstone (work no syncer has confirmed yet),
2. removes the removed ids from FAISS, removes then adds the chunks to add (so re-applying a
   round, after a crash or on another replica, replaces vectors instead of duplicating them),
3. saves the index atomically with its new ``log_seq``,
4. marks those chunks indexed and deletes those tombstones, in one transaction.

A crash after step 3 leaves nothing undone for this index (steps 1-2 repeat harmlessly on the
hints). Only ids read at the start are touched in step 4: chunks or tombstones that ingest writes
meanwhile wait for the next round. A file lock keeps two processes of one host from syncing one
index directory at once. A cold index (none saved, or one behind the pruned part of the log) is
built from the store, at the log position read before the chunks, and follows the log from there.

A joined transcript window (``Chunk.joins``) is not embedded from its text, which would be cut at
the embedder's token limit: its vector is the normalised sum of the vectors of the chunks it
joins, so it covers all of them. Those chunks have lower ids (they are stored first), so they
are embedded in the same round or are already in the index.
"""

from __future__ import annotations

import fcntl
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, func, select, update

from lorebase.errors import StoreError
from lorebase.index.dense import DenseIndex, IndexDamaged, Manifest, fitted, rebuild_hint
from lorebase.index.sync_plan import Plan, batches, parts_of, read_plan
from lorebase.index.texts import indexed_text
from lorebase.progress import Progress
from lorebase.store import change_log
from lorebase.store.models import Chunk, IndexTombstone, Source

if TYPE_CHECKING:
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.settings import Settings
    from lorebase.store import Store

log = logging.getLogger(__name__)

# Chunks embedded and saved per round: a crash loses at most one round of embedding work.
ROUND = 20_000


@dataclass
class SyncResult:
    added: int
    removed: int
    total: int
    rebuilt: bool = False
    reason: str | None = None


class IndexSyncer:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        embedder: LorebaseEmbedding,
        dense: DenseIndex | None = None,
        progress: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.dense = dense or DenseIndex(
            settings.index_dir, settings.index, embedder.model_name, embedder.dim, embed_dtype=embedder.dtype,
            long_texts=embedder.long_texts,
        )
        self.dense.on_switch = self._follow
        self.progress = progress

    def _follow(self, m: Manifest) -> None:
        """The saved index was swapped to another embedder (by another process): embed with it."""
        assert m.embedder_path is not None
        configured = self.settings.models.embedder
        if configured not in (m.embedder, m.embedder_base):  # the user configured another embedder since
            raise StoreError(rebuild_hint(self.dense.directory, m.embedder, m.dim, configured, self.embedder.dim))
        path = Path(m.embedder_path)
        if not path.is_dir():
            raise StoreError(f"the index in {self.dense.directory} was embedded by {m.embedder!r}, whose folder {path} "
                             "is gone: run `lorebase index rebuild --configured`")
        log.info("the index was swapped to the embedder %s: following", m.embedder)
        self.embedder.switch(path, m.embedder, m.embedder_base)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One syncer at a time across processes (the API's scheduler, a CLI run)."""
        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        with open(self.settings.index_dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- opening ---------------------------------------------------------------------------------

    def open(self) -> str | None:
        """Load the saved index; rebuild it from the store when damaged or stale.

        Returns why it was rebuilt, or None. An index made by another embedder raises StoreError
        (the fix, `lorebase index rebuild`, is the user's call: it re-embeds everything).
        """
        with self._exclusive():
            return self._open_locked()

    def _open_locked(self) -> str | None:
        reason = self._load_problem()
        if reason is None:
            reason = self._log_problem()
        if reason is None:
            reason = self._consistency_problem()
        if reason is not None:
            log.warning("rebuilding the dense index from the store: %s", reason)
            self._rebuild_locked()
        self.dense.verified = True
        return reason

    def _load_problem(self) -> str | None:
        if not self.dense.exists():
            with self.store.session() as s:
                indexed = s.scalar(select(func.count(Chunk.id)).where(Chunk.indexed.is_(True))) or 0
            self.dense.reset()
            # Nothing indexed anywhere yet: the empty index follows the log from its start.
            return f"no saved index, but {indexed} chunks are marked indexed" if indexed else None
        for attempt in range(2):
            before = self.dense.manifest_stamp()
            try:
                self.dense.load()
                return None
            except IndexDamaged as e:
                # A save by a process that holds no lock of ours (none should) may have raced the read.
                if attempt == 0 and self.dense.manifest_stamp() != before:
                    continue
                return str(e)
        return None

    def _log_problem(self) -> str | None:
        """An index whose position is older than the pruned part of the log may have missed a change."""
        with self.store.session() as s:
            pruned = change_log.pruned_through(s)
        if self.dense.log_seq < pruned:
            return (f"the index is at change {self.dense.log_seq}, and the change log keeps only changes after {pruned} "
                    "(index.change_log_max_entries, index.change_log_max_age_days)")
        return None

    def _consistency_problem(self) -> str | None:
        """Every indexed chunk must be in FAISS unless added after the index's log position (another
        replica indexed it first), and FAISS may hold nothing else but chunks still pending (a crash
        between save and commit), tombstoned ids, or ids removed after its position."""
        with self.store.session() as s:
            later_added, later_removed = change_log.changed_since(s, self.dense.log_seq)
            rows = s.execute(select(Chunk.id, Chunk.indexed)).all()
            tomb = s.scalars(select(IndexTombstone.chunk_id)).all()
        indexed = np.asarray([i for i, ok in rows if ok and i not in later_added], dtype=np.int64)
        known = np.asarray([i for i, _ in rows] + list(tomb) + list(later_removed), dtype=np.int64)
        live = self.dense.store.live_ids()
        missing = np.setdiff1d(indexed, live)
        extra = np.setdiff1d(live, known)
        if missing.size or extra.size:
            return (
                f"the index holds {live.size} vectors for {indexed.size} indexed chunks: "
                f"{missing.size} indexed chunks are missing from it and {extra.size} vectors belong to no chunk"
            )
        return None

    # --- syncing ---------------------------------------------------------------------------------

    def plan(self, limit: int = ROUND) -> Plan:
        return read_plan(self.store, self.dense.log_seq, limit)

    def apply(self, plan: Plan, vectors: np.ndarray) -> int:
        """Steps 1-3: the index without the removed ids, with the chunks to add (replaced), saved
        at the plan's log position."""
        d = self.dense
        with d.lock:
            removed = d.store.remove_ids(plan.tombstones)
            d.store.remove_ids(plan.chunk_ids)
            if plan.chunk_ids:
                d.store.add_vectors(np.asarray(plan.chunk_ids, dtype=np.int64), vectors)
            d.log_seq = max(d.log_seq, plan.log_seq)
        d.fit_type()  # a conversion or retraining runs outside the lock: searches go on meanwhile
        d.save()
        return removed

    def commit(self, plan: Plan) -> None:
        """Step 4: the store records that the saved index now reflects the plan."""
        with self.store.session() as s:
            for batch in batches(plan.chunk_ids):
                s.execute(update(Chunk).where(Chunk.id.in_(batch)).values(indexed=True))
            for batch in batches(plan.tombstones):
                s.execute(delete(IndexTombstone).where(IndexTombstone.chunk_id.in_(batch)))

    def vectors(self, plan: Plan, stored: Any, bar: Any = None, embedder: LorebaseEmbedding | None = None) -> np.ndarray:
        """The vectors of ``plan.chunk_ids``: embedded from their texts, or for a joined window the
        normalised sum of its chunks' vectors, taken from this round or from ``stored`` (a store
        with ``vectors(ids)`` holding the chunks of earlier rounds)."""
        embedder = embedder or self.embedder
        own = [i for i, cid in enumerate(plan.chunk_ids) if cid not in plan.parts]
        out = np.zeros((len(plan.chunk_ids), embedder.dim), dtype=np.float32)
        out[own] = self.embed([plan.texts[i] for i in own], bar, embedder)
        if len(own) == len(plan.chunk_ids):
            return out
        row_of = {plan.chunk_ids[i]: i for i in own}
        for i, cid in enumerate(plan.chunk_ids):
            if cid in row_of:
                continue
            ids = plan.parts[cid]
            here = [row_of[p] for p in ids if p in row_of]
            earlier = np.asarray([p for p in ids if p not in row_of], dtype=np.int64)
            vecs = [out[here]] if here else []
            if earlier.size:
                vecs.append(stored.vectors(stored.live_among(earlier)))
            total = np.concatenate(vecs).sum(axis=0) if vecs else np.zeros(embedder.dim, dtype=np.float32)
            norm = float(np.linalg.norm(total))
            if norm == 0.0:  # its chunks are gone (a race with a delete): embed its own text instead
                total, norm = self.embed([plan.texts[i]], None, embedder)[0], 1.0
            out[i] = total / norm
            if bar is not None:
                bar.update(1)
        return out

    def embed(self, texts: list[str], bar: Any = None, embedder: LorebaseEmbedding | None = None) -> np.ndarray:
        """Vectors for ``texts``, in slices so sentence-transformers can sort each by length."""
        embedder = embedder or self.embedder
        step = self.settings.index.embed_batch_size * 16
        parts = []
        for i in range(0, len(texts), step):
            parts.append(embedder.embed(texts[i : i + step]))
            if bar is not None:
                bar.update(len(texts[i : i + step]))
        return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)

    def behind(self) -> bool:
        """Whether the log holds changes this index has not applied (a cheap check for followers)."""
        with self.store.session() as s:
            return change_log.last_seq(s) > self.dense.log_seq

    def sync(self) -> SyncResult:
        """Apply the log's new changes, and the store's pending chunks and tombstones, to the index."""
        added = removed = 0
        rebuilt, reason = False, None
        with self._exclusive():
            if not self.dense.verified:
                reason = self._open_locked()  # never save over an index we have not loaded
                rebuilt = reason is not None
            else:
                self.dense.reload_if_changed()
                reason = self._log_problem()  # fell behind the pruned log while running
                if reason is not None:
                    log.warning("rebuilding the dense index from the store: %s", reason)
                    self._rebuild_locked()
                    rebuilt = True
            with self.store.session() as s:
                pending = s.scalar(select(func.count(Chunk.id)).where(Chunk.indexed.is_(False))) or 0
            with Progress("embedding", "chunks", total=pending, bar=self.progress and pending > 0, log=log) as bar:
                while True:
                    plan = self.plan()
                    if plan.empty:
                        break
                    vectors = self.vectors(plan, self.dense.store, bar)
                    removed += self.apply(plan, vectors)
                    self.commit(plan)
                    added += len(plan.chunk_ids)
            self._prune()
        return SyncResult(added=added, removed=removed, total=self.dense.count, rebuilt=rebuilt, reason=reason)

    def _prune(self) -> None:
        cfg = self.settings.index
        try:
            gone = change_log.prune(self.store, cfg.change_log_max_entries, cfg.change_log_max_age_days)
        except Exception as e:  # pruning is housekeeping: another replica will do it next time
            log.warning("could not prune the index change log: %s", e)
            return
        if gone:
            log.info("pruned %d old index change-log entries", gone)

    # --- rebuilding ------------------------------------------------------------------------------

    def rebuild(self, embedder: LorebaseEmbedding | None = None) -> SyncResult:
        """Re-embed every chunk into a new index, then swap it in; the old one serves until then.

        With ``embedder`` (a tuned embedder, or the configured one to go back to it) the new index
        is embedded by it, and the swap moves this process, and every process that reloads the
        index, over to it: the manifest's rename is the one commit point for index and embedder."""
        with self._exclusive():
            return self._rebuild_locked(embedder)

    def _rebuild_locked(self, embedder: LorebaseEmbedding | None = None) -> SyncResult:
        emb = embedder or self.embedder
        with self.store.session() as s:
            # The log position first: a change that commits after it is applied again by the next
            # sync (harmless: adds replace, removes of absent ids do nothing); none can slip between.
            at = change_log.last_seq(s)
            tomb = list(s.scalars(select(IndexTombstone.chunk_id)))
            ids = list(s.scalars(select(Chunk.id).order_by(Chunk.id)))
        d = self.dense
        # Exact first, converted at the end if the count calls for it: an IVF index must be trained
        # before it takes vectors, and one HNSW build from all vectors costs no more than adding in rounds.
        fresh = DenseIndex(d.directory, self.settings.index, emb.model_name, emb.dim).new_store("flat")
        with Progress("embedding", "chunks", total=len(ids), bar=self.progress and bool(ids), log=log) as bar:
            for batch in batches(ids, ROUND):
                with self.store.session() as s:
                    rows = s.execute(
                        select(Chunk.id, Chunk.text, Source.title, Chunk.meta, Chunk.source_id)
                        .join(Source, Chunk.source_id == Source.id)
                        .where(Chunk.id.between(batch[0], batch[-1]))  # a newcomer in range is in the log after `at` too
                        .order_by(Chunk.id)
                    ).all()
                    parts = parts_of(s, rows)
                if not rows:
                    continue
                plan = Plan([], [r[0] for r in rows], [indexed_text(r[2], r[1]) for r in rows], parts=parts)
                fresh.add_vectors(np.asarray(plan.chunk_ids, dtype=np.int64), self.vectors(plan, fresh, bar, emb))
        fresh = fitted(fresh, self.settings.index)
        built_dir = self.settings.index_dir / f".rebuild-{uuid.uuid4().hex[:8]}"
        try:
            staging = DenseIndex(built_dir, self.settings.index, emb.model_name, emb.dim, embed_dtype=emb.dtype,
                                 long_texts=emb.long_texts)
            staging.embedder_path, staging.embedder_base = emb.path, emb.base
            staging.adopt(fresh)
            staging.log_seq = at
            staging.save()
            with d.lock:
                d.install(built_dir)  # the commit point
                if emb is not self.embedder:
                    self.embedder.switch(emb.path, emb.model_name, emb.base)
                if (d.embedder_name, d.dim) != (emb.model_name, emb.dim):
                    d.generation += 1
                d.embedder_name, d.dim, d.embed_dtype, d.long_texts = emb.model_name, emb.dim, emb.dtype, emb.long_texts
                d.embedder_path, d.embedder_base = emb.path, emb.base
                d.adopt(fresh)
        finally:
            shutil.rmtree(built_dir, ignore_errors=True)
        with self.store.session() as s:
            for batch in batches(ids):
                s.execute(update(Chunk).where(Chunk.id.in_(batch)).values(indexed=True))
            for batch in batches(tomb):
                s.execute(delete(IndexTombstone).where(IndexTombstone.chunk_id.in_(batch)))
        d.verified = True
        log.info("dense index rebuilt: %d vectors (%s) with %s", fresh.count, fresh.index_type, emb.model_name)
        return SyncResult(added=fresh.count, removed=0, total=fresh.count, rebuilt=True)

    # --- reporting -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self.store.session() as s:
            pending = s.scalar(select(func.count(Chunk.id)).where(Chunk.indexed.is_(False))) or 0
            tombstones = s.scalar(select(func.count()).select_from(IndexTombstone)) or 0
            chunks = s.scalar(select(func.count(Chunk.id))) or 0
            last = change_log.last_seq(s)
        m = self.dense.manifest
        return {
            "directory": str(self.dense.directory),
            "embedder": self.dense.embedder_name,
            "dim": self.dense.dim,
            "embed_dtype": self.dense.embed_dtype,
            "long_texts": self.dense.long_texts,
            "index_type": self.dense.index_type,
            "count": self.dense.count,
            "chunks": chunks,
            "pending": pending,
            "tombstones": tombstones,
            "log_seq": self.dense.log_seq,
            "log_behind": max(0, last - self.dense.log_seq),
            "file": m.file if m else None,
            "created_at": m.created_at if m else None,
            "updated_at": m.updated_at if m else None,
        }
