"""What an extractive answer quotes: which sources, and how much of each.

    LOREBASE_HOME=H .venv/bin/python bench/bench_extractive_quotes.py QUESTIONS.jsonl [--k 5]

Most code answers are extractive: nothing the 0.5B model wrote passes the support check, and the
answer quotes up to two sources (`lorebase/generation/quotes.py`). This compares ways of doing it,
on each SWE-QA question searched within its repository as `lorebase eval answers` searches it, with
the answer path's own retrieval, evidence selection and quoting (no generator):

- `first two, best lines`: the first two sources (retrieval order) whose best line scores at least
  `answer.min_evidence_score` and 0.8 of the best one's, whatever their file, each quoted by its
  best unit alone (three lines of code);
- `first two, with context` (the default): the same sources, each code quote with the kept lines
  next to its best unit (what the model was shown around it);
- `one per file, with context` (`one_per_file=True`, not the default): a file's second source gives
  way to the next file.

For each: how often a quoted source is a gold file (an extractive answer's "cites gold" in the
answer benchmark), quotes per answer, the share of quotes that are gold (its citation precision),
and the answer text against the reference answer: ROUGE-L and the embedder's cosine (the answer
benchmark's "correct" columns), and its length in words. An extractive answer is verified by
construction, so "cites gold" here is what verified+gold would be if every answer were extractive.
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
    ap.add_argument("--k", type=int, default=5, help="sources an answer reads")
    args = ap.parse_args()

    import dataclasses

    import numpy as np

    from lorebase.citations import cite
    from lorebase.eval.answers import rouge_l
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.grounding import CITATION
    from lorebase.generation.quotes import extractive, quotable
    from lorebase.index.search import SearchService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    rules = {"first two, best lines": (False, False), "first two, with context": (False, True),
             "one per file, with context": (True, True)}
    rows = [json.loads(line) for line in args.questions.open() if line.strip()]
    settings = load_settings()
    store = Store(settings.db_url)
    try:
        search = SearchService(settings, store)
        # the answer path's evidence selection; it needs no generator
        answers = AnswerService(settings, search, generator=None)  # type: ignore[arg-type]
        picks: dict[str, list[list[bool]]] = {name: [] for name in rules}
        texts: dict[str, list[str]] = {name: [] for name in rules}
        gold_among = []
        for r in rows:
            hits = search.retrieve(r["question"], k=args.k, filters={"repo": r["repo"]})
            cites = [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, start=1)]
            selections = answers._select(r["question"], hits, cites) if hits else []
            gold = {c.id for c, h in zip(cites, hits, strict=True) if h.source.path in r["gold_files"]}
            gold_among.append(bool(gold))
            for name, (per_file, context) in rules.items():
                chosen = quotable(selections, settings.answer.min_evidence_score, one_per_file=per_file)
                if not context:  # the best unit alone
                    chosen = [dataclasses.replace(c, units=(c.best,)) for c in chosen]
                picks[name].append([c.citation.id in gold for c in chosen])
                texts[name].append(extractive(chosen)[0] if chosen else "")
        embed = search.embedder.embed
        refs = np.asarray(embed([r["answer"] for r in rows]))
    finally:
        store.close()

    out = []
    for name, quoted in picks.items():
        n_quotes = sum(len(q) for q in quoted)
        plain = [CITATION.sub("", t) for t in texts[name]]
        vecs = np.asarray(embed([t or "-" for t in plain]))
        out.append({"rule": name, "n": len(quoted), "cites_gold": round(mean(any(q) for q in quoted), 3),
                    "quotes_mean": round(n_quotes / len(quoted), 2),
                    "quote_precision": round(sum(sum(q) for q in quoted) / n_quotes, 3) if n_quotes else None,
                    "rougeL": round(mean(rouge_l(r["answer"], t) if t else 0.0 for r, t in zip(rows, texts[name], strict=True)), 4),
                    "similarity": round(float(np.mean(np.sum(vecs * refs, axis=1))), 4),
                    "words_median": median(len(t.split()) for t in plain)})
    print(json.dumps({**run_header(), "questions": str(args.questions), "k": args.k,
                      "gold_among_k": round(mean(gold_among), 3), "rows": out}, indent=1))
    print("\n| quotes | n | cites gold | quotes per answer | quotes that are gold | ROUGE-L | similarity | words (median) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    for o in out:
        print(f"| {o['rule']} | {o['n']} | {o['cites_gold']:.3f} | {o['quotes_mean']:.2f} | {o['quote_precision']:.3f} | "
              f"{o['rougeL']:.3f} | {o['similarity']:.3f} | {o['words_median']} |")


if __name__ == "__main__":
    main()
