"""Lexical retrieval: BM25 (bm25s) over the code-aware, stemmed tokens of every chunk in the store.

Kept in memory and rebuilt from the store when the store's chunk set has changed. Chunk ids
only grow (AUTOINCREMENT), so (count, largest id) changes whenever chunks are added or removed;
chunks are never edited in place (ingest replaces them with new rows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from lorebase.index.code_tokens import tokenize
from lorebase.index.texts import indexed_text
from lorebase.store.models import Chunk, Source

if TYPE_CHECKING:
    from lorebase.store import Store

log = logging.getLogger(__name__)


def store_signature(store: Store) -> tuple[int, int]:
    """(number of chunks, largest chunk id): changes with every insert or delete of chunks."""
    with store.session() as s:
        count, top = s.execute(select(func.count(Chunk.id), func.max(Chunk.id))).one()
    return int(count), int(top or 0)


class Bm25Index:
    """BM25 over all chunks of the store; ``search`` refreshes it first when the store changed."""

    def __init__(self, store: Store, stemmer: str | None = None) -> None:
        self.store = store
        self.stemmer = stemmer
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None
        # (chunk ids in document order, bm25s model or None, vocabulary): replaced whole, never edited,
        # so a search running during a rebuild sees one consistent version.
        self._state: tuple[np.ndarray, Any, dict[str, int]] = (np.zeros(0, dtype=np.int64), None, {})

    @property
    def size(self) -> int:
        return int(self._state[0].size)

    def refresh(self, force: bool = False) -> bool:
        """Rebuild from the store if it changed since the last build. True when rebuilt."""
        sig = store_signature(self.store)
        if not force and sig == self._signature:
            return False
        with self._lock:
            if not force and sig == self._signature:
                return False
            self._build(sig)
        return True

    def _build(self, sig: tuple[int, int]) -> None:
        import bm25s

        t0 = time.monotonic()
        with self.store.session() as s:
            rows = s.execute(
                select(Chunk.id, Chunk.text, Source.title).join(Source, Chunk.source_id == Source.id).order_by(Chunk.id)
            ).all()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        bm25 = None
        if rows:
            bm25 = bm25s.BM25()
            bm25.index([tokenize(indexed_text(r[2], r[1]), self.stemmer) for r in rows], show_progress=False)
        self._state = (ids, bm25, dict(bm25.vocab_dict) if bm25 is not None else {})
        self._signature = sig
        log.debug("bm25 index built over %d chunks in %.2f s", len(rows), time.monotonic() - t0)

    def search(self, query: str, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Up to ``n`` (chunk id, score) pairs with a positive score, best first, within ``allowed`` ids."""
        return self.search_scoring(query, n, allowed)[0]

    def search_scoring(
        self, query: str, n: int, allowed: np.ndarray | None = None, also: Iterable[int] = ()
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """``search``, plus the score of each chunk id in ``also`` (0 where no query term occurs;
        ids this index does not hold yet are left out). One scoring pass serves both."""
        self.refresh()
        ids, bm25, vocab = self._state
        if bm25 is None:
            return [], {}
        tokens = [t for t in tokenize(query, self.stemmer) if t in vocab]
        if not tokens:
            return [], {i: 0.0 for i in _held(ids, also)}
        mask = None
        if allowed is not None:
            mask = np.isin(ids, allowed).astype(np.float32)
        scores = np.asarray(bm25.get_scores(tokens, weight_mask=mask), dtype=np.float32)
        extra = {}
        for i in _held(ids, also):
            extra[i] = float(scores[np.searchsorted(ids, i)])
        if n <= 0:
            return [], extra
        positive = np.flatnonzero(scores > 0)
        if positive.size > n:
            positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
        order = positive[np.argsort(-scores[positive], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in order], extra


def _held(ids: np.ndarray, wanted: Iterable[int]) -> list[int]:
    """The ids of ``wanted`` present in the sorted array ``ids``."""
    want = np.asarray(list(wanted), dtype=np.int64)
    if want.size == 0 or ids.size == 0:
        return []
    pos = np.minimum(np.searchsorted(ids, want), ids.size - 1)
    return [int(i) for i in want[ids[pos] == want]]
