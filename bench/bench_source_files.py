"""How many files an answer's sources reach, with and without `retrieval.chunks_per_file`.

    LOREBASE_HOME=H .venv/bin/python bench/bench_source_files.py QUESTIONS.jsonl [--caps 0,1,2] [--k 5]

An answer reads the top k retrieved chunks (`retrieval.top_k`, 5). When several are chunks of one
file, fewer files reach the prompt. For each cap on chunks per code or doc file, and each SWE-QA
question (searched within its repository, as `lorebase eval answers` does), this counts:

- gold first: the first source is a gold file (the cap never changes it);
- gold among k: some source is a gold file, which an answer must have to cite one;
- files: distinct files among the k sources (median and mean).

Retrieval only, no generator. The answer benchmark (bench/bench_answers.py with `--variant`) says
whether more files make better answers; this says why.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean, median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import run_header  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path, help="SWE-QA questions (.jsonl with repo and gold_files)")
    ap.add_argument("--caps", default="0,1,2", help="values of retrieval.chunks_per_file to compare (0: no cap)")
    ap.add_argument("--k", type=int, default=5, help="sources an answer reads")
    args = ap.parse_args()

    from lorebase.index.search import SearchService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    rows = [json.loads(line) for line in args.questions.open() if line.strip()]
    base = load_settings()
    store = Store(base.db_url)
    searches: dict[int, SearchService] = {}
    try:
        out = []
        for cap in (int(c) for c in args.caps.split(",")):
            settings = base.model_copy(update={"retrieval": base.retrieval.model_copy(update={"chunks_per_file": cap})})
            if not searches:
                searches[cap] = SearchService(settings, store)
            else:  # the same indexes and embedder, other settings
                first = next(iter(searches.values()))
                searches[cap] = SearchService(settings, store, embedder=first.embedder, dense=first.dense)
            first_gold, any_gold, files = [], [], []
            for r in rows:
                hits = searches[cap].retrieve(r["question"], k=args.k, filters={"repo": r["repo"]})
                paths = [h.source.path for h in hits]
                first_gold.append(bool(paths) and paths[0] in r["gold_files"])
                any_gold.append(any(p in r["gold_files"] for p in paths))
                files.append(len(set(paths)))
            out.append({"cap": cap, "n": len(rows), "gold_first": round(mean(first_gold), 3),
                        "gold_among_k": round(mean(any_gold), 3), "files_median": median(files),
                        "files_mean": round(mean(files), 2)})
    finally:
        store.close()
    print(json.dumps({**run_header(), "questions": str(args.questions), "k": args.k, "rows": out}, indent=1))
    print(f"\n| chunks_per_file | n | gold first | gold among {args.k} | files (median / mean) |\n|---|---:|---:|---:|---|")
    for o in out:
        print(f"| {o['cap'] or 'no cap'} | {o['n']} | {o['gold_first']:.3f} | {o['gold_among_k']:.3f} | "
              f"{o['files_median']} / {o['files_mean']} |")


if __name__ == "__main__":
    main()
