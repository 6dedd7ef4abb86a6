"""What lifts file hit@1 on the SWE-QA dev repositories: one change at a time, in memory.

Reads the chunks (and their stored vectors) of an ingested data home holding the dev
repositories (bench/build_evalsets.py, then `lorebase ingest .evaldata/repos/<name>`), and scores
variants of BM25 tokenisation, fusion weight and file-level aggregation on
datasets/eval/sweqa-dev.jsonl, each question searched within its repository:

    LOREBASE_HOME=/tmp/rh-code .venv/bin/python bench/bench_code_diagnosis.py [--repos flask pytest]

File hit@n: a gold file is the file of one of the top n results (chunks, or files when results
are aggregated per file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load(repo: str) -> tuple[list[int], list[str], list[str], list[str], np.ndarray]:
    """(chunk ids, indexed texts, paths or '', kinds, vectors) of one repository."""
    from sqlalchemy import select

    from lorebase.index.dense import DenseIndex
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.index.texts import indexed_text
    from lorebase.settings import load_settings
    from lorebase.store import Store
    from lorebase.store.models import Chunk, Source

    settings = load_settings()
    store = Store(settings.db_url)
    with store.session() as s:
        rows = s.execute(
            select(Chunk.id, Chunk.text, Source.title, Source.path, Source.kind)
            .join(Source, Chunk.source_id == Source.id)
            .where(Source.repo == repo)
            .order_by(Chunk.id)
        ).all()
    # Read the saved index directly (no lock: an ingest may be embedding another repository meanwhile).
    emb = LorebaseEmbedding.from_settings(settings)
    dense = DenseIndex(settings.index_dir, settings.index, emb.model_name, emb.dim, embed_dtype=emb.dtype)
    dense.load()
    live = set(dense.store.live_among(np.asarray([r[0] for r in rows], dtype=np.int64)).tolist())
    rows = [r for r in rows if r[0] in live]  # chunks not embedded yet are left out
    ids = [r[0] for r in rows]
    vecs = dense.store.vectors(np.asarray(ids, dtype=np.int64))
    return ids, [indexed_text(r[2], r[1]) for r in rows], [r[3] or "" for r in rows], [r[4] for r in rows], vecs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "datasets/eval/sweqa-dev.jsonl")
    ap.add_argument("--repos", nargs="*", default=["flask", "pytest", "sqlfluff"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import bm25s

    from bench.bench_transcript_diagnosis import minmax, stemmed
    from lorebase.index.code_tokens import tokenize
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.settings import load_settings

    emb = LorebaseEmbedding.from_settings(load_settings())
    questions = [json.loads(x) for x in args.questions.read_text().splitlines() if x.strip()]
    out = []
    for name in args.repos:
        qs = [q for q in questions if q["repo"].endswith("/" + name)]
        if not qs:
            continue
        ids, texts, paths, kinds, vecs = load(qs[0]["repo"])
        qv = emb.embed([q["question"] for q in qs])
        dense_all = qv @ vecs.T  # (questions, chunks)
        paths_a = np.asarray(paths)
        toks: dict[str, Callable[[str], list[str]]] = {"code": tokenize, "code+stem": stemmed(tokenize)}
        bm_scores = {}
        for tname, tok in toks.items():
            m = bm25s.BM25()
            m.index([tok(t) or ["_"] for t in texts], show_progress=False)
            vocab = m.vocab_dict
            sc = []
            for q in qs:
                qt = [t for t in tok(q["question"]) if t in vocab]
                sc.append(np.asarray(m.get_scores(qt), dtype=np.float32) if qt else np.zeros(len(texts), np.float32))
            bm_scores[tname] = np.stack(sc)

        def score_rows(fused: np.ndarray, per_file: bool, qs: list = qs, paths_a: np.ndarray = paths_a) -> dict:
            h1 = h5 = 0
            for qi, q in enumerate(qs):
                order = np.argsort(-fused[qi], kind="stable")
                seen: list[str] = []
                for i in order:
                    p = paths_a[i]
                    if per_file:
                        if p in seen:
                            continue
                    seen.append(p)
                    if len(seen) >= 5:
                        break
                gold = set(q["gold_files"])
                h1 += seen[0] in gold
                h5 += any(p in gold for p in seen[:5])
            return {"hit@1": round(h1 / len(qs), 3), "hit@5": round(h5 / len(qs), 3)}

        def fuse(d: np.ndarray, b: np.ndarray, w: float, cand: int = 40) -> np.ndarray:
            out_ = np.full_like(d, -1.0)
            for qi in range(d.shape[0]):
                c = np.union1d(np.argsort(-d[qi])[:cand], np.argsort(-b[qi])[:cand])
                out_[qi, c] = w * minmax(d[qi, c]) + (1 - w) * minmax(b[qi, c])
            return out_

        def file_max(s: np.ndarray, bonus: float = 0.0, paths_a: np.ndarray = paths_a) -> np.ndarray:
            """Each chunk's score raised by ``bonus`` times the mean of its file's other top-3 chunk scores."""
            if bonus == 0:
                return s
            res = s.copy()
            for qi in range(s.shape[0]):
                by: dict[str, list[float]] = {}
                for i in np.argsort(-s[qi])[:200]:
                    by.setdefault(paths_a[i], []).append(float(s[qi, i]))
                for i in np.argsort(-s[qi])[:200]:
                    rest = by[paths_a[i]][:3]
                    res[qi, i] = s[qi, i] + bonus * (sum(rest) / len(rest))
            return res

        variants: list[tuple[str, np.ndarray, bool]] = [
            ("bm25 code", bm_scores["code"], False),
            ("bm25 code+stem", bm_scores["code+stem"], False),
            ("dense", dense_all, False),
        ]
        for w in (0.3, 0.5, 0.7):
            variants.append((f"hybrid w={w} code", fuse(dense_all, bm_scores["code"], w), False))
            variants.append((f"hybrid w={w} code+stem", fuse(dense_all, bm_scores["code+stem"], w), False))
        for w in (0.3, 0.5):
            f = fuse(dense_all, bm_scores["code+stem"], w)
            variants.append((f"hybrid w={w} stem per-file", f, True))
            variants.append((f"hybrid w={w} stem per-file+bonus0.5", file_max(f, 0.5), True))
        for vname, s, per_file in variants:
            row = {"repo": name, "variant": vname, "n": len(qs), **score_rows(s, per_file)}
            out.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
