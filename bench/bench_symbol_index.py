"""What the symbol documents of a file's head cost the BM25 build (2026-12-07).

The symbol-level BM25 index (`lorebase/index/bm25.py`, `_symbol_index`) once held a document for
each definition and doc section only; since then the code between definitions has one too (its
path and module name). This builds the index over a data home's chunks both ways, in turn, and
reports the median time and the number of documents. The "definitions only" side is the same
function given only the rows that had a document before, so nothing of the old code is copied.

    .venv/bin/python bench/bench_symbol_index.py [--home home] [--rounds 3]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from bench.home_chunks import home_arguments, home_chunks
    from bench.machine import run_header
    from lorebase.index.bm25 import Bm25Index

    args = home_arguments(__doc__.split("\n\n")[0])
    settings, rows = home_chunks(args.evaldata, args.home)

    def had_a_document(r: Any) -> bool:
        kind, meta = r[4], r[5] or {}
        return (kind == "code" and bool(meta.get("symbol")) and meta.get("symbol_kind") != "module") or \
            (kind == "doc" and bool(meta.get("heading_path")))

    sides = {"definitions and doc sections only": [r for r in rows if had_a_document(r)], "every code chunk too": rows}
    times: dict[str, list[float]] = {name: [] for name in sides}
    docs: dict[str, int] = {}
    for _ in range(args.rounds):  # the two sides in turn, so load hits both alike
        for name, subset in sides.items():
            t = time.perf_counter()
            _, _, chunk_doc = Bm25Index._symbol_index(subset, settings.index.bm25_stemmer)
            times[name].append(time.perf_counter() - t)
            docs[name] = int((chunk_doc >= 0).sum())
    report = {**run_header(), "home": args.home, "chunks": len(rows), "rounds": args.rounds,
              "sides": {name: {"documents": docs[name], "median_s": statistics.median(ts)} for name, ts in times.items()}}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
