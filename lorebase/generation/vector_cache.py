"""Vectors of evidence lines, kept between questions.

Choosing a source's evidence lines embeds every line of every retrieved chunk, once per question. The same
chunks come back again and again (follow-up questions about one meeting, several users on one repository,
sampled answers to one prompt), and on a small CPU that embedding competes with the generator for the same
cores. A bounded least-recently-used map from (embedder, text) to its unit vector keeps the work to the
lines not seen before. The embedder's name is part of the key, so a swapped-in tuned embedder never reads
another model's vectors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np


class VectorCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # evidence is chosen on worker threads, several questions at once
        self.hits = 0  # texts found, and texts embedded: what the cache saves, for benchmarks
        self.misses = 0

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, model: str, texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """``embed(texts)``, row for row, computing only the texts this model has not embedded lately."""
        if self.size <= 0 or not texts:
            self.misses += len(texts)
            return embed(texts)
        unique = list(dict.fromkeys(texts))
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for t in unique:
                v = self._vectors.get((model, t))
                if v is not None:
                    self._vectors.move_to_end((model, t))
                    found[t] = v
        missing = [t for t in unique if t not in found]
        if missing:
            new = embed(missing)
            with self._lock:
                for t, v in zip(missing, new, strict=True):
                    found[t] = self._vectors[(model, t)] = v.copy()  # its own row: a view would keep the whole batch alive
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        with self._lock:
            self.hits += len(unique) - len(missing)
            self.misses += len(missing)
        return np.stack([found[t] for t in texts])
