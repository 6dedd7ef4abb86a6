"""Near-duplicate questions, found with the embedder's cosine similarity.

Greedy and order-preserving: a question is dropped when it is at least ``threshold`` similar to a
question kept before it. Questions already in the store come first and are always kept, so a new
run never removes old pairs, it only declines to add copies of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # unit-length rows
_BLOCK = 512


def near_duplicates(questions: Sequence[str], embed: Embed, threshold: float, fixed: int = 0) -> list[tuple[int, int]]:
    """(dropped index, index of the kept question it repeats) for each near-duplicate among
    ``questions[fixed:]``; the first ``fixed`` questions are kept whatever they are."""
    if len(questions) <= fixed:
        return []
    vecs = np.asarray(embed(list(questions)), dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.maximum(norms, 1e-12)
    kept = list(range(fixed))
    dropped: list[tuple[int, int]] = []
    for i in range(fixed, len(questions)):
        if kept:
            best_sim, best_j = -1.0, -1
            for start in range(0, len(kept), _BLOCK):
                block = kept[start : start + _BLOCK]
                sims = vecs[block] @ vecs[i]
                j = int(np.argmax(sims))
                if float(sims[j]) > best_sim:
                    best_sim, best_j = float(sims[j]), block[j]
            if best_sim >= threshold:
                dropped.append((i, best_j))
                continue
        kept.append(i)
    return dropped
