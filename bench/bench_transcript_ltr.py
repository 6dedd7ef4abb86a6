"""A learned linear ranker for meeting windows: which signals, together, beat the shipped fusion?

Each earlier transcript variant (neighbour smoothing, feedback, the best piece, time diversity) was
tried alone, on top of the shipped ranking, and none won on the tuning meetings. This bench puts
them side by side as features of one linear score and lets coordinate ascent choose the weights,
on the same candidates lorebase ranks (top 40 of each retriever, overlapping windows dropped):

- ``dense``, ``bm25``: the two retrievers' scores, min-max over the candidates (as shipped);
- ``speaker``: the named speakers' share of the window's words (as shipped);
- ``around``: the better fused score of the base windows just before and after (smoothing);
- ``cover``: the IDF-weighted share of the question's distinct terms the window holds;
- ``long``: 1 for a joined (longer) window, 0 for a base one;
- ``rm3``: the BM25 score of the first pass's 10 feedback terms, min-max over the candidates;
- ``piece``: the best piece's cosine (``--pieces WORDS``), min-max over the candidates.

The objective is hit@1 + hit@5 + MRR. On the tuning meetings (QMSum train) the weights are chosen
by 5-fold cross-validation grouped by meeting (each fold's questions ranked by weights chosen on the
other four), so the tuning row is an out-of-sample estimate; then the weights chosen on all of them
rank the dev meetings, never used for choosing:

    nice -n 19 .venv/bin/python bench/bench_transcript_ltr.py --evaldata .evaldata [--pieces 48]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_speaker_boost import MeetingSet, load_set  # noqa: E402
from bench_transcript_context import (  # noqa: E402
    feedback_scores,
    kept_windows,
    naive_scores,
    neighbours,
    piece_cosines,
    questions_of,
)

FEATURES = ("dense", "bm25", "speaker", "around", "cover", "long", "rm3", "piece")
SHIPPED = {"dense": 0.4, "bm25": 0.6, "speaker": 0.2}
GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass
class Ranked:
    """One question's candidates (global window indices), their features and which overlap the gold."""

    cand: np.ndarray
    x: np.ndarray  # (candidates, features)
    gold: np.ndarray  # bool per candidate
    meeting: str


def _norm(x: np.ndarray, cand: np.ndarray) -> np.ndarray:
    lo, hi = float(x[cand].min()), float(x[cand].max())
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(x, dtype=np.float64)


def prepare(m: MeetingSet, piece: np.ndarray | None) -> list[Ranked]:
    """Every question's candidates with their features."""
    ws, toks = m.ws, m.toks
    df = Counter(t for x in toks for t in set(x))
    n_docs = len(toks)

    def idf(t: str) -> float:
        return float(np.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)))

    prev, nxt = neighbours(ws, m.meetings)
    sets = [set(t) for t in toks]
    out: list[Ranked] = []
    for k, q in enumerate(questions_of(m)):
        cand = np.union1d(np.argsort(-q.d)[:40], np.argsort(-q.b)[:40])
        nd, nb = _norm(q.d, cand), _norm(q.b, cand)
        base = 0.4 * nd + 0.6 * nb + 0.2 * q.share
        local = {int(g): j for j, g in enumerate(q.idx)}
        around = np.array([max((base[local[int(n)]] for n in (prev[g], nxt[g]) if n >= 0), default=0.0) for g in q.idx])
        terms = set(q.q_tokens)
        total = sum(idf(t) for t in terms) or 1.0
        cover = np.array([sum(idf(t) for t in terms if t in sets[g]) / total for g in q.idx])
        long = np.array([0.0 if ws[g].joins is None else 1.0 for g in q.idx])
        # rm3: feedback terms from the first pass's top 3 windows, weighted by their fused score.
        first = kept_windows(ws, q.idx, np.where(np.isin(np.arange(q.idx.size), cand), base, -np.inf))[:3]
        rm3 = feedback_scores(m, df, q, first, {g: float(base[local[g]]) for g in first})
        cols = [nd, nb, q.share, around, cover, long, _norm(rm3, cand) if rm3 is not None else np.zeros(q.idx.size),
                _norm(piece[k][q.idx], cand) if piece is not None else np.zeros(q.idx.size)]
        x = np.stack(cols, 1)[cand]
        gold = np.array([any(ws[g].start < e and s < ws[g].end for s, e in q.row["gold_spans"]) for g in q.idx[cand]])
        out.append(Ranked(q.idx[cand], x, gold, q.row["meeting"]))
    return out


def evaluate(m: MeetingSet, qs: Sequence[Ranked], w: np.ndarray) -> dict[str, float]:
    """hit@1, hit@5 and MRR@10 of ranking ``qs`` by ``x @ w``, overlapping windows dropped."""
    h1 = h5 = rr = 0.0
    for q in qs:
        kept = kept_windows(m.ws, q.cand, q.x @ w)
        first = next((k for k, i in enumerate(kept) if q.gold[np.searchsorted(q.cand, i)]), None)
        h1 += first == 0
        h5 += first is not None and first < 5
        rr += 1 / (first + 1) if first is not None else 0.0
    n = max(len(qs), 1)
    return {"hit@1": round(h1 / n, 3), "hit@5": round(h5 / n, 3), "mrr": round(rr / n, 3)}


def objective(r: dict[str, float]) -> float:
    return r["hit@1"] + r["hit@5"] + r["mrr"]


def choose(m: MeetingSet, qs: Sequence[Ranked], use: Sequence[str], passes: int = 3) -> np.ndarray:
    """Coordinate ascent from the shipped weights over ``use``; bm25 stays 1 - dense as shipped, so the
    scale is fixed and every other weight is relative to the two retrievers'."""
    w = np.array([SHIPPED.get(f, 0.0) for f in FEATURES])
    best = objective(evaluate(m, qs, w))
    for _ in range(passes):
        moved = False
        for f in use:
            j = FEATURES.index(f)
            for v in GRID:
                trial = w.copy()
                trial[j] = v
                if f == "dense":
                    trial[FEATURES.index("bm25")] = 1 - v
                s = objective(evaluate(m, qs, trial))
                if s > best + 1e-9:
                    best, w, moved = s, trial, True
        if not moved:
            break
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lorebase-speaker-bench.npz"))
    ap.add_argument("--pieces", type=int, default=0, metavar="WORDS", help="add the best piece of WORDS words as a feature")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--use", default="dense,speaker,around,cover,long,rm3",
                    help="the features coordinate ascent may weigh (comma-separated; piece needs --pieces)")
    args = ap.parse_args(argv)
    use = [f for f in args.use.split(",") if f]
    unknown = [f for f in use if f not in FEATURES or f == "bm25"]
    if unknown or ("piece" in use and not args.pieces):
        ap.error(f"cannot weigh {unknown or ['piece']}: choose from {', '.join(f for f in FEATURES if f != 'bm25')}"
                 " (piece with --pieces)")
    cache_dev = args.cache.with_name(args.cache.stem + "-dev.npz")
    tune = load_set(args.evaldata, True, args.cache)
    dev = load_set(args.evaldata, False, cache_dev)
    tq = prepare(tune, piece_cosines(tune.ws, tune.qvecs, args.pieces, args.cache) if args.pieces else None)
    dq = prepare(dev, piece_cosines(dev.ws, dev.qvecs, args.pieces, cache_dev) if args.pieces else None)
    shipped = np.array([SHIPPED.get(f, 0.0) for f in FEATURES])
    print(json.dumps({"tuning questions": len(tq), "dev questions": len(dq), "features": use}), flush=True)
    for name, ms, tuning in (("tuning", tune, True), ("dev", dev, False)):
        print(json.dumps({"set": name, "row": "naive 60 s BM25", **naive_scores(args.evaldata, tuning, questions_of(ms))}),
              flush=True)

    # Cross-validation on the tuning meetings, grouped by meeting.
    meetings = sorted({q.meeting for q in tq})
    fold_of = {mt: k % args.folds for k, mt in enumerate(meetings)}
    cv: list[tuple[Ranked, np.ndarray]] = []
    for k in range(args.folds):
        train = [q for q in tq if fold_of[q.meeting] != k]
        w = choose(tune, train, use)
        print(json.dumps({"fold": k, "weights": dict(zip(FEATURES, np.round(w, 2).tolist(), strict=True))}), flush=True)
        cv.extend((q, w) for q in tq if fold_of[q.meeting] == k)
    held = [evaluate(tune, [q], w) for q, w in cv]
    pooled = {key: round(float(np.mean([h[key] for h in held])), 3) for key in ("hit@1", "hit@5", "mrr")}
    print(json.dumps({"set": "tuning", "row": "shipped", **evaluate(tune, tq, shipped)}), flush=True)
    print(json.dumps({"set": "tuning", "row": "learned, 5-fold by meeting", **pooled}), flush=True)

    w = choose(tune, tq, use)
    print(json.dumps({"weights (all tuning)": dict(zip(FEATURES, np.round(w, 2).tolist(), strict=True))}), flush=True)
    print(json.dumps({"set": "tuning", "row": "learned, in sample", **evaluate(tune, tq, w)}), flush=True)
    print(json.dumps({"set": "dev", "row": "shipped", **evaluate(dev, dq, shipped)}), flush=True)
    print(json.dumps({"set": "dev", "row": "learned on tuning", **evaluate(dev, dq, w)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
