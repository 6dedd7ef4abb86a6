"""The RAGAS judge on our own served model: how many judge calls give usable JSON with vLLM's
structured (JSON-schema) decoding against JSON mode with the schema only in the prompt.

The answers judged are the eval set's reference answers, with the top retrieved chunks as contexts,
so the run measures the judge alone (no answer generation). Both modes judge the same samples, one
after the other, against one vLLM server.

Needs a data home with the demo corpus ingested (LOREBASE_HOME) and the generator prepared:

    LOREBASE_HOME=... .venv/bin/python bench/bench_judge.py --questions 6
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from lorebase.eval.judge import open_judge  # noqa: E402
from lorebase.eval.ragas_scoring import RagasScoring, Sample  # noqa: E402
from lorebase.eval.retrieval import load_questions  # noqa: E402
from lorebase.generation.factory import open_generator  # noqa: E402
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


async def judge_run(svc: Services, gen: object, mode: str, batch: list[Sample]) -> dict[str, object]:
    settings = svc.settings.model_copy(update={"eval": svc.settings.eval.model_copy(update={"judge_mode": mode})})
    judge = await open_judge(settings, gen)  # type: ignore[arg-type]
    scoring = RagasScoring(judge.llm, svc.search.embedder, timeout_s=settings.eval.judge_timeout_s)
    t0 = time.perf_counter()
    try:
        scored = await scoring.score_all(batch)
    finally:
        await judge.aclose()
    seconds = time.perf_counter() - t0
    per_metric: dict[str, dict[str, object]] = {}
    for m in JUDGED:
        values = [s.scores.get(m) for s in scored.values()]
        ok = [v for v in values if v is not None]
        kinds = Counter(s.failures[m]["kind"] for s in scored.values() if m in s.failures)
        per_metric[m] = {"scored": len(ok), "of": len(values), "mean": statistics.fmean(ok) if ok else None,
                         "failures": dict(kinds)}
    return {"mode": mode, "judge": judge.name, "seconds": seconds, "metrics": per_metric}


async def main_async(args: argparse.Namespace) -> str:
    settings = load_settings()
    svc = await asyncio.to_thread(Services.build, settings)
    batch = await asyncio.to_thread(samples, svc, args.set, args.questions, args.k)
    gen = await open_generator(settings)
    try:
        runs = [await judge_run(svc, gen, mode, batch) for mode in args.modes]
    finally:
        await gen.aclose()
        svc.store.close()
    lines = [
        f"Machine: {cpu_name('?')}, {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}; "
        f"load (1 min) {os.getloadavg()[0]:.1f}; judge {runs[0]['judge']}; {len(batch)} questions from "
        f"{args.set.name}, reference answers judged against the top {args.k} retrieved chunks.",
        "",
        "| judge mode | metric | scored | mean | failures | run time |",
        "|---|---|---:|---:|---|---:|",
    ]
    for r in runs:
        for m, v in r["metrics"].items():  # type: ignore[union-attr]
            mean = "—" if v["mean"] is None else f"{v['mean']:.3f}"
            fails = ", ".join(f"{k} {n}" for k, n in v["failures"].items()) or "none"
            lines.append(f"| {r['mode']} | {m} | {v['scored']}/{v['of']} | {mean} | {fails} | {r['seconds']:.0f} s |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=REPO / "datasets" / "eval" / "demo.jsonl")
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("-k", type=int, default=3, help="retrieved chunks per question as contexts")
    ap.add_argument("--modes", nargs="+", default=["json_schema", "json"], choices=["json_schema", "json"])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = asyncio.run(main_async(args))
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
