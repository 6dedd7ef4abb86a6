"""Naive transcript retrievers to measure lorebase against: the simplest thing that could work.

Fixed windows of ``size`` seconds (a segment belongs to the window its start falls in), each
window's text its cues as written ("Speaker: words"), searched by

- ``bm25``: textbook BM25 (bm25s, k1 1.5, b 0.75) over lowercased ``\\w+`` tokens, no stop words,
  no stemming;
- ``dense``: cosine similarity of sentence embeddings (the model given, MiniLM by default).

Nothing here is tuned: these rows are the bar lorebase has to clear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lorebase.ingest.transcripts.segments import Segment

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Window:
    lecture: str
    start: float
    end: float
    text: str


def fixed_windows(lecture: str, segments: Sequence[Segment], size: float = 60.0) -> list[Window]:
    """``segments`` grouped by start time into [k*size, (k+1)*size) windows."""
    if size <= 0:
        raise ValueError("size must be positive")
    bins: dict[int, list[Segment]] = {}
    for s in segments:
        bins.setdefault(int(s.start // size), []).append(s)
    out = []
    for _, group in sorted(bins.items()):
        text = "\n".join(f"{s.speaker}: {s.text}" if s.speaker else s.text for s in group)
        out.append(Window(lecture, group[0].start, max(s.end for s in group), text))
    return out


def plain_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class WindowRetriever:
    """A naive retriever over fixed windows: ``rank(question, lecture)`` best first."""

    def __init__(self, windows: list[Window], kind: str, embed: Callable[[list[str]], np.ndarray] | None = None) -> None:
        if kind not in ("bm25", "dense"):
            raise ValueError(f"kind is bm25 or dense, got {kind!r}")
        if kind == "dense" and embed is None:
            raise ValueError("a dense baseline needs an embedding function")
        self.windows = windows
        self.kind = kind
        self._embed = embed
        self._lectures = np.asarray([w.lecture for w in windows])
        self._bm25: Any = None
        self._vectors: np.ndarray | None = None
        if kind == "bm25":
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index([plain_tokens(w.text) or ["_"] for w in windows], show_progress=False)
        else:
            assert embed is not None
            self._vectors = embed([w.text for w in windows])

    def scores(self, question: str) -> np.ndarray:
        if self.kind == "bm25":
            vocab = self._bm25.vocab_dict
            tokens = [t for t in plain_tokens(question) if t in vocab]
            if not tokens:
                return np.zeros(len(self.windows), dtype=np.float32)
            return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        assert self._embed is not None and self._vectors is not None
        return self._vectors @ self._embed([question])[0]

    def rank(self, question: str, lecture: str | None = None, n: int = 10) -> list[Window]:
        """The top ``n`` windows, within ``lecture`` when given."""
        scores = self.scores(question)
        idx = np.arange(len(self.windows)) if lecture is None else np.flatnonzero(self._lectures == lecture)
        order = idx[np.argsort(-scores[idx], kind="stable")][:n]
        return [self.windows[i] for i in order]
