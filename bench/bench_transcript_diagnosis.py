"""Why lorebase's transcript retrieval trails a naive 60-second BM25: one cause at a time.

In memory, on the QMSum dev meetings (bench/build_evalsets.py), without a store: each variant
changes one thing (how the transcript is cut, what text a window carries, the BM25 tokenizer,
the fusion) and is scored like `lorebase eval retrieval` (a window is a hit when it overlaps a
gold span), searching within the question's meeting (QMSum's task) and across all meetings.

    .venv/bin/python bench/bench_transcript_diagnosis.py [--evaldata .evaldata] [--json out.json]

Dense embeddings are computed once per distinct window text (MiniLM, the default embedder).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lorebase.ingest.transcripts.chunks import chunk_segments  # noqa: E402
from lorebase.ingest.transcripts.formats import parse_transcript  # noqa: E402
from lorebase.ingest.transcripts.segments import Segment  # noqa: E402


@dataclass
class Window:
    meeting: str
    start: float
    end: float
    text: str
    parts: tuple[str, ...] = ()  # a window of the second scale: the texts of the windows it joins


# --- windows ---------------------------------------------------------------------------------------


def fixed_windows(meeting: str, segs: list[Segment], size: float, labels: bool = True) -> list[Window]:
    """Segments grouped by start time into [k*size, (k+1)*size) bins: the naive baseline."""
    bins: dict[int, list[Segment]] = {}
    for s in segs:
        bins.setdefault(int(s.start // size), []).append(s)
    out = []
    for _, group in sorted(bins.items()):
        text = "\n".join(f"{s.speaker}: {s.text}" if labels and s.speaker else s.text for s in group)
        out.append(Window(meeting, group[0].start, group[-1].end, text))
    return out


def lorebase_windows(meeting: str, segs: list[Segment], lo: float = 45, hi: float = 90, labels: bool = True) -> list[Window]:
    return [Window(meeting, c.start_time or 0.0, c.end_time or 0.0, c.text) for c in chunk_segments(segs, min_s=lo, max_s=hi, label_speakers=labels)]


def merge_turns(segs: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for s in segs:
        if out and out[-1].speaker == s.speaker:
            out[-1] = Segment(out[-1].start, s.end, f"{out[-1].text} {s.text}", s.speaker)
        else:
            out.append(s)
    return out


def per_cue_labels(ws: list[Window], segs: dict[str, list[Segment]]) -> list[Window]:
    """The same windows, their text rebuilt with the speaker's name before every cue (so a name
    counts once per cue spoken, not once per turn)."""
    out = []
    for w in ws:
        inside = [s for s in segs[w.meeting] if w.start <= (s.start + s.end) / 2 < w.end]
        text = "\n".join(f"{s.speaker}: {s.text}" if s.speaker else s.text for s in inside) or w.text
        out.append(Window(w.meeting, w.start, w.end, text))
    return out


# --- tokenizers ------------------------------------------------------------------------------------


def plain_tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def code_tokens(text: str) -> list[str]:
    from lorebase.index.code_tokens import tokenize

    return tokenize(text)


_STEMMER = None


def stemmed(tokens: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    def f(text: str) -> list[str]:
        global _STEMMER
        if _STEMMER is None:
            import Stemmer

            _STEMMER = Stemmer.Stemmer("english")
        return _STEMMER.stemWords(tokens(text))

    return f


def no_stop(tokens: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    from lorebase.index.code_tokens import STOP_WORDS

    return lambda text: [t for t in tokens(text) if t not in STOP_WORDS]


# --- retrieval -------------------------------------------------------------------------------------


class Bm25:
    def __init__(self, texts: list[str], tok: Callable[[str], list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        import bm25s

        self.tok = tok
        self.model = bm25s.BM25(k1=k1, b=b)
        self.model.index([tok(t) or ["_"] for t in texts], show_progress=False)
        self.vocab = self.model.vocab_dict

    def scores(self, q: str) -> np.ndarray:
        toks = [t for t in self.tok(q) if t in self.vocab]
        if not toks:
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(toks), dtype=np.float32)


_EMB_CACHE: dict[str, np.ndarray] = {}


def embed(texts: list[str]) -> np.ndarray:
    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.offline_models import embedder_path
    from lorebase.settings import Settings

    model = load_sentence_model(embedder_path(Settings()), resolve_dtype("auto"))  # as the index embeds
    todo = [t for t in dict.fromkeys(texts) if t not in _EMB_CACHE]
    if todo:
        vecs = model.encode(todo, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        for t, v in zip(todo, vecs, strict=True):
            _EMB_CACHE[t] = v.astype(np.float32)
    return np.stack([_EMB_CACHE[t] for t in texts])


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def zscore(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / sd if sd > 0 else np.zeros_like(x)


# --- scoring ---------------------------------------------------------------------------------------


def overlaps(w: Window, meeting: str, spans: list[list[float]]) -> bool:
    return w.meeting == meeting and any(w.start < e and s < w.end for s, e in spans)


def evaluate(windows: list[Window], questions: list[dict], rank: Callable[[str, np.ndarray], np.ndarray], within: bool) -> dict:
    hits1 = hits5 = rr = 0.0
    span = []
    firsts: dict[int, int] = {}
    meetings = np.asarray([w.meeting for w in windows])
    for q in questions:
        allowed = meetings == q["meeting"] if within else np.ones(len(windows), dtype=bool)
        order = rank(q["question"], allowed)
        kept: list[int] = []
        for i in order:
            w = windows[i]
            if not any(windows[j].meeting == w.meeting and windows[j].start < w.end and w.start < windows[j].end for j in kept):
                kept.append(int(i))
            if len(kept) == 10:
                break
        order = np.asarray(kept, dtype=np.int64)
        top = [windows[i] for i in order[:10]]
        if len(order):
            firsts[int(order[0])] = firsts.get(int(order[0]), 0) + 1
        rel = [overlaps(w, q["meeting"], q["gold_spans"]) for w in top]
        hits1 += rel[0] if rel else 0
        hits5 += any(rel[:5])
        first = next((i for i, r in enumerate(rel) if r), None)
        rr += 1 / (first + 1) if first is not None else 0
        span += [w.end - w.start for w in top[:5]]
    n = len(questions)
    return {"hit@1": round(hits1 / n, 3), "hit@5": round(hits5 / n, 3), "mrr": round(rr / n, 3), "span_s": round(float(np.median(span)), 1),
            "hub": max(firsts.values()) if firsts else 0}


def neighbours(windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the previous and next window of the same meeting (itself at the ends)."""
    n = len(windows)
    prev, nxt = np.arange(n), np.arange(n)
    for i in range(1, n):
        if windows[i].meeting == windows[i - 1].meeting:
            prev[i], nxt[i - 1] = i - 1, i
    return prev, nxt


def smooth(x: np.ndarray, prev: np.ndarray, nxt: np.ndarray, alpha: float) -> np.ndarray:
    """A window's score plus ``alpha`` times its better neighbour's: a passage in the middle of a
    discussion of the topic beats an isolated mention."""
    if alpha == 0:
        return x
    return x + alpha * np.maximum(x[prev], x[nxt])


def ranker(windows: list[Window], mode: str, tok: Callable[[str], list[str]] = plain_tokens, dense_weight: float = 0.5,
           norm: Callable[[np.ndarray], np.ndarray] = minmax, candidates: int = 40,
           alpha: float = 0.0, compose: bool = False) -> Callable[[str, np.ndarray], np.ndarray]:
    texts = [w.text for w in windows]
    bm = Bm25(texts, tok) if mode in ("bm25", "hybrid", "rrf") else None
    vecs = None
    if mode in ("dense", "hybrid", "rrf"):
        if compose:  # a joined window's vector: the normalised mean of its parts' vectors
            vecs = np.stack([embed(list(w.parts)).sum(0) if w.parts else embed([w.text])[0] for w in windows])
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        else:
            vecs = embed(texts)
    prev, nxt = neighbours(windows)

    def rank(q: str, allowed: np.ndarray) -> np.ndarray:
        idx = np.flatnonzero(allowed)
        if mode == "bm25":
            s = smooth(bm.scores(q), prev, nxt, alpha)[idx]
            return idx[np.argsort(-s, kind="stable")]
        dv = smooth(vecs @ embed([q])[0], prev, nxt, alpha)[idx]
        if mode == "dense":
            return idx[np.argsort(-dv, kind="stable")]
        bs = smooth(bm.scores(q), prev, nxt, alpha)[idx]
        # As lorebase: candidates from each list, then fuse over their union.
        cand = np.union1d(np.argsort(-dv)[:candidates], np.argsort(-bs)[:candidates])
        if mode == "rrf":
            rd = {c: r for r, c in enumerate(np.argsort(-dv), 1)}
            rb = {c: r for r, c in enumerate(np.argsort(-bs), 1)}
            f = np.asarray([dense_weight / (60 + rd[c]) + (1 - dense_weight) / (60 + rb[c]) for c in cand])
        else:
            f = dense_weight * norm(dv[cand]) + (1 - dense_weight) * norm(bs[cand])
        return idx[cand[np.argsort(-f, kind="stable")]]

    return rank


LEVELS = ((20, 40), (30, 60), (45, 90))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tuning", action="store_true",
                    help="score on the tuning meetings (.evaldata/tuning-meetings, qmsum-tuning.jsonl) instead of the dev set")
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", help="run only variants whose name contains this")
    ap.add_argument("--turn-cues", action="store_true", help="merge each speaker turn into one segment (an SRT with one cue per turn)")
    args = ap.parse_args(argv)

    qfile = args.evaldata / "qmsum-tuning.jsonl" if args.tuning else ROOT / "datasets/eval/qmsum-dev.jsonl"
    folder = args.evaldata / ("tuning-meetings" if args.tuning else "meetings")
    questions = [json.loads(x) for x in qfile.read_text().splitlines() if x.strip()]
    segs = {p.stem: parse_transcript(p.read_text(encoding="utf-8"), ".srt").segments for p in sorted(folder.glob("*.srt"))}
    if args.turn_cues:
        segs = {m: merge_turns(s) for m, s in segs.items()}

    def build(fn: Callable[..., list[Window]], **kw) -> list[Window]:
        return [w for m, s in segs.items() for w in fn(m, s, **kw)]

    fixed60 = build(fixed_windows, size=60)
    lb = build(lorebase_windows)
    def pairs(ws: list[Window], scales: int = 2) -> list[Window]:
        """Each run of 2..``scales`` consecutive windows of a meeting as one more window (as ingest's joined_windows)."""
        out = list(ws)
        for k in range(2, scales + 1):
            for i in range(len(ws) - k + 1):
                group = ws[i : i + k]
                if len({w.meeting for w in group}) == 1:
                    out.append(Window(group[0].meeting, group[0].start, group[-1].end, "\n".join(w.text for w in group),
                                      tuple(w.text for w in group)))
        return sorted(out, key=lambda w: (w.meeting, w.start, w.end))

    stem = stemmed(no_stop(plain_tokens))
    variants: list[tuple[str, list[Window], str, dict]] = []
    for lo, hi in LEVELS:
        base = build(lorebase_windows, lo=lo, hi=hi)
        variants += [
            (f"sent {lo}-{hi} bm25 stem", base, "bm25", {"tok": stem}),
            (f"sent {lo}-{hi} bm25 stem smooth0.5", base, "bm25", {"tok": stem, "alpha": 0.5}),
            (f"sent {lo}-{hi} bm25 stem smooth1", base, "bm25", {"tok": stem, "alpha": 1.0}),
            (f"sent {lo}-{hi}+pairs bm25 stem", pairs(base), "bm25", {"tok": stem}),
            (f"sent {lo}-{hi} dense", base, "dense", {}),
            (f"sent {lo}-{hi} dense smooth0.5", base, "dense", {"alpha": 0.5}),
            (f"sent {lo}-{hi}+pairs dense", pairs(base), "dense", {}),
            (f"sent {lo}-{hi} hybrid stem", base, "hybrid", {"tok": stem}),
            (f"sent {lo}-{hi} hybrid stem smooth0.5", base, "hybrid", {"tok": stem, "alpha": 0.5}),
            (f"sent {lo}-{hi}+pairs hybrid stem", pairs(base), "hybrid", {"tok": stem}),
            (f"sent {lo}-{hi}+pairs hybrid stem smooth0.5", pairs(base), "hybrid", {"tok": stem, "alpha": 0.5}),
        ]
    for lo, hi in LEVELS:
        base = per_cue_labels(build(lorebase_windows, lo=lo, hi=hi), segs)
        variants += [
            (f"sent {lo}-{hi} cue-labels bm25 stem", base, "bm25", {"tok": stem}),
            (f"sent {lo}-{hi}+pairs cue-labels bm25 stem", pairs(base), "bm25", {"tok": stem}),
        ]
    for lo, hi in LEVELS:
        base = build(lorebase_windows, lo=lo, hi=hi)
        variants += [
            (f"sent {lo}-{hi} D dense", base, "dense", {}),
            (f"sent {lo}-{hi}+pairs D dense mean", pairs(base), "dense", {"compose": True}),
            (f"sent {lo}-{hi} D hybrid stem", base, "hybrid", {"tok": stem}),
            (f"sent {lo}-{hi}+pairs D hybrid stem mean", pairs(base), "hybrid", {"tok": stem, "compose": True}),
            (f"sent {lo}-{hi}+pairs D hybrid stem mean w0.3", pairs(base), "hybrid", {"tok": stem, "compose": True, "dense_weight": 0.3}),
            (f"sent {lo}-{hi}+pairs D rrf stem mean", pairs(base), "rrf", {"tok": stem, "compose": True}),
            (f"sent {lo}-{hi}+3 D hybrid stem mean", pairs(base, 3), "hybrid", {"tok": stem, "compose": True}),
            (f"sent {lo}-{hi}+3 D hybrid stem mean w0.3", pairs(base, 3), "hybrid", {"tok": stem, "compose": True, "dense_weight": 0.3}),
            (f"sent {lo}-{hi}+3 bm25 stem", pairs(base, 3), "bm25", {"tok": stem}),
        ]
    for size in (45, 60, 90):
        base = build(fixed_windows, size=size)
        variants += [
            (f"{size}s+pairs bm25 stem", pairs(base), "bm25", {"tok": stem}),
            (f"{size}s+pairs hybrid stem", pairs(base), "hybrid", {"tok": stem}),
        ]
    variants += [
        ("naive 60s bm25 plain", fixed60, "bm25", {}),
        ("naive 60s dense", fixed60, "dense", {}),
        ("lorebase 45-90 bm25 code-tokens", lb, "bm25", {"tok": code_tokens}),
        ("lorebase 45-90 dense", lb, "dense", {}),
        ("lorebase 45-90 hybrid minmax", lb, "hybrid", {"tok": code_tokens}),
        ("lorebase 45-90 bm25 plain", lb, "bm25", {}),
        ("60s bm25 code-tokens", fixed60, "bm25", {"tok": code_tokens}),
        ("60s bm25 plain+stem", fixed60, "bm25", {"tok": stemmed(plain_tokens)}),
        ("60s bm25 plain-stop+stem", fixed60, "bm25", {"tok": stemmed(no_stop(plain_tokens))}),
    ]
    for size in (30, 45, 90, 120):
        variants.append((f"{size}s bm25 plain", build(fixed_windows, size=size), "bm25", {}))
    variants += [
        ("60s bm25 plain no-labels", build(fixed_windows, size=60, labels=False), "bm25", {}),
        ("60s hybrid minmax plain", fixed60, "hybrid", {}),
        ("60s hybrid minmax plain+stem", fixed60, "hybrid", {"tok": stemmed(no_stop(plain_tokens))}),
        ("60s hybrid zscore plain+stem", fixed60, "hybrid", {"tok": stemmed(no_stop(plain_tokens)), "norm": zscore}),
        ("60s rrf plain+stem", fixed60, "rrf", {"tok": stemmed(no_stop(plain_tokens))}),
    ]
    rows = []
    for name, wins, mode, kw in variants:
        if args.only and args.only not in name:
            continue
        t0 = time.monotonic()
        rank = ranker(wins, mode, **kw)
        row = {"variant": name, "windows": len(wins)}
        for within in (True, False):
            r = evaluate(wins, questions, rank, within)
            row.update({f"{'in' if within else 'all'} {k}": v for k, v in r.items()})
        row["s"] = round(time.monotonic() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
