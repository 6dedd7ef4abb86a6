"""A tuned embedder against the one it was tuned from, on real questions nobody here wrote.

`lorebase embedder tune` judges a candidate on held-out QA pairs made by lorebase's templates
(sources it never trained on). This script asks the question that matters beside it: does the
tuned embedder also retrieve better for real questions? It ranks, by dense retrieval alone, the
chunks of a data home for the QMSum dev questions (within their meeting) and the SWE-QA dev
questions of the repositories the home holds (within their repository, by distinct file), with
both embedders, the same way (a joined transcript window gets the normalised sum of its chunks'
vectors, as the index does).

    .venv/bin/python bench/bench_tuned_embedder.py --home /tmp/rh-tune --tuned /tmp/rh-tune/embedders/tuned-...

Prints one JSON object: hit@1, hit@5 and MRR@10 per set for each embedder, and the gate's own
figures from the tuned folder's lorebase-tuning.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--tuned", type=Path, required=True)
    ap.add_argument("--datasets", type=Path, default=ROOT / "datasets" / "eval")
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype
    from lorebase.index.texts import indexed_text
    from lorebase.settings import load_settings
    from lorebase.store import Store
    from lorebase.store.models import Chunk, Source

    settings = load_settings(home=args.home)
    store = Store(settings.db_url)
    with store.session() as s:
        rows = s.execute(
            select(Chunk.id, Chunk.text, Chunk.meta, Chunk.ordinal, Chunk.start_time, Chunk.end_time,
                   Source.id, Source.title, Source.kind, Source.key, Source.repo, Source.path)
            .join(Source, Chunk.source_id == Source.id).order_by(Chunk.id)
        ).all()
    base = LorebaseEmbedding.configured(settings)
    tuned = LorebaseEmbedding(args.tuned, model_name="tuned", dtype=resolve_dtype(settings.index.embed_dtype))
    texts = [indexed_text(r[7], r[1]) for r in rows]
    by_pos = {(r[6], r[3]): i for i, r in enumerate(rows)}
    own = [i for i, r in enumerate(rows) if not (r[2] or {}).get("joins")]

    def vectors(emb: LorebaseEmbedding) -> np.ndarray:
        out = np.zeros((len(rows), emb.dim), dtype=np.float32)
        out[own] = emb.embed([texts[i] for i in own])
        for i, r in enumerate(rows):
            j = (r[2] or {}).get("joins")
            if j:
                v = out[[by_pos[(r[6], o)] for o in range(j[0], j[1] + 1) if (r[6], o) in by_pos]].sum(0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out

    meetings = [json.loads(x) for x in (args.datasets / "qmsum-dev.jsonl").read_text().splitlines() if x.strip()]
    code = [json.loads(x) for x in (args.datasets / "sweqa-dev.jsonl").read_text().splitlines() if x.strip()]
    repos = {r[10] for r in rows if r[10]}
    code = [q for q in code if q["repo"] in repos]
    key = np.asarray([r[9] for r in rows])
    repo = np.asarray([r[10] or "" for r in rows])
    path = [r[11] for r in rows]
    times = [(r[4], r[5]) for r in rows]

    def score(emb: LorebaseEmbedding, vecs: np.ndarray) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, qs in (("qmsum-dev", meetings), ("sweqa", code)):
            if not qs:
                continue
            qv = emb.embed([q["question"] for q in qs])
            h1 = h5 = rr = 0.0
            for qi, q in enumerate(qs):
                if name == "qmsum-dev":
                    idx = np.flatnonzero(key == f"transcript:meetings/{q['meeting']}")
                else:
                    idx = np.flatnonzero(repo == q["repo"])
                order = idx[np.argsort(-(vecs[idx] @ qv[qi]), kind="stable")]
                ranked: list[bool] = []
                seen: set[str] = set()
                for i in order:
                    if name == "qmsum-dev":
                        s, e = times[i]
                        ranked.append(any(s < ge and gs < e for gs, ge in q["gold_spans"]))
                    else:
                        p = path[i] or f"#{i}"
                        if p in seen:
                            continue
                        seen.add(p)
                        ranked.append(p in q["gold_files"])
                    if len(ranked) == 10:
                        break
                h1 += ranked[0]
                h5 += any(ranked[:5])
                first = next((k for k, hit in enumerate(ranked) if hit), None)
                rr += 1 / (first + 1) if first is not None else 0
            n = len(qs)
            out[name] = {"n": n, "hit@1": round(h1 / n, 3), "hit@5": round(h5 / n, 3), "mrr@10": round(rr / n, 3)}
        return out

    meta = json.loads((args.tuned / "lorebase-tuning.json").read_text())
    report = {"home": str(args.home), "tuned": str(args.tuned), "chunks": len(rows),
              "base": score(base, vectors(base)), "tuned_scores": score(tuned, vectors(tuned)),
              "gate": meta["verdict"], "train_pairs": meta["train_pairs"], "hard_negatives": meta["hard_negatives"],
              "train_s": meta["train_seconds"]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
