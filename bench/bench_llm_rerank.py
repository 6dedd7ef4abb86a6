"""Can a generator rerank the files hybrid search finds for a code question? A lead for issue 20's
code hit@1, measured, not wired into the search path.

For each SWE-QA question, the real search (`SearchService.retrieve`, default settings, within the
question's repository) ranks files as `lorebase eval retrieval` does (overlapping chunks dropped,
each file at the rank of its best chunk). The top ``--files`` files are then read one at a time by
a model: the file's path and its best chunk (cut to ``--chars``), the question, and "Is this the
file the question is about?". Its log-odds of "yes" against "no" as the next token (the answerability
judge's scoring, `lorebase/generation/answerability.py`) is the file's score. One forward pass per
file, no generation.

The new order is the search's own rank blended with the model's: a file's score is
``lam * logodds - rank`` (rank 0 for the first file), so ``lam = 0`` is the search as it ships and
a large ``lam`` the model's order alone. ``lam`` is chosen on the ``--choose`` homes only and then
applied to the ``--report`` homes, which never took part in choosing.

    .venv/bin/python bench/bench_llm_rerank.py --model .evaldata/home/models/generator-base \\
        --choose home=datasets/eval/sweqa-dev.jsonl --choose home-tuning=datasets/eval/sweqa-tuning.jsonl \\
        --report home-holdout=datasets/eval/sweqa-holdout.jsonl --json out.json

Cost: ``--files`` forward passes of about 250 tokens per question (the model's time is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SYSTEM = ("You judge which file of a software project a question is about. Reply with one word: yes or no.")
ASK = "Is this the file the question is about: does it hold the code or text that answers it? Reply yes or no."
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 100.0)


def ranked_files(hits: list[Any]) -> list[tuple[str, Any]]:
    """Distinct sources in the order of their best hit, each with that hit, named by path (a commit
    by its title): the ranking `lorebase eval retrieval` scores."""
    out: dict[str, tuple[str, Any]] = {}
    for h in hits:
        out.setdefault(h.source.id, (h.source.path or h.source.title or h.source.id, h))
    return list(out.values())


def reorder(files: list[str], logodds: list[float], lam: float) -> list[str]:
    """The first len(logodds) files re-ranked by ``lam * logodds - rank``; the rest after them, as they were."""
    head = sorted(range(len(logodds)), key=lambda i: -(lam * logodds[i] - i))
    return [files[i] for i in head] + files[len(logodds):]


def metrics(rows: list[dict[str, Any]], lam: float) -> dict[str, dict[str, float]]:
    per: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows:
        order = reorder(r["files"], r["logodds"], lam)
        rel = [f in r["gold"] for f in order[:10]]
        first = next((k for k, x in enumerate(rel) if x), None)
        per.setdefault(r["repo"], []).append((float(rel[:1] == [True]), float(any(rel[:5])),
                                              1.0 / (first + 1) if first is not None else 0.0))
    out = {repo: {"n": len(v), "hit@1": float(np.mean([x[0] for x in v])), "hit@5": float(np.mean([x[1] for x in v])),
                  "mrr": float(np.mean([x[2] for x in v]))} for repo, v in per.items()}
    n = sum(len(v) for v in per.values())
    out["all"] = {"n": n, **{m: float(sum(out[k][m] * out[k]["n"] for k in per) / n) for m in ("hit@1", "hit@5", "mrr")}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a Hugging Face model folder (e.g. the base profile's)")
    ap.add_argument("--evaldata", type=Path, default=ROOT / ".evaldata")
    ap.add_argument("--choose", action="append", default=[], metavar="HOME=QUESTIONS", help="choose lam on these (repeatable)")
    ap.add_argument("--report", action="append", default=[], metavar="HOME=QUESTIONS", help="apply it to these (repeatable)")
    ap.add_argument("--files", type=int, default=5, help="how many of the top files the model reads")
    ap.add_argument("--chars", type=int, default=600, help="each file's best chunk cut to this many characters")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from bench.machine import run_header
    from lorebase.eval.public_sets import public_settings
    from lorebase.generation.answerability import AnswerabilityJudge
    from lorebase.index.search import SearchService
    from lorebase.settings import load_settings
    from lorebase.store import Store

    judge = AnswerabilityJudge(args.model.name, args.model)
    model_s = 0.0

    def score(home: str, questions: Path) -> list[dict[str, Any]]:
        nonlocal model_s
        settings = public_settings(load_settings(), args.evaldata, 200, home=home)
        store = Store(settings.db_url)
        svc = SearchService(settings, store)
        out = []
        try:
            for line in questions.read_text().splitlines():
                if not line.strip():
                    continue
                q = json.loads(line)
                files = ranked_files(svc.retrieve(q["question"], k=10, filters={"repo": q["repo"]}))
                logodds = []
                for path, hit in files[:args.files]:
                    t = time.monotonic()
                    chat = [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": f"File: {path}\n{hit.chunk.text[:args.chars]}\n\n"
                                                        f"Question: {q['question']}\n\n{ASK}"}]
                    logodds.append(judge.score_messages(chat))
                    model_s += time.monotonic() - t
                out.append({"id": q.get("id"), "repo": q["repo"], "gold": q["gold_files"], "files": [p for p, _ in files],
                            "logodds": logodds})
                print(f"{home}: {len(out)} questions, model {model_s:.0f} s", file=sys.stderr, flush=True)
        finally:
            store.close()
        return out

    def parse(text: str) -> tuple[str, Path]:
        home, sep, questions = text.partition("=")
        if not sep:
            raise SystemExit(f"--choose/--report take HOME=QUESTIONS, not {text!r}")
        return home, Path(questions)

    chosen_rows = [r for x in args.choose for r in score(*parse(x))]
    reported_rows = [r for x in args.report for r in score(*parse(x))]
    table = {lam: metrics(chosen_rows, lam) for lam in LAMBDAS} if chosen_rows else {}
    best = max(table, key=lambda lam: (table[lam]["all"]["hit@1"] + table[lam]["all"]["mrr"], -lam)) if table else 0.0
    passes = sum(len(r["logodds"]) for r in chosen_rows + reported_rows)
    report = {**run_header(), "model": str(args.model), "files": args.files, "chars": args.chars, "passes": passes,
              "model_s_per_pass": model_s / max(passes, 1), "chosen_lam": best,
              "choose": {str(lam): m for lam, m in table.items()},
              "report": {"search": metrics(reported_rows, 0.0), "reranked": metrics(reported_rows, best),
                         "model_only": metrics(reported_rows, 100.0)} if reported_rows else {},
              "rows": chosen_rows + reported_rows}
    for lam, m in table.items():
        print(f"choose lam={lam:<6} hit@1 {m['all']['hit@1']:.3f} hit@5 {m['all']['hit@5']:.3f} MRR {m['all']['mrr']:.3f}")
    for name, m in report["report"].items():
        print(f"report {name:9s} " + " | ".join(f"{k} {v['hit@1']:.3f}/{v['hit@5']:.3f}/{v['mrr']:.3f}" for k, v in m.items()))
    print(f"chosen lam {best}; {passes} passes, {report['model_s_per_pass']:.2f} s each")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
