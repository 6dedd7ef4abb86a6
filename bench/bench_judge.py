"""The RAGAS judge on our own served model: how many judge calls give usable JSON with vLLM's
structured (JSON-schema) decoding against JSON mode with the schema only in the prompt, and how well
the judge agrees with the support check.

The answers judged are the eval set's reference answers, with the top retrieved chunks as contexts,
so the run measures the judge alone (no answer generation). Both modes judge the same samples, one
after the other. The judge is whatever `lorebase eval` would use (`open_judge`): eval.judge_url,
else the largest prepared generator profile larger than the generator, else the generator.

`--support N` also asks the judge (faithfulness, first mode only) about N sentences of each label of
the labelled support set (datasets/eval/support-check.jsonl, fixed seed): the sentence is the
response, its evidence the only context. Reported beside the support check's own verdicts on the
same sentences: precision/recall at flagging perturbed sentences, agreement and Cohen's kappa.

Needs a data home with the demo corpus ingested (LOREBASE_HOME) and the generator prepared:

    LOREBASE_HOME=... .venv/bin/python bench/bench_judge.py --questions 6
    LOREBASE_HOME=... .venv/bin/python bench/bench_judge.py --questions 4 --modes json_schema --support 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench_support_check import score as check_score  # bench/ is on sys.path, as for machine
from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from lorebase.eval.judge import Judge, open_judge  # noqa: E402
from lorebase.eval.ragas_scoring import RagasScoring, Sample  # noqa: E402
from lorebase.eval.retrieval import load_questions  # noqa: E402
from lorebase.generation.factory import open_generator  # noqa: E402
from lorebase.generation.support import check_claim  # noqa: E402
from lorebase.offline_models import larger_prepared_profile  # noqa: E402
from lorebase.services import Services  # noqa: E402
from lorebase.settings import load_settings  # noqa: E402

JUDGED = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")


def samples(svc: Services, path: Path, n: int, k: int) -> list[Sample]:
    questions, _ = load_questions(path)
    out: list[Sample] = []
    for q in questions:
        if not q.answer:
            continue
        hits = svc.search.retrieve(q.question, k, q.filters or None)
        out.append(Sample(id=q.id, question=q.question, answer=q.answer, reference=q.answer,
                          contexts=[h.chunk.text for h in hits], context_ids=[h.source.id for h in hits],
                          reference_contexts=[], reference_ids=[]))
        if len(out) == n:
            break
    return out


def log(line: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {line}", file=sys.stderr, flush=True)


def scoring_for(judge: Judge, svc: Services, only: tuple[str, ...]) -> RagasScoring:
    ev = svc.settings.eval
    scoring = RagasScoring(judge.llm, svc.search.embedder, timeout_s=ev.judge_timeout_s, concurrency=ev.judge_concurrency)
    scoring.judged = {m: v for m, v in scoring.judged.items() if m in only}
    scoring.plain = {}  # the judge alone is measured here
    return scoring


async def judge_run(svc: Services, gen: object, mode: str, batch: list[Sample], support: list[dict]) -> dict[str, object]:
    settings = svc.settings.model_copy(update={"eval": svc.settings.eval.model_copy(update={"judge_mode": mode})})
    t0 = time.perf_counter()
    judge = await open_judge(settings, gen)  # type: ignore[arg-type]
    started = time.perf_counter() - t0
    log(f"judge {judge.name} ready in {started:.0f} s")
    out: dict[str, object] = {"mode": mode, "judge": judge.name, "start_s": started}
    try:
        t0 = time.perf_counter()
        scored = await scoring_for(judge, svc, JUDGED).score_all(batch, progress=log) if batch else {}
        out["seconds"] = time.perf_counter() - t0
        out["load"] = os.getloadavg()[0]
        if support:
            t0 = time.perf_counter()
            out["support"] = await support_run(scoring_for(judge, svc, ("faithfulness",)), support)
            out["support_seconds"] = time.perf_counter() - t0
            out["support_load"] = os.getloadavg()[0]
    finally:
        await judge.aclose()
    per_metric: dict[str, dict[str, object]] = {}
    for m in JUDGED if batch else ():
        values = [s.scores.get(m) for s in scored.values()]
        ok = [v for v in values if v is not None]
        kinds = Counter(s.failures[m]["kind"] for s in scored.values() if m in s.failures)
        for message in sorted({s.failures[m]["message"][:200] for s in scored.values() if m in s.failures}):
            log(f"{mode} {m} failed: {message}")
        per_metric[m] = {"scored": len(ok), "of": len(values), "mean": statistics.fmean(ok) if ok else None,
                         "failures": dict(kinds)}
    out["metrics"] = per_metric
    return out


# --- the judge against the support check, on the labelled set ----------------------------------

SUPPORT_QUESTION = "What does the source say?"  # faithfulness needs a question; the claim is the answer


def support_sample(path: Path, per_label: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    picked: list[dict] = []
    for label in sorted({r["label"] for r in rows}):
        of_label = [r for r in rows if r["label"] == label]
        picked += rng.sample(of_label, min(per_label, len(of_label)))
    return picked


async def support_run(scoring: RagasScoring, rows: list[dict]) -> list[dict]:
    samples = [Sample(id=r["id"], question=SUPPORT_QUESTION, answer=r["claim"], reference=None, contexts=[r["evidence"]],
                      context_ids=[r["doc"]], reference_contexts=[], reference_ids=[]) for r in rows]
    scored = await scoring.score_all(samples, progress=log)
    failed = {r["id"]: scored[r["id"]].failures.get("faithfulness", {}) for r in rows}
    return [{**r, "judge": scored[r["id"]].scores.get("faithfulness"), "judge_failure": failed[r["id"]].get("kind"),
             "judge_message": failed[r["id"]].get("message")} for r in rows]


def kappa(a: list[bool], b: list[bool]) -> float | None:
    n = len(a)
    if not n:
        return None
    seen = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return None if chance == 1 else (seen - chance) / (1 - chance)


def support_table(rows: list[dict], threshold: float) -> list[str]:
    usable = [r for r in rows if r["judge"] is not None]
    check = {r["id"]: not check_claim(r["claim"], r["evidence"], threshold).supported for r in rows}
    labels = Counter(r["label"] for r in rows)
    usable_by = Counter(r["label"] for r in usable)
    fails = Counter(r["judge_failure"] for r in rows if r["judge"] is None)
    lines = [
        f"Sample: {len(rows)} sentences ({', '.join(f'{k} {v}' for k, v in sorted(labels.items()))}); "
        f"usable judge scores {len(usable)}/{len(rows)} ({', '.join(f'{k} {usable_by[k]}/{v}' for k, v in sorted(labels.items()))}); "
        f"lost: {', '.join(f'{k} {v}' for k, v in fails.items()) or 'none'}.",
        "",
        "| flags a sentence as perturbed | on | precision | recall | rejected: " + " | ".join(sorted(labels)) + " | agreement with the check | kappa |",
        "|---|---|---:|---:|" + "---:|" * len(labels) + "---:|---:|",
    ]

    def row(name: str, on: list[dict], flags: list[bool], vs: list[bool] | None) -> str:
        sc = check_score(on, flags)
        agree = "—" if vs is None else f"{sum(x == y for x, y in zip(flags, vs, strict=True)) / len(on):.2f}"
        k = None if vs is None else kappa(flags, vs)
        rejected = " | ".join(f"{sc.get(f'rejected_{lab}', 0):.2f}" for lab in sorted(labels))
        return f"| {name} | {len(on)} | {sc['precision']:.2f} | {sc['recall']:.2f} | {rejected} | {agree} | {'—' if k is None else f'{k:.2f}'} |"

    lines.append(row(f"support check (threshold {threshold})", rows, [check[r["id"]] for r in rows], None))
    if usable:
        on_check = [check[r["id"]] for r in usable]
        if len(usable) < len(rows):  # the check again, on the sentences the judge scored
            lines.append(row(f"support check (threshold {threshold})", usable, on_check, None))
        for below in (1.0, 0.5):
            lines.append(row(f"judge: faithfulness < {below:g}", usable, [r["judge"] < below for r in usable], on_check))
    return lines


async def main_async(args: argparse.Namespace) -> str:
    settings = load_settings()
    svc = await asyncio.to_thread(Services.build, settings)
    batch = await asyncio.to_thread(samples, svc, args.set, args.questions, args.k) if args.questions else []
    support = support_sample(args.support_set, args.support, args.seed) if args.support else []
    # The generator is started only when it is the judge: a larger profile or a URL judges alone.
    judged_elsewhere = settings.eval.judge_url or (larger_prepared_profile(settings) and settings.generation.backend == "vllm")
    gen = None if judged_elsewhere else await open_generator(settings)
    try:
        runs = [await judge_run(svc, gen, mode, batch, support if i == 0 else []) for i, mode in enumerate(args.modes)]
    finally:
        if gen is not None:
            await gen.aclose()
        svc.store.close()
    ev = settings.eval
    lines = [
        f"Machine: {cpu_name('?')}, {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}; "
        f"judge {runs[0]['judge']}, started in {runs[0]['start_s']:.0f} s; judge timeout {ev.judge_timeout_s:g} s per "
        f"metric, {ev.judge_concurrency} call(s) at once.",
    ]
    if batch:
        lines += [
            f"RAGAS metrics: {len(batch)} questions from {args.set.name}, reference answers judged against the top "
            f"{args.k} retrieved chunks.",
            "",
            "| judge mode | metric | scored | mean | failures | run time | load (1 min) at the end |",
            "|---|---|---:|---:|---|---:|---:|",
        ]
        for r in runs:
            for m, v in r["metrics"].items():  # type: ignore[union-attr]
                mean = "—" if v["mean"] is None else f"{v['mean']:.3f}"
                fails = ", ".join(f"{k} {n}" for k, n in v["failures"].items()) or "none"
                lines.append(f"| {r['mode']} | {m} | {v['scored']}/{v['of']} | {mean} | {fails} | {r['seconds']:.0f} s | {r['load']:.1f} |")
    if support:
        r = runs[0]
        lines += ["", f"Judge against the support check ({r['mode']}, {args.support_set.name}, {args.support} per label, "
                  f"seed {args.seed}; {r['support_seconds']:.0f} s, load (1 min) {r['support_load']:.1f} at the end):", ""]
        lines += support_table(r["support"], args.threshold)  # type: ignore[arg-type]
        if args.dump:
            args.dump.write_text("".join(json.dumps(x) + "\n" for x in r["support"]), encoding="utf-8")  # type: ignore[union-attr]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=REPO / "datasets" / "eval" / "demo.jsonl")
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("-k", type=int, default=3, help="retrieved chunks per question as contexts")
    ap.add_argument("--modes", nargs="+", default=["json_schema", "json"], choices=["json_schema", "json"])
    ap.add_argument("--support", type=int, default=0, help="sentences per label of the support set to judge (0: none)")
    ap.add_argument("--support-set", type=Path, default=REPO / "datasets" / "eval" / "support-check.jsonl")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.6, help="the support check's answer.support_threshold")
    ap.add_argument("--dump", type=Path, help="write each judged support sentence with its score here (JSONL)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = asyncio.run(main_async(args))
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
