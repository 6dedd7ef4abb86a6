"""Another embedder against the configured one on code: dense retrieval alone, file hit@n.

Embeds the code and doc chunks of one SWE-QA repository in a data home that holds it (built by
bench/build_evalsets.py) with each embedder folder in turn, and ranks the distinct files of the
nearest chunks for that repository's dev questions (datasets/eval/sweqa-dev.jsonl). Reports file
hit@1 and hit@5 and the embedding speed, side by side in one run.

    LOREBASE_HOME=H .venv/bin/python bench/bench_embedder_swap.py --repo pallets/flask \
        --embedder configured --embedder /models/all-mpnet-base-v2

For the meetings, `bench/bench_speaker_boost.py` ranks lorebase's windows with whatever embedder
`LOREBASE_MODELS__EMBEDDER` names (give each embedder its own `--cache`; `--dense-weight 1.0` for
dense alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_name  # noqa: E402


def file_hits(vecs: np.ndarray, paths: list[str], qvecs: np.ndarray, gold: list[set[str]]) -> tuple[float, float]:
    h1 = h5 = 0
    for qv, g in zip(qvecs, gold, strict=True):
        files: list[str] = []
        for i in np.argsort(-(vecs @ qv)):
            if paths[i] not in files:
                files.append(paths[i])
            if len(files) == 5:
                break
        h1 += files[0] in g
        h5 += any(f in g for f in files)
    return h1 / len(gold), h5 / len(gold)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default="pallets/flask")
    ap.add_argument("--embedder", action="append", required=True,
                    help="a sentence-transformers folder, or `configured` (models.embedder); repeatable")
    ap.add_argument("--questions", type=Path, default=ROOT / "datasets/eval/sweqa-dev.jsonl")
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from lorebase.index.embeddings import load_sentence_model, resolve_dtype
    from lorebase.index.texts import indexed_text
    from lorebase.offline_models import embedder_path
    from lorebase.settings import Settings
    from lorebase.store import Store
    from lorebase.store.models import Chunk, Source

    settings = Settings()
    with Store(settings.db_url).session() as s:
        rows = s.execute(select(Source.title, Chunk.text, Source.path).join(Chunk, Chunk.source_id == Source.id)
                         .where(Source.repo == args.repo, Source.kind.in_(("code", "doc")))).all()
    if not rows:
        raise SystemExit(f"no code or doc chunks of {args.repo} in {settings.home}")
    texts = [indexed_text(t, x) for t, x, _ in rows]
    paths = [p or "" for _, _, p in rows]
    qs = [q for q in (json.loads(line) for line in args.questions.read_text().splitlines() if line.strip())
          if q.get("repo") == args.repo]
    gold = [set(q["gold_files"]) for q in qs]
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"{cpu_name()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {load}; {args.repo}: {len(texts)} chunks, {len(qs)} questions", file=sys.stderr)

    print("| embedder | max tokens | chunks/s | file hit@1 | file hit@5 |")
    print("|---|---:|---:|---:|---:|")
    for name in args.embedder:
        folder = embedder_path(settings) if name == "configured" else Path(name)
        model = load_sentence_model(folder, resolve_dtype(settings.index.embed_dtype))
        t0 = time.perf_counter()
        vecs = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        speed = len(texts) / (time.perf_counter() - t0)
        qvecs = model.encode([q["question"] for q in qs], normalize_embeddings=True, convert_to_numpy=True,
                             show_progress_bar=False)
        h1, h5 = file_hits(vecs, paths, qvecs, gold)
        print(f"| {Path(folder).name} | {model.max_seq_length} | {speed:.1f} | {h1:.3f} | {h5:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
