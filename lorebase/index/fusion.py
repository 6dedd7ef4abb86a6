"""Reciprocal rank fusion of ranked candidate lists (Cormack et al., 2009).

score(d) = sum over lists of 1 / (k + rank of d in that list), ranks from 1. Only ranks matter,
so BM25 scores and cosine similarities need no calibration against each other.
"""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(ranked: Sequence[Sequence[int]], k: int = 60) -> list[tuple[int, float]]:
    """(id, fused score) best first; ties keep the order of first appearance across the lists."""
    scores: dict[int, float] = {}
    for ids in ranked:
        for rank, i in enumerate(ids, start=1):
            scores[i] = scores.get(i, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
