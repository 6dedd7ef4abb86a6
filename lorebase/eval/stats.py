"""Small statistics over per-question scores: means that skip missing values, percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence


def present(values: Iterable[float | None]) -> list[float]:
    """The values that are numbers (None and NaN are "not scored")."""
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean(values: Iterable[float | None]) -> float | None:
    got = present(values)
    return round(sum(got) / len(got), 4) if got else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolating linearly between the closest ranks."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be from 0 to 100, got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def question_score(scores: Mapping[str, float | None], names: Iterable[str]) -> float | None:
    """One number per question for ranking the worst: the mean of its 0..1 scores."""
    return mean(scores.get(n) for n in names)
