"""Transcript retrieval that looks beyond one window: neighbour smoothing and pseudo-relevance feedback.

A meeting question is often answered by a discussion that runs over several windows, while a window
that mentions a question word once, out of context, can outrank it. Three ideas, each on top of the
shipped ranking (convex fusion, dense weight 0.4, speaker share 0.2, lorebase's windows at three
scales, overlapping windows dropped; in memory, as ``bench_speaker_boost.py`` ranks):

- ``smooth A``: a window's fused score plus A times the better fused score of the two base windows
  just before and just after it (a discussion that goes on around a window lifts it);
- ``rm3 L``: BM25 pseudo-relevance feedback: the 10 terms most weighted in the top 3 windows of a
  first pass (term frequency share times the window's fused score; question terms left out) are
  scored as a second BM25 query, added with weight L to the first;
- ``rocchio B``: dense feedback: the question vector plus B times the mean vector of the first pass's
  top 3 windows.

With ``--diverse`` it spreads the top windows in time instead: the first stays, each next slot goes
to the best window left after a mark-down of X when it lies within GAP seconds of one placed.

With ``--pieces WORDS`` it ranks instead by the best piece (``maxpiece X``): the dense score becomes
(1 - X) times the window's cosine plus X times its best piece's (each base window cut into pieces of
WORDS words, stride half that; a joined window's best is its base windows' best), fused as shipped.

Choose on the tuning meetings (``--tuning``: QMSum train), then report the dev figure:

    nice -n 19 .venv/bin/python bench/bench_transcript_context.py --evaldata .evaldata --tuning
    nice -n 19 .venv/bin/python bench/bench_transcript_context.py --evaldata .evaldata

Embeddings are cached in --cache (shared with bench_speaker_boost.py's format).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_speaker_boost import MeetingSet, Win, load_set  # noqa: E402

from lorebase.index.code_tokens import tokenize  # noqa: E402
from lorebase.index.speakers import named_speakers  # noqa: E402


@dataclass
class Question:
    row: dict
    idx: np.ndarray  # global window indices of its meeting
    d: np.ndarray  # cosine of every window of the meeting
    b: np.ndarray  # BM25 of every window of the meeting
    share: np.ndarray  # the named speakers' share of each window's words (zeros when none named)
    q_tokens: list[str]
    qv: np.ndarray  # the question's vector


def fused_all(d: np.ndarray, b: np.ndarray, share: np.ndarray, dense_weight: float, speaker_weight: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """The fused score of every window, normalised over the candidates (top 40 of each retriever) as lorebase
    does, windows outside them clipped into the candidates' range; and the candidates."""
    cand = np.union1d(np.argsort(-d)[:40], np.argsort(-b)[:40])

    def norm(x: np.ndarray) -> np.ndarray:
        lo, hi = float(x[cand].min()), float(x[cand].max())
        return np.clip((x - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(x)

    return dense_weight * norm(d) + (1 - dense_weight) * norm(b) + speaker_weight * share, cand


def fused(d: np.ndarray, b: np.ndarray, share: np.ndarray, dense_weight: float, speaker_weight: float) -> np.ndarray:
    """``fused_all`` for ranking: only the candidates can be ranked (the rest score -inf)."""
    f, cand = fused_all(d, b, share, dense_weight, speaker_weight)
    out = np.full_like(f, -np.inf)
    out[cand] = f[cand]
    return out


def questions_of(m: MeetingSet) -> list[Question]:
    """Every question of the set with what ranking it needs: its meeting's windows, their cosine, BM25 and
    named-speaker share."""
    vocab = m.bm25.vocab_dict
    out: list[Question] = []
    for r, qv in zip(m.rows, m.qvecs, strict=True):
        idx = np.flatnonzero(m.meetings == r["meeting"])
        q_tokens = [t for t in tokenize(r["question"], "english") if t in vocab]
        b = np.asarray(m.bm25.get_scores(q_tokens), dtype=np.float32)[idx] if q_tokens else np.zeros(idx.size, np.float32)
        named = named_speakers(r["question"], m.speakers[r["meeting"]])
        share = np.zeros(idx.size)
        if named:
            for j, c in enumerate(idx):
                total = sum(m.words[c].values())
                share[j] = sum(m.words[c].get(n, 0) for n in named) / total if total else 0.0
        out.append(Question(r, idx, m.vecs[idx] @ qv, b, share, q_tokens, qv))
    return out


def kept_windows(ws: list[Win], idx: np.ndarray, f: np.ndarray, n: int = 10) -> list[int]:
    """The top ``n`` of the windows ``idx`` (global indices) by ``f`` (one score each), a window overlapping one
    already kept dropped, as lorebase drops overlapping transcript hits."""
    order = idx[np.argsort(-f, kind="stable")]
    kept: list[int] = []
    for i in order:
        if not any(ws[k].start < ws[i].end and ws[i].start < ws[k].end for k in kept):
            kept.append(int(i))
        if len(kept) == n:
            break
    return kept


def neighbours(ws: list[Win], meetings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The base windows just before and just after each window (global indices; -1 where none)."""
    prev = np.full(len(ws), -1)
    nxt = np.full(len(ws), -1)
    for meeting in set(meetings.tolist()):
        base = [int(i) for i in np.flatnonzero(meetings == meeting) if ws[i].joins is None]
        pos = {g: k for k, g in enumerate(base)}
        for i in map(int, np.flatnonzero(meetings == meeting)):
            lo, hi = ws[i].joins or (i, i)
            if pos[lo] > 0:
                prev[i] = base[pos[lo] - 1]
            if pos[hi] + 1 < len(base):
                nxt[i] = base[pos[hi] + 1]
    return prev, nxt


def feedback_scores(m: MeetingSet, df: Counter[str], q: Question, top: list[int], weight_of: dict[int, float]
                    ) -> np.ndarray | None:
    """rm3: the BM25 score, over the question's meeting, of the 10 terms most weighted in the first pass's
    ``top`` windows (their share of the window's words times IDF times the window's fused score,
    ``weight_of``; question terms left out), each term scaled by its weight over the largest. None when
    the top windows hold no such term."""
    n_docs = len(m.toks)
    weight: dict[str, float] = {}
    for g in top:
        tf = Counter(m.toks[g])
        total = sum(tf.values())
        for t, c in tf.items():
            if t not in q.q_tokens and df[t] > 1:
                idf = float(np.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)))
                weight[t] = weight.get(t, 0.0) + weight_of[g] * c / total * idf
    terms = sorted(weight.items(), key=lambda kv: kv[1], reverse=True)[:10]  # as Counter.most_common orders
    if not terms:
        return None
    out = np.zeros(q.idx.size)
    norm = max(w for _, w in terms)
    for t, w in terms:
        out += (w / norm) * np.asarray(m.bm25.get_scores([t]), dtype=np.float64)[q.idx]
    return out


def naive_scores(evaldata: Path, tuning: bool, questions: list[Question]) -> dict[str, float]:
    """lorebase eval retrieval's naive baseline on the same SRT files: fixed 60 s windows, plain BM25."""
    from lorebase.eval.baselines import WindowRetriever, fixed_windows
    from lorebase.ingest.transcripts.formats import parse_transcript

    folder = evaldata / ("tuning-meetings" if tuning else "meetings")
    wins = [w for p in sorted(folder.glob("*.srt"))
            for w in fixed_windows(p.stem, parse_transcript(p.read_text(encoding="utf-8"), ".srt").segments)]
    retriever = WindowRetriever(wins, "bm25")
    h1 = h5 = rr = 0.0
    for q in questions:
        ranked = retriever.rank(q.row["question"], q.row["meeting"], 10)
        rel = [any(w.start < e and s < w.end for s, e in q.row["gold_spans"]) for w in ranked]
        h1 += bool(rel and rel[0])
        h5 += any(rel[:5])
        first = next((k for k, y in enumerate(rel) if y), None)
        rr += 1 / (first + 1) if first is not None else 0
    n = len(questions)
    return {"hit@1": round(h1 / n, 3), "hit@5": round(h5 / n, 3), "mrr": round(rr / n, 3), "span_s": 60.0}


def piece_cosines(ws: list[Win], qvecs: np.ndarray, words: int, cache: Path) -> np.ndarray:
    """(questions, windows): each question's best cosine with a piece of each window (``words`` words,
    stride half that, the meeting name left out; a joined window's pieces are its base windows').
    MiniLM was trained on 128-token inputs, so a piece may match a question a whole window blurs."""
    import hashlib

    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.offline_models import embedder_path
    from lorebase.settings import Settings

    texts: list[str] = []
    owner: list[int] = []
    step = max(words // 2, 1)
    for i, w in enumerate(ws):
        if w.joins is None:
            body = w.text.split("\n", 1)[-1].split()
            starts = list(range(0, max(len(body) - words, 0) + 1, step))
            if starts[-1] + words < len(body):
                starts.append(len(body) - words)
            for s in starts:
                texts.append(" ".join(body[s: s + words]))
                owner.append(i)
    path = cache.with_name(f"{cache.stem}-pieces{words}.npz")
    digest = hashlib.sha1("\0".join(texts).encode()).hexdigest()
    saved = dict(np.load(path)) if path.exists() else {}
    if saved.get("digest", np.array("")).item() == digest:
        vecs = saved["vecs"]
    else:
        model = load_sentence_model(embedder_path(Settings()), resolve_dtype("auto"))
        vecs = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        np.savez(path, vecs=vecs, digest=np.array(digest))
    cos = qvecs @ vecs.T  # (questions, pieces)
    out = np.full((len(qvecs), len(ws)), -1.0, dtype=np.float32)
    own = np.asarray(owner)
    for i in np.unique(own):
        out[:, i] = cos[:, own == i].max(1)
    for i, w in enumerate(ws):
        if w.joins is not None:
            out[:, i] = out[:, w.joins[0]: w.joins[1] + 1].max(1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--tuning", action="store_true", help="the 40 QMSum train meetings (choose here)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lorebase-speaker-bench.npz"))
    ap.add_argument("--dense-weight", type=float, default=0.4)
    ap.add_argument("--speaker-weight", type=float, default=0.2)
    ap.add_argument("--misses", action="store_true", help="list the questions the shipped ranking misses at 5")
    ap.add_argument("--diverse", action="store_true",
                    help="only the time-diversity variants: a window within GAP s of a better one marked down by X")
    ap.add_argument("--pieces", type=int, default=0, metavar="WORDS",
                    help="also rank by the best piece: each base window cut into pieces of WORDS words (stride half that)")
    args = ap.parse_args(argv)
    m = load_set(args.evaldata, args.tuning, args.cache)
    ws, vecs, toks, meetings = m.ws, m.vecs, m.toks, m.meetings
    df = Counter(t for x in toks for t in set(x))
    prev, nxt = neighbours(ws, meetings)

    questions = questions_of(m)
    best_piece = piece_cosines(ws, m.qvecs, args.pieces, args.cache) if args.pieces else None
    row_of = {id(q): k for k, q in enumerate(questions)}

    def kept_order(q: Question, f: np.ndarray, n: int = 10) -> list[int]:
        return kept_windows(ws, q.idx, f, n)

    def rank(q: Question, mode: str, x: float) -> list[int]:
        f = fused(q.d, q.b, q.share, args.dense_weight, args.speaker_weight)
        if mode == "none" or x == 0:
            return kept_order(q, f)
        if mode == "smooth":
            local = {int(g): k for k, g in enumerate(q.idx)}
            # A neighbour need not be a candidate itself: it scores as lorebase would score it.
            base, _ = fused_all(q.d, q.b, q.share, args.dense_weight, args.speaker_weight)
            around = np.zeros_like(f)
            for k, g in enumerate(q.idx):
                near = [base[local[int(n)]] for n in (prev[g], nxt[g]) if n >= 0]
                around[k] = max(near) if near else 0.0
            return kept_order(q, f + x * around)
        if mode.startswith("diverse"):
            # Time diversity: the first window stays; each next slot goes to the best window still
            # left, marked down by x when it lies within GAP seconds of one already placed.
            gap = float(mode.split()[1])
            local = {int(g): k for k, g in enumerate(q.idx)}
            pool = kept_order(q, np.where(np.isfinite(f), f, -1e9), 40)
            placed = pool[:1]
            left = pool[1:]
            while left and len(placed) < 10:
                def adjusted(i: int) -> float:
                    near = any(ws[i].start - ws[k].end < gap and ws[k].start - ws[i].end < gap for k in placed)
                    return float(f[local[i]]) - (x if near else 0.0)
                best = max(left, key=adjusted)  # max keeps the first of equals: the fused order
                placed.append(best)
                left.remove(best)
            return placed
        if mode == "maxpiece":
            assert best_piece is not None
            d = (1 - x) * q.d + x * best_piece[row_of[id(q)]][q.idx]
            return kept_order(q, fused(d, q.b, q.share, args.dense_weight, args.speaker_weight))
        top = kept_order(q, f)[:3]
        if mode == "rocchio":
            v = q.qv + x * vecs[top].mean(0)
            v = v / np.linalg.norm(v)
            return kept_order(q, fused(vecs[q.idx] @ v, q.b, q.share, args.dense_weight, args.speaker_weight))
        # rm3: expansion terms from the top windows, weighted by their fused score.
        fpos = {int(g): k for k, g in enumerate(q.idx)}
        b2 = feedback_scores(m, df, q, top, {g: float(f[fpos[g]]) for g in top})
        if b2 is None:
            return kept_order(q, f)
        return kept_order(q, fused(q.d, q.b + x * b2, q.share, args.dense_weight, args.speaker_weight))

    def score(mode: str, x: float) -> dict[str, float]:
        h1 = h5 = rr = 0.0
        spans: list[float] = []
        for q in questions:
            kept = rank(q, mode, x)
            rel = [any(ws[i].start < e and s < ws[i].end for s, e in q.row["gold_spans"]) for i in kept]
            h1 += bool(rel and rel[0])
            h5 += any(rel[:5])
            first = next((k for k, y in enumerate(rel) if y), None)
            rr += 1 / (first + 1) if first is not None else 0
            spans.extend(ws[i].end - ws[i].start for i in kept[:5])
        n = len(questions)
        return {"hit@1": round(h1 / n, 3), "hit@5": round(h5 / n, 3), "mrr": round(rr / n, 3),
                "span_s": round(float(np.median(spans)), 0)}

    print(json.dumps({"questions": len(questions), "windows": len(ws)}))
    if args.misses:
        for q in questions:
            f = fused(q.d, q.b, q.share, args.dense_weight, args.speaker_weight)
            kept = kept_order(q, np.where(np.isfinite(f), f, -1e9), 40)
            rel = [any(ws[i].start < e and s < ws[i].end for s, e in q.row["gold_spans"]) for i in kept]
            first = next((k for k, y in enumerate(rel) if y), None)
            if first is None or first >= 5:
                gold = [(round(s), round(e)) for s, e in q.row["gold_spans"]]
                top = [(round(ws[i].start), round(ws[i].end)) for i in kept[:5]]
                print(json.dumps({"question": q.row["question"], "first_hit": first, "gold": gold, "top5": top}))
        return 0
    print(json.dumps({"variant": "naive 60 s BM25", **naive_scores(args.evaldata, args.tuning, questions)}), flush=True)
    print(json.dumps({"variant": "shipped", **score("none", 0)}), flush=True)
    if args.diverse:
        for gap in (0, 30, 60, 120, 300):
            for x in (0.05, 0.1, 0.2, 0.4, 10.0):
                print(json.dumps({"variant": f"diverse {gap} s, {x}", **score(f"diverse {gap}", x)}), flush=True)
        return 0
    if args.pieces:
        for x in (0.25, 0.5, 0.75, 1.0):
            print(json.dumps({"variant": f"maxpiece {args.pieces} words, {x}", **score("maxpiece", x)}), flush=True)
        return 0
    for mode, grid in (("smooth", (0.1, 0.2, 0.3, 0.5)), ("rm3", (0.1, 0.2, 0.3, 0.5)), ("rocchio", (0.2, 0.5, 1.0))):
        for x in grid:
            print(json.dumps({"variant": f"{mode} {x}", **score(mode, x)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
