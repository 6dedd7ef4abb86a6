"""What an extractive answer quotes: which sources, and how much of each.

    LOREBASE_HOME=H .venv/bin/python bench/bench_extractive_quotes.py QUESTIONS.jsonl [--k 5] [--per-file]
        [--counts 2:0.8,3:0.6]

Most code answers are extractive: nothing the 0.5B model wrote passes the support check, and the
answer quotes a few sources (`lorebase/generation/quotes.py`). This compares ways of doing it
on answerable questions of `lorebase eval answers` (SWE-QA's, each searched within its repository;
QMSum's, within its meeting), with the answer path's own retrieval, evidence selection and quoting
(no generator). The sources are the first `answer.quotes` (retrieval order) whose best unit scores
at least `answer.min_evidence_score` and `answer.quote_share` of the best one's, whatever their
file; each is quoted as

- `best lines only`: its best unit alone (three lines of code, one line of a doc, one sentence);
- `code with context` (the default): a code source with the kept units next to its best one (what
  the model was shown around it); docs and talk by their best unit, as in the first row;
- `one per file, with context` (``--per-file``; `one_per_file=True`, not the default): as the
  default, but a file's second source gives way to the next file;
- `N quotes at SHARE` (``--counts N:SHARE,...``): as the default, with at most N sources quoted,
  each scoring at least SHARE of the best.

For each: how often a quoted source is gold (a gold file, or overlapping a gold time span: an
extractive answer's "cites gold" in the answer benchmark), quotes per answer, the share of quotes
that are gold (its citation precision), and the answer text against the reference answer: ROUGE-L
and the embedder's cosine (the answer benchmark's "correct" columns), and its length in words. An
extractive answer is verified by construction, so "cites gold" here is what verified+gold would be
if every answer were extractive.
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
    ap.add_argument("questions", type=Path, help="questions of `lorebase eval answers` (SWE-QA or QMSum, with gold)")
    ap.add_argument("--k", type=int, default=5, help="sources an answer reads")
    ap.add_argument("--per-file", action="store_true", help="also the one-quote-per-file row")
    ap.add_argument("--counts", default="", help="also rows quoting at most N sources at SHARE of the best: N:SHARE,...")
    args = ap.parse_args()

    import dataclasses

    import numpy as np

    from lorebase.citations import cite
    from lorebase.eval.answers import cites_gold, load_answer_questions, rouge_l, scope
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.grounding import CITATION
    from lorebase.generation.quotes import extractive, quotable
    from lorebase.index.search import SearchService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    settings = load_settings()
    a = settings.answer
    # name: (one quote per file, the kinds of source quoted with the kept units around their best (the
    # answer path does it for code, whose units carry line numbers), most sources, share of the best)
    rules: dict[str, tuple[bool, frozenset[str], int, float]] = {
        "best lines only": (False, frozenset(), a.quotes, a.quote_share),
        "code with context (default)": (False, frozenset({"code"}), a.quotes, a.quote_share),
    }
    if args.per_file:
        rules["one per file, with context"] = (True, frozenset({"code"}), a.quotes, a.quote_share)
    for spec in filter(None, args.counts.split(",")):
        n, share = spec.split(":")
        rules[f"{n} quotes at {share}"] = (False, frozenset({"code"}), int(n), float(share))
    questions = [q for q in load_answer_questions(args.questions) if q.kind != "unanswerable"]
    store = Store(settings.db_url)
    try:
        search = SearchService(settings, store)
        # the answer path's evidence selection; it needs no generator
        answers = AnswerService(settings, search, generator=None)  # type: ignore[arg-type]
        picks: dict[str, list[list[bool]]] = {name: [] for name in rules}
        texts: dict[str, list[str]] = {name: [] for name in rules}
        gold_among = []
        for q in questions:
            hits = search.retrieve(q.question, k=args.k, filters=scope(q))
            cites = [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, start=1)]
            selections = answers._select(q.question, hits, cites) if hits else []
            gold_among.append(any(cites_gold(q, [s.citation]) for s in selections))
            for name, (per_file, context, most, share) in rules.items():
                chosen = quotable(selections, a.min_evidence_score, most=most, share=share, one_per_file=per_file)
                # a quote without context is the best unit alone
                chosen = [c if c.citation.kind in context else dataclasses.replace(c, units=(c.best,)) for c in chosen]
                picks[name].append([cites_gold(q, [c.citation]) for c in chosen])
                texts[name].append(extractive(chosen)[0] if chosen else "")
        embed = search.embedder.embed
        refs = np.asarray(embed([q.answer for q in questions]))
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
                    "rougeL": round(mean(rouge_l(q.answer, t) if t else 0.0 for q, t in zip(questions, texts[name], strict=True)), 4),
                    "similarity": round(float(np.mean(np.sum(vecs * refs, axis=1))), 4),
                    "words_median": median(len(t.split()) for t in plain)})
    print(json.dumps({**run_header(), "questions": str(args.questions), "k": args.k, "quotes": a.quotes,
                      "quote_share": a.quote_share,
                      "gold_among_k": round(mean(gold_among), 3), "rows": out}, indent=1))
    print("\n| quotes | n | cites gold | quotes per answer | quotes that are gold | ROUGE-L | similarity | words (median) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    for o in out:
        print(f"| {o['rule']} | {o['n']} | {o['cites_gold']:.3f} | {o['quotes_mean']:.2f} | {o['quote_precision']:.3f} | "
              f"{o['rougeL']:.3f} | {o['similarity']:.3f} | {o['words_median']} |")


if __name__ == "__main__":
    main()
