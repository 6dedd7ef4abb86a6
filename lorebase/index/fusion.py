"""Fusing the dense and BM25 candidate lists into one ranking.

Two methods:

- ``convex`` (the default): each candidate (the union of both lists) is scored by *both*
  retrievers exactly, each retriever's scores are min-max normalised over the candidates, and
  the fused score is ``w * dense + (1 - w) * bm25``. Scoring every candidate with both (rather
  than giving a candidate missing from one list a floor) keeps a chunk that one retriever ranks
  first and the other ranks 41st from falling behind chunks both rank mediocrely. Convex
  combination is the fusion that Bruch et al. (2023, "An Analysis of Fusion Functions for
  Hybrid Retrieval") found ahead of RRF in and out of domain.
- ``rrf``: weighted reciprocal rank fusion (Cormack et al., 2009): the sum over lists of
  ``2 * weight / (k + rank)``, ranks from 1; ``weight`` 0.5 for both lists is classic RRF.
  Only ranks matter, so it needs no score at all for candidates missing from a list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def reciprocal_rank_fusion(
    ranked: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """(id, fused score) best first; ties keep the order of first appearance across the lists."""
    weights = [0.5] * len(ranked) if weights is None else list(weights)
    if len(weights) != len(ranked):
        raise ValueError("one weight per ranked list")
    scores: dict[int, float] = {}
    for ids, w in zip(ranked, weights, strict=True):
        for rank, i in enumerate(ids, start=1):
            scores[i] = scores.get(i, 0.0) + 2.0 * w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def _min_max(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 0.0:
        return np.zeros_like(values)  # no spread: this retriever cannot tell the candidates apart
    return (values - lo) / (hi - lo)


def convex_fusion(
    candidates: Sequence[int], dense: Mapping[int, float], bm25: Mapping[int, float], dense_weight: float = 0.5,
    extra: Mapping[int, float] | None = None,
) -> list[tuple[int, float]]:
    """(id, fused score) for ``candidates``, best first (ties keep candidate order).

    ``dense`` and ``bm25`` hold each retriever's score of (ideally) every candidate. A candidate
    a retriever has no score for (e.g. a chunk not embedded yet) gets that retriever's lowest
    candidate score. BM25 scores 0 where no query term occurs, which is its true score. The
    fused score is in [0, 1] plus ``extra`` (priors such as a file-level score), if given.
    """
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be in [0, 1], got {dense_weight}")
    ids = list(dict.fromkeys(candidates))
    if not ids:
        return []

    def column(scores: Mapping[int, float]) -> np.ndarray:
        known = [scores[i] for i in ids if i in scores]
        floor = min(known) if known else 0.0
        return np.asarray([scores.get(i, floor) for i in ids], dtype=np.float64)

    fused = dense_weight * _min_max(column(dense)) + (1.0 - dense_weight) * _min_max(column(bm25))
    if extra:
        fused = fused + np.asarray([extra.get(i, 0.0) for i in ids], dtype=np.float64)
    order = np.argsort(-fused, kind="stable")
    return [(ids[i], float(fused[i])) for i in order]
