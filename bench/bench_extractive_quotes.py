"""Which sources an extractive answer quotes: the two strongest, or the two strongest files.

    LOREBASE_HOME=H .venv/bin/python bench/bench_extractive_quotes.py QUESTIONS.jsonl [--k 5]

Most code answers are extractive: nothing the 0.5B model wrote passes the support check, and the
answer quotes the best line of up to two sources (`generation/quotes.py`). This compares the two ways of
choosing them, on each SWE-QA question searched within its repository as `lorebase eval answers`
searches it, with the answer path's own retrieval and evidence selection (no generator):

- `first two` (the default): the first two sources (retrieval order) whose best line scores at least
  `answer.min_evidence_score` and 0.8 of the best one's, whatever their file;
- `one per file` (`one_per_file=True`, not the default): the same, but a file's second source
  gives way to the next file.

For each: how often a quoted source is a gold file (an extractive answer's "cites gold" in the
answer benchmark), quotes per answer, and the share of quotes that are gold (its citation
precision). An extractive answer is verified by construction, so "cites gold" here is what
verified+gold would be if every answer were extractive.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import mean

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import run_header  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path, help="SWE-QA questions (.jsonl with repo and gold_files)")
    ap.add_argument("--k", type=int, default=5, help="sources an answer reads")
    args = ap.parse_args()

    from lorebase.citations import cite
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.quotes import quotable
    from lorebase.index.search import SearchService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    rows = [json.loads(line) for line in args.questions.open() if line.strip()]
    settings = load_settings()
    store = Store(settings.db_url)
    try:
        search = SearchService(settings, store)
        # the answer path's evidence selection; it needs no generator
        answers = AnswerService(settings, search, generator=None)  # type: ignore[arg-type]
        picks: dict[str, list[list[bool]]] = {"first two": [], "one per file": []}
        gold_among = []
        for r in rows:
            hits = search.retrieve(r["question"], k=args.k, filters={"repo": r["repo"]})
            cites = [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, start=1)]
            selections = answers._select(r["question"], hits, cites) if hits else []
            gold = {c.id for c, h in zip(cites, hits, strict=True) if h.source.path in r["gold_files"]}
            gold_among.append(bool(gold))
            bar = settings.answer.min_evidence_score
            for name, per_file in (("first two", False), ("one per file", True)):
                picks[name].append([s.citation.id in gold for s in quotable(selections, bar, one_per_file=per_file)])
    finally:
        store.close()

    out = []
    for name, quoted in picks.items():
        n_quotes = sum(len(q) for q in quoted)
        out.append({"rule": name, "n": len(quoted), "cites_gold": round(mean(any(q) for q in quoted), 3),
                    "quotes_mean": round(n_quotes / len(quoted), 2),
                    "quote_precision": round(sum(sum(q) for q in quoted) / n_quotes, 3) if n_quotes else None})
    print(json.dumps({**run_header(), "questions": str(args.questions), "k": args.k,
                      "gold_among_k": round(mean(gold_among), 3), "rows": out}, indent=1))
    print("\n| quotes | n | cites gold | quotes per answer | quotes that are gold |\n|---|---:|---:|---:|---:|")
    for o in out:
        print(f"| {o['rule']} | {o['n']} | {o['cites_gold']:.3f} | {o['quotes_mean']:.2f} | {o['quote_precision']:.3f} |")


if __name__ == "__main__":
    main()
