"""Can a generator tell, from the top retrieved chunks, whether the sources answer a code question?

For every question of a set (SWE-QA questions, answerable, and our unanswerable ones) that the
subject-word check lets through: search its repository as the answer path does, give the model the
top chunks and the question, and read the log-odds of "yes" against "no" as its next token (one
forward pass, no generation; transformers, bf16 where the CPU computes in it, else fp32). This is the answer path's own gate
(`lorebase/generation/answerability.py`); its defaults are the gate's (top 3 chunks, 600 characters
each, "Can the question be answered from these excerpts alone?"), and ``--top``, ``--chars`` and
``--ask`` try other readings.

Score a set (one data home per call; LOREBASE_HOME holds the repositories):

    LOREBASE_HOME=H .venv/bin/python bench/bench_answerability_judge.py score --model FOLDER \\
        --questions Q.jsonl [--questions U.jsonl] --out scores.json

With ``--answers FILE`` (a `bench/bench_answers.py --out` file) the model reads each answer's quoted
lines instead of the chunks. SWE-QA rows (``Benchmark/<repo>.jsonl``, with no ``repo`` field) take ``--repo OWNER/NAME``, which
also keeps only that repository's rows of the other files. Meeting rows are left out.
Then choose the threshold on one scored set and apply it to another:

    .venv/bin/python bench/bench_answerability_judge.py report --tune a.json [--tune b.json] \\
        --test dev.json [--max-false 0.05]

The threshold lies midway between the highest score whose false abstention on the tuning set's
answerable questions is at most ``--max-false`` and the next score below it. The report gives the AUC of both sets and what the threshold does on each.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

def load(paths: list[Path], repo: str | None) -> list[dict[str, Any]]:
    rows = []
    for p in paths:
        for i, line in enumerate(p.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("set") == "meetings" or (repo and r.get("repo", repo) != repo):
                continue  # code questions only; with --repo, that repository's only
            unanswerable = "answer" not in r
            rows.append({"id": r.get("id") or f"{p.stem}-{i}", "question": r["question"], "repo": r.get("repo") or repo,
                         "kind": "unanswerable" if unanswerable else "answerable"})
    return rows


def int8_linear(model: Any) -> Any:
    """``model`` with its linear layers' weights in int8 (torch's dynamic quantisation)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch points to torchao for this; the API works in the pinned torch
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def score(args: argparse.Namespace) -> int:
    from lorebase.generation.answerability import AnswerabilityJudge
    from lorebase.generation.answerability import messages as chunk_messages

    rows = load(args.questions, args.repo)
    if args.answers is not None:
        prompts, checked_out = from_answers(args.answers, rows)
    else:
        prompts, checked_out = from_search(rows, args.top, args.chars)
    judge = AnswerabilityJudge(args.model.name, args.model)  # the answer path's own judge and prompt
    if args.precision == "int8":  # tried, not adopted: a bench-only variant of the judge (docs/benchmarks.md)
        judge._load()
        judge._model = int8_linear(judge._model)
    out = []
    t0 = time.perf_counter()
    for r, text in prompts:
        chat = (quoted_messages(r["question"], text) if args.answers is not None
                else chunk_messages(r["question"], text, args.ask))
        out.append({**r, "score": round(judge.score_messages(chat), 4)})
    elapsed = time.perf_counter() - t0
    report = {"model": str(args.model), "precision": args.precision, "reads": "answers" if args.answers else f"top {args.top} chunks",
              "chars": args.chars, "ask": args.ask, "questions": len(rows),
              "left_by_the_check": checked_out, "judged": len(out), "seconds": round(elapsed, 1), "scores": out}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(out)} judged ({checked_out} left out before any model) in {elapsed:.0f} s; AUC {auc(out):.3f}",
          file=sys.stderr)
    return 0


def quoted_messages(question: str, text: str) -> list[dict[str, str]]:
    """An answer's quoted lines (tried, not used: AUC 0.47 for 0.5B, 0.60 for 1.5B)."""
    return [{"role": "system", "content": "You check whether source text answers a question. Reply with one word: yes or no."},
            {"role": "user", "content": f"Question: {question}\n\nSource text:\n{text[:1500]}\n\n"
                                        "Does the source text answer the question? Reply yes or no."}]


def from_answers(path: Path, rows: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], str]], int]:
    """Each question's answer from a `bench/bench_answers.py --out` file, without its citations and
    lead-ins; questions the answer path abstained on are left out."""
    by_id = {rec["id"]: rec for sets in json.loads(path.read_text())["results"].values()
             for data in sets.values() for rec in data["records"]}
    prompts, left = [], 0
    for r in rows:
        rec = by_id.get(r["id"])
        if rec is None or rec["abstained"] or not rec["answer"]:
            left += 1
            continue
        text = re.sub(r"\[S\d+\]", "", rec["answer"]).replace("The sources say:", "").replace("The top source says:", "")
        prompts.append((r, text))
    return prompts, left


def from_search(rows: list[dict[str, Any]], top: int, chars: int) -> tuple[list[tuple[dict[str, Any], str]], int]:
    """Each question's top chunks in its repository, as the answer path gives them to the judge;
    questions the subject-word check stops are left out."""
    from lorebase.cli.scaffold import opened_store
    from lorebase.generation.answerability import excerpts
    from lorebase.index.search import SearchService

    prompts: list[tuple[dict[str, Any], str]] = []
    checked_out = 0
    with opened_store() as (settings, store):
        search = SearchService(settings, store)
        for r in rows:
            hits, unmentioned = search.retrieve_checked(r["question"], top, {"repo": r["repo"]} if r["repo"] else None)
            if unmentioned or not hits:
                checked_out += 1  # the answer path abstains before any model: nothing to judge
                continue
            prompts.append((r, excerpts(hits, top, chars)))
    return prompts, checked_out


def auc(rows: list[dict[str, Any]]) -> float:
    pos = [r["score"] for r in rows if r["kind"] == "answerable"]
    neg = [r["score"] for r in rows if r["kind"] == "unanswerable"]
    if not pos or not neg:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def effect(rows: list[dict[str, Any]], threshold: float) -> tuple[int, int, int, int]:
    """(answerable abstained, answerable, unanswerable caught, unanswerable) below ``threshold``."""
    ans = [r for r in rows if r["kind"] == "answerable"]
    un = [r for r in rows if r["kind"] == "unanswerable"]
    return (sum(r["score"] < threshold for r in ans), len(ans), sum(r["score"] < threshold for r in un), len(un))


def merged(paths: list[Path]) -> dict[str, Any]:
    """Several scored files (one per data home) as one set."""
    parts = [json.loads(p.read_text()) for p in paths]
    return {"judged": sum(p["judged"] for p in parts), "left_by_the_check": sum(p["left_by_the_check"] for p in parts),
            "scores": [r for p in parts for r in p["scores"]]}


def report(args: argparse.Namespace) -> int:
    tune, test = merged(args.tune), merged(args.test)
    rows = tune["scores"]
    n_ans = sum(r["kind"] == "answerable" for r in rows)
    candidates = sorted({r["score"] for r in rows} | {float("-inf")})
    chosen = max(t for t in candidates if effect(rows, t)[0] <= args.max_false * n_ans)
    below = max((t for t in candidates if t < chosen), default=chosen)
    threshold = round((chosen + below) / 2, 4) if below > float("-inf") else chosen  # midway to the next score down
    print(f"| set | judged (left by the check) | AUC | abstains below {threshold:.4f}: answerable | unanswerable caught |")
    print("|---|---:|---:|---:|---:|")
    for name, data in (("tuning", tune), ("test", test)):
        fa, na, cu, nu = effect(data["scores"], threshold)
        print(f"| {name} | {data['judged']} ({data['left_by_the_check']}) | {auc(data['scores']):.3f} | "
              f"{fa} of {na} | {cu} of {nu} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    from lorebase.generation import answerability

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("--model", type=Path, required=True, help="a Hugging Face model folder (e.g. the base profile's)")
    s.add_argument("--questions", type=Path, action="append", required=True)
    s.add_argument("--repo", help="the repository of SWE-QA rows that do not name one")
    s.add_argument("--answers", type=Path, help="judge each answer's quoted lines from this bench_answers.py --out file "
                   "instead of the top 3 chunks")
    s.add_argument("--top", type=int, default=answerability.TOP_CHUNKS, help="how many chunks the model reads")
    s.add_argument("--chars", type=int, default=answerability.CHUNK_CHARS, help="each chunk cut to this many characters")
    s.add_argument("--ask", default=answerability.ASK, help="the question put to the model after the excerpts")
    s.add_argument("--precision", choices=("auto", "int8"), default="auto",
                   help="auto: as the answer path loads the judge; int8: its linear layers then quantised (torch dynamic)")
    s.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("report")
    r.add_argument("--tune", type=Path, action="append", required=True, help="scored files to choose on (repeatable)")
    r.add_argument("--test", type=Path, action="append", required=True, help="scored files to apply it to (repeatable)")
    r.add_argument("--max-false", type=float, default=0.05, help="false abstention allowed on the tuning set")
    args = ap.parse_args(argv)
    return score(args) if args.cmd == "score" else report(args)


if __name__ == "__main__":
    raise SystemExit(main())
