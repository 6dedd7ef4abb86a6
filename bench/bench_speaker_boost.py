"""Speaker-aware meeting retrieval: does preferring the windows where the named speaker talks help?

In memory, without a store, on lorebase's own windows (chunk_segments at the ingest defaults,
joined windows at three scales, a joined window's vector the normalised mean of its chunks'),
lorebase's tokenizer with stemming, MiniLM, convex fusion (dense weight 0.4) over the top 40 of
each retriever, overlapping windows dropped, each question searched within its meeting: as
`lorebase eval retrieval` ranks a meeting. Variants add, for questions that name a speaker of the
meeting (lorebase.index.speakers.named_speakers):

- ``share``: weight x the named speakers' share of the window's words;
- ``turns``: weight x the BM25 score of the named speakers' turns alone (min-max over the candidates).

Choose on the tuning meetings (QMSum train: --tuning), report the dev figure beside it:

    nice -n 19 .venv/bin/python bench/bench_speaker_boost.py --evaldata /work/wt-retrieval/.evaldata [--tuning]

Embeddings are cached in --cache (a .npz keyed by text hash) so a second run costs only BM25.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lorebase.index.code_tokens import tokenize  # noqa: E402
from lorebase.index.speaker_turns import speaker_words, turns_of  # noqa: E402
from lorebase.index.speakers import named_speakers  # noqa: E402
from lorebase.ingest.transcripts.chunks import chunk_segments, joined_windows  # noqa: E402
from lorebase.ingest.transcripts.formats import parse_transcript  # noqa: E402


@dataclass
class Win:
    meeting: str
    start: float
    end: float
    text: str
    speakers: list[str]
    joins: tuple[int, int] | None  # base-window indices (global) it joins


def windows(folder: Path) -> tuple[list[Win], dict[str, list[str]]]:
    out: list[Win] = []
    speakers: dict[str, list[str]] = {}
    for p in sorted(folder.glob("*.srt")):
        segs = parse_transcript(p.read_text(encoding="utf-8"), ".srt").segments
        speakers[p.stem] = list(dict.fromkeys(s.speaker for s in segs if s.speaker))
        base = chunk_segments(segs, min_s=45.0, max_s=90.0, label_speakers=len(speakers[p.stem]) > 1)
        first = len(out)
        for c in base + joined_windows(base, 3):
            j = (c.meta or {}).get("joins")
            out.append(Win(p.stem, c.start_time or 0.0, c.end_time or 0.0, f"{p.stem}\n{c.text}", list((c.meta or {}).get("speakers", [])),
                           (first + j[0], first + j[1]) if j else None))
    return out, speakers


def embed_all(ws: list[Win], cache: Path) -> np.ndarray:
    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.offline_models import embedder_path
    from lorebase.settings import Settings

    store: dict[str, np.ndarray] = dict(np.load(cache)) if cache.exists() else {}
    key = [hashlib.sha1(w.text.encode()).hexdigest() for w in ws]
    todo = [i for i, w in enumerate(ws) if w.joins is None and key[i] not in store]
    if todo:
        model = load_sentence_model(embedder_path(Settings()), resolve_dtype("auto"))
        t0 = time.monotonic()
        vecs = model.encode([ws[i].text for i in todo], batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
        print(f"embedded {len(todo)} windows in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        for i, v in zip(todo, vecs, strict=True):
            store[key[i]] = v.astype(np.float32)
        np.savez(cache, **store)  # type: ignore[arg-type]  # numpy stubs take the keywords for allow_pickle
    dim = next(iter(store.values())).shape[0]
    out = np.zeros((len(ws), dim), dtype=np.float32)
    for i, w in enumerate(ws):
        if w.joins is None:
            out[i] = store[key[i]]
    for i, w in enumerate(ws):
        if w.joins is not None:
            v = out[w.joins[0]: w.joins[1] + 1].sum(0)
            out[i] = v / max(float(np.linalg.norm(v)), 1e-9)
    return out


@dataclass
class MeetingSet:
    """The questions of one set, lorebase's windows of their meetings, and everything ranking them needs."""

    rows: list[dict]
    ws: list[Win]
    speakers: dict[str, list[str]]  # each meeting's speakers
    vecs: np.ndarray  # one unit vector per window
    toks: list[list[str]]  # each window's BM25 tokens
    bm25: Any  # bm25s.BM25 over ``toks``
    meetings: np.ndarray  # each window's meeting
    words: list[dict[str, int]]  # each window's words per speaker
    qvecs: np.ndarray  # one unit vector per question


def load_set(evaldata: Path, tuning: bool, cache: Path) -> MeetingSet:
    """The tuning meetings (QMSum train) or the dev meetings, with their questions, windows and indexes."""
    import bm25s

    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.offline_models import embedder_path
    from lorebase.settings import Settings

    if tuning:
        rows = [json.loads(x) for x in (evaldata / "qmsum-tuning.jsonl").read_text().splitlines() if x.strip()]
        ws, spk = windows(evaldata / "tuning-meetings")
    else:
        rows = [json.loads(x) for x in (ROOT / "datasets/eval/qmsum-dev.jsonl").read_text().splitlines() if x.strip()]
        ws, spk = windows(evaldata / "meetings")
    toks = [tokenize(w.text, "english") or ["_"] for w in ws]
    model = bm25s.BM25()
    model.index(toks, show_progress=False)
    qmodel = load_sentence_model(embedder_path(Settings()), resolve_dtype("auto"))
    qvecs = qmodel.encode([r["question"] for r in rows], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return MeetingSet(rows, ws, spk, embed_all(ws, cache), toks, model, np.asarray([w.meeting for w in ws]),
                      [speaker_words(w.text, w.speakers) for w in ws], qvecs)


def minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--tuning", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lorebase-speaker-bench.npz"))
    ap.add_argument("--dense-weight", type=float, default=0.4)
    args = ap.parse_args(argv)
    m = load_set(args.evaldata, args.tuning, args.cache)
    rows, ws, spk, vecs, toks, model, meetings, words, qvecs = (
        m.rows, m.ws, m.speakers, m.vecs, m.toks, m.bm25, m.meetings, m.words, m.qvecs)
    vocab = model.vocab_dict

    # Per question: candidates and their fused base scores, and the two speaker signals.
    prepared = []
    n_named = 0
    for r, qv in zip(rows, qvecs, strict=True):
        idx = np.flatnonzero(meetings == r["meeting"])
        q_tokens = [t for t in tokenize(r["question"], "english") if t in vocab]
        b = np.asarray(model.get_scores(q_tokens), dtype=np.float32)[idx] if q_tokens else np.zeros(idx.size, np.float32)
        d = vecs[idx] @ qv
        cand = np.union1d(np.argsort(-d)[:40], np.argsort(-b)[:40])
        base = args.dense_weight * minmax(d[cand]) + (1 - args.dense_weight) * minmax(b[cand])
        named = named_speakers(r["question"], spk[r["meeting"]])
        share = np.zeros(cand.size)
        turns = np.zeros(cand.size)
        if named:
            n_named += 1
            for j, c in enumerate(idx[cand]):
                wd = words[c]
                total = sum(wd.values())
                share[j] = sum(wd.get(n, 0) for n in named) / total if total else 0.0
            if q_tokens:
                tt = [tokenize("\n".join(t for s, t in turns_of(ws[c].text, ws[c].speakers) if s in named), "english")
                      for c in idx[cand]]
                # The turn text's BM25 with the chunk index's IDF: sum over query terms present.
                idf = {t: float(np.log(1 + (len(ws) - df + 0.5) / (df + 0.5))) for t in set(q_tokens)
                       for df in [int(model.get_scores([t]).astype(bool).sum())]}
                avg = float(np.mean([len(x) for x in toks]))
                for j, x in enumerate(tt):
                    tf: dict[str, int] = {}
                    for t in x:
                        tf[t] = tf.get(t, 0) + 1
                    turns[j] = sum(idf[t] * tf[t] * 2.5 / (tf[t] + 1.5 * (0.25 + 0.75 * len(x) / avg)) for t in set(q_tokens) if t in tf)
                turns = minmax(turns)
        prepared.append((r, idx, cand, base, share, turns, bool(named)))

    def score(mode: str, w: float) -> dict[str, float]:
        h1 = h5 = rr = 0.0
        h1n = nn = 0
        for r, idx, cand, base, share, turns, named in prepared:
            f = base + w * (share if mode == "share" else turns if mode == "turns" else share * turns)
            order = idx[cand[np.argsort(-f, kind="stable")]]
            kept: list[int] = []
            for i in order:
                if not any(ws[k].start < ws[i].end and ws[i].start < ws[k].end for k in kept):
                    kept.append(int(i))
                if len(kept) == 10:
                    break
            rel = [any(ws[i].start < e and s < ws[i].end for s, e in r["gold_spans"]) for i in kept]
            h1 += bool(rel and rel[0])
            h5 += any(rel[:5])
            first = next((k for k, x in enumerate(rel) if x), None)
            rr += 1 / (first + 1) if first is not None else 0
            if named:
                nn += 1
                h1n += bool(rel and rel[0])
        n = len(prepared)
        return {"hit@1": round(h1 / n, 3), "hit@5": round(h5 / n, 3), "mrr": round(rr / n, 3),
                "named hit@1": round(h1n / max(nn, 1), 3)}

    print(json.dumps({"questions": len(prepared), "naming a speaker": n_named, "windows": len(ws)}))
    print(json.dumps({"variant": "none", **score("share", 0.0)}))
    for mode in ("share", "turns", "both"):
        for w in (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8):
            print(json.dumps({"variant": f"{mode} {w}", **score(mode, w)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
