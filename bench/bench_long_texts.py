"""What pooling long chunks costs at embedding time: `index.embed_long_texts` truncate against pool.

Samples chunks of a data home (seeded), embeds the same sample with both settings in turn, several
rounds, and reports the median seconds of each and their ratio, with how many chunks were longer
than the embedder reads and how many pieces pooling embedded:

    nice -n 5 .venv/bin/python bench/bench_long_texts.py --home .evaldata/home --sample 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import run_header  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", type=Path, required=True, help="a data home whose chunks are sampled")
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kinds", default="code,doc,commit,transcript", help="source kinds sampled")
    args = ap.parse_args(argv)

    from sqlalchemy import select

    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.index.texts import indexed_text
    from lorebase.settings import load_settings
    from lorebase.store import Store
    from lorebase.store.models import Chunk, Source

    settings = load_settings(home=args.home)
    store = Store(settings.db_url)
    kinds = args.kinds.split(",")
    with store.session() as s:
        rows = s.execute(select(Source.title, Chunk.text).join(Source).where(Source.kind.in_(kinds))).all()
    texts = [indexed_text(t, x) for t, x in random.Random(0).sample(rows, min(args.sample, len(rows)))]
    truncate = LorebaseEmbedding.from_settings(settings.model_copy(update={"index": settings.index.model_copy(
        update={"embed_long_texts": "truncate"})}))
    pool = LorebaseEmbedding(truncate.path, model_name=truncate.model_name, dtype=truncate.dtype,
                             embed_batch_size=truncate.embed_batch_size, long_texts="pool")
    pieces, _, _ = pool._pieces(texts)
    limit = truncate._model.max_seq_length
    longer = sum(len(truncate._model.tokenizer(t, verbose=False).input_ids) > limit for t in texts)
    times: dict[str, list[float]] = {"truncate": [], "pool": []}
    for _ in range(args.rounds):
        for name, emb in (("truncate", truncate), ("pool", pool)):
            t0 = time.perf_counter()
            emb.embed(texts)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({**run_header(), "chunks": len(texts), "kinds": kinds, "longer than the model reads": longer,
                      "pieces pooled": len(pieces), "rounds": args.rounds,
                      "seconds (median)": {k: round(v, 1) for k, v in med.items()},
                      "chunks/s": {k: round(len(texts) / v, 1) for k, v in med.items()},
                      "pool / truncate": round(med["pool"] / med["truncate"], 2)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
