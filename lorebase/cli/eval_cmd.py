"""`lorebase eval [run] [--set FILE] [--judge URL --judge-model NAME]`: answer the eval set through the
live pipeline and score it (RAGAS, retrieval, summaries, speed), with HTML and JSON reports;
`lorebase eval list`, `lorebase eval compare RUN_A RUN_B`, and `lorebase eval retrieval [FILE]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

RUN_HELP = "answer the eval set with the live pipeline and score it (the default action)"


def _run_options(p: argparse.ArgumentParser, *, on_subcommand: bool) -> None:
    # Declared on `eval` itself (so bare `lorebase eval --set F` works) and on `eval run`; there the
    # defaults are suppressed so they never overwrite what was given before the word `run`.
    def d(value: Any) -> Any:
        return argparse.SUPPRESS if on_subcommand else value

    p.add_argument("--set", dest="eval_set", type=Path, default=d(None), metavar="FILE",
                   help="questions with gold sources and reference answers (default: eval.default_set)")
    p.add_argument("--judge", dest="judge_url", default=d(None), metavar="BASE_URL",
                   help="OpenAI-compatible judge for the RAGAS LLM metrics (default: eval.judge_url, else the largest prepared generator profile larger than the generator, else the generator)")
    p.add_argument("--judge-model", default=d(None), metavar="NAME", help="model id at the judge (default: eval.judge_model)")
    p.add_argument("--no-judge", action="store_true", default=d(False), help="score only the metrics that need no LLM")
    p.add_argument("--summaries", type=Path, default=d(None), metavar="FILE",
                   help="reference lecture summaries, JSONL (default: eval.summaries_set)")
    p.add_argument("--no-summaries", action="store_true", default=d(False), help="skip the summary evaluation")
    p.add_argument("--limit", type=int, default=d(None), metavar="N", help="only the first N questions")
    p.add_argument("--adapter", default=d(None), help="answer with this LoRA adapter, or the base model's name (default: the promoted adapter, else the base model)")
    p.add_argument("--no-sync", action="store_true", default=d(False), help="do not index pending chunks first")
    p.add_argument("--json", action="store_true", default=d(False), help="print the whole report as JSON")


def add_arguments(p: argparse.ArgumentParser) -> None:
    _run_options(p, on_subcommand=False)
    sub = p.add_subparsers(dest="action", required=False, metavar="ACTION")
    _run_options(sub.add_parser("run", help=RUN_HELP, description=RUN_HELP), on_subcommand=True)

    c = sub.add_parser("compare", help="each metric's change between two runs, and the questions that moved")
    c.add_argument("run_a", type=int, metavar="RUN_A")
    c.add_argument("run_b", type=int, metavar="RUN_B")
    c.add_argument("--threshold", type=float, default=0.05, help="smallest change of a question's mean score shown (default 0.05)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")

    ls = sub.add_parser("list", help="the evaluation runs, newest first")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")

    r = sub.add_parser(
        "retrieval",
        help="hit@1, hit@5, recall@k and MRR of bm25, dense and hybrid retrieval on a question file, or on every public set",
        description=(
            "With FILE: that question file against the data home (format: see lorebase/eval/retrieval.py). Without: "
            "every public dev set (QMSum meetings, SWE-QA repositories, built by bench/build_evalsets.py) in a data "
            "home of its own under --public-root, beside the naive baselines (60-second windows: plain BM25, MiniLM); "
            "with TutorialVQA built there too, its questions searched across all its videos, in a second home; with the "
            "held-out SWE-QA repositories built (holdout-repos/), their questions in a third; with the tuning ones built "
            "(tuning-repos/), theirs in a fourth."
        ),
    )
    r.add_argument("file", type=Path, nargs="?", help="questions with gold, .jsonl or .yaml (omit: every public set)")
    r.add_argument("--k", type=int, default=10, help="depth for recall@k and MRR (default 10)")
    r.add_argument("--no-sync", action="store_true", help="do not index pending chunks first")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--public-root", type=Path, default=Path(".evaldata"),
                   help="public sets: the folder bench/build_evalsets.py wrote (default .evaldata)")
    r.add_argument("--datasets", type=Path, default=Path("datasets/eval"),
                   help="public sets: the folder of qmsum-dev.jsonl and sweqa-dev.jsonl (default datasets/eval)")
    r.add_argument("--max-commits", type=int, default=200, help="public sets: newest commits ingested per repository (default 200)")
    r.add_argument("--no-ingest", action="store_true", help="public sets: score what the public data home holds, ingest nothing")
    r.add_argument("--no-baselines", action="store_true", help="public sets: leave out the naive baselines")

    a = sub.add_parser(
        "answers",
        help="verified, cites-gold, correct, abstention and speed on public question sets (see lorebase/eval/answers.py)",
        description="Answer question files through the live pipeline and score them without a judge; "
        "--extractive scores the top hit's best lines instead (no generator).",
    )
    a.add_argument("files", type=Path, nargs="+", help="question files (.jsonl): code, meetings or unanswerable")
    a.add_argument("--extractive", action="store_true", help="the extractive baseline: no generator is started")
    a.add_argument("--concurrency", type=int, default=8, help="questions answered at once (default 8)")
    a.add_argument("--model", default=None, metavar="NAME",
                   help="answer with this model id (an adapter's name, or the base model's); default: the served default")
    a.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N questions of each file")
    a.add_argument("--out", type=Path, default=None, help="write every answer and the summary as JSON here")
    a.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    action = args.action or "run"
    return {"run": run_eval, "compare": run_compare, "list": run_list, "retrieval": run_retrieval,
            "answers": run_answers}[action](args)


def run_answers(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import running_services
    from lorebase.eval.answers import AnswerBench, load_answer_questions, summarize_rows

    sets = {f: load_answer_questions(f)[: args.limit] for f in args.files}

    async def go() -> dict[str, object]:
        async with running_services(generator=not args.extractive) as svc:
            bench = AnswerBench(svc.conversation, concurrency=args.concurrency)
            out: dict[str, object] = {}
            for f, qs in sets.items():
                def progress(m: str, f: Path = f) -> None:
                    print(f"\r{f.stem}: {m}", end="", file=sys.stderr, flush=True)

                records = await bench.run(qs, extractive=args.extractive, model=args.model, progress=progress)
                print(file=sys.stderr)
                out[f.stem] = {"summary": summarize_rows(records), "records": records}
            return out

    result = asyncio.run(go())
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))
    summary = {k: v["summary"] for k, v in result.items()}  # type: ignore[index]
    if args.json:
        print_json(summary)
    else:
        for name, row in summary.items():
            print(name, " ".join(f"{k}={v}" for k, v in row.items()))
    return 0


# --- eval run -------------------------------------------------------------------------------------


def run_eval(args: argparse.Namespace) -> int:
    import asyncio

    from lorebase.cli.main import print_json
    from lorebase.errors import InvalidInput
    from lorebase.settings import load_settings

    settings = load_settings()
    eval_set: Path = args.eval_set or settings.eval.default_set
    if not eval_set.is_file():
        raise InvalidInput(f"eval set {eval_set} does not exist (give --set FILE or set eval.default_set)")
    summaries = None if args.no_summaries else (args.summaries or settings.eval.summaries_set)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    async def go() -> dict[str, Any]:
        from lorebase.cli.scaffold import running_services
        from lorebase.eval.runner import EvalOptions, EvalRunner

        async with running_services(settings, generator=False, progress=sys.stderr.isatty()) as svc:
            if not args.no_sync:
                await asyncio.to_thread(svc.indexer.sync)
            await svc.start_generator()
            opts = EvalOptions(eval_set=eval_set, judge_url=args.judge_url, judge_model=args.judge_model,
                               judge=not args.no_judge, summaries=summaries, limit=args.limit, adapter=args.adapter)
            return await EvalRunner(svc.conversation, svc.indexer, gates=svc.gate_status).run(opts, progress=say)

    report = asyncio.run(go())
    if args.json:
        print_json(report)
    else:
        from lorebase.eval.runs import report_paths

        print(format_run(report))
        json_path, html_path = report_paths(settings, report["id"])
        print(f"\nreport: {html_path}\n        {json_path}")
    return 0


def format_run(report: dict[str, Any]) -> str:
    from lorebase.eval import catalog

    judge = report.get("judge")
    lines = [
        f"Eval run {report['id']}: {report['questions_total']} questions from {report['eval_set']}",
        f"model {report['model']}" + (f", adapter {report['adapter']['name']}" if report.get("adapter") else "")
        + f", embedder {report['embedder']}, {report['index_size']} vectors, commit {report.get('git_commit') or 'n/a'}",
        f"judge: {judge['name'] if judge else 'none'}",
        "",
        "| metric | value | n |",
        "|---|---:|---:|",
    ]
    for name in catalog.all_names(report["k"]):
        v = report["metrics"].get(name)
        shown = "n/a" if v is None else f"{v:.3f}"
        lines.append(f"| {name} | {shown} | {report['counts'].get(name, 0)} |")
    jf = report["judge_failures"]
    lines += ["", f"judge failures: {jf['total']} of {jf['attempted']} judged scores"
              + (f" ({', '.join(f'{k} {n}' for k, n in jf['by_kind'].items())})" if jf["total"] else "")]
    if report["problems"]:
        lines.append(f"problems: {len(report['problems'])} (see the report)")
    if report.get("gates"):
        from lorebase.finetune.gate_status import format_gates

        lines += ["", *format_gates(report["gates"])]
    return "\n".join(lines)


# --- eval compare / list --------------------------------------------------------------------------


def run_compare(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.eval.compare import compare, format_comparison
    from lorebase.eval.runs import load_report

    with opened_store() as (settings, store):
        a = load_report(settings, store, args.run_a)
        b = load_report(settings, store, args.run_b)
    result = compare(a, b, threshold=args.threshold)
    if args.json:
        print_json(result)
    else:
        print(format_comparison(result))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.eval.runs import list_runs

    with opened_store() as (_, store):
        runs = list_runs(store, limit=args.limit)
    if args.json:
        print_json(runs)
        return 0
    if not runs:
        print("no eval runs yet: run `lorebase eval`")
        return 0
    cols = ("faithfulness", "answer_relevancy", "hit@5", "mrr", "rouge_score")
    # faithfulness and answer_relevancy are judged: a run's judge stands beside them, since scores of
    # different judges are not comparable
    print("| run | status | started | model | adapter | set | judge | " + " | ".join(cols) + " | judge failures |")
    print("|---:|---|---|---|---|---|---|" + "---:|" * (len(cols) + 1))
    for r in runs:
        m = r["metrics"] or {}
        vals = " | ".join("n/a" if m.get(c) is None else f"{m[c]:.3f}" for c in cols)
        started = (r["started_at"] or "")[:19]
        print(f"| {r['id']} | {r['status']} | {started} | {r['model']} | {r['adapter'] or ''} | {Path(r['eval_set']).name} | "
              f"{r['judge'] or 'none'} | {vals} | {m.get('judge_failures', '')} |")
    return 0


# --- eval retrieval -------------------------------------------------------------------------------


def run_retrieval(args: argparse.Namespace) -> int:
    if args.file is None:
        return run_public_retrieval(args)
    from lorebase.cli.main import print_json
    from lorebase.cli.scaffold import opened_store
    from lorebase.eval.retrieval import evaluate, format_table
    from lorebase.index.search import SearchService
    from lorebase.index.sync import IndexSyncer

    with opened_store() as (settings, store):
        service = SearchService(settings, store)
        if not args.no_sync:
            IndexSyncer(settings, store, service.embedder, service.dense, progress=sys.stderr.isatty()).sync()
        report = evaluate(service, store, args.file, k=args.k)
    if args.json:
        print_json(report)
    else:
        print(format_table(report))
    return 0


def run_public_retrieval(args: argparse.Namespace) -> int:
    from lorebase.cli.main import print_json
    from lorebase.eval.public_sets import format_public, run_public
    from lorebase.services import Services
    from lorebase.settings import load_settings

    report = run_public(
        load_settings(), args.public_root, args.datasets, k=args.k, max_commits=args.max_commits,
        ingest=not args.no_ingest, baselines=not args.no_baselines,
        build=lambda s: Services.build(s, progress=sys.stderr.isatty()),
    )
    if args.json:
        print_json(report)
    else:
        print(format_public(report))
    return 0
