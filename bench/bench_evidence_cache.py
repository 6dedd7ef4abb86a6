"""Choosing evidence lines with and without the vector cache (`answer.evidence_vector_cache`), on real questions.

Each question's evidence is chosen the way the answer service does it (retrieval as served, then every line
of every retrieved chunk embedded and scored), twice in one process: cache off, then on. The questions run
in file order, so several questions about one meeting or one repository follow each other, as when people
ask follow-ups; a second round repeats them (the same prompt asked again, or answers sampled several times).
Reported: the median seconds per question and the lines embedded per question, per round and setting. No
generator is started.

    LOREBASE_HOME=<home with the meetings ingested> .venv/bin/python bench/bench_evidence_cache.py \
        .evaldata/retrieval/qmsum-dev.jsonl [--limit N] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_name  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path, help="a retrieval-eval file (lorebase eval retrieval format)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="passes over the questions (default 2)")
    args = ap.parse_args(argv)

    from lorebase.citations import cite
    from lorebase.cli.scaffold import built_services
    from lorebase.eval.retrieval import load_questions
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.vector_cache import VectorCache

    questions, _ = load_questions(args.questions)
    questions = questions[: args.limit] if args.limit else questions
    rows = []
    with built_services() as svc:
        settings = svc.settings
        service = AnswerService(settings, svc.search, None)  # type: ignore[arg-type]  # evidence only, no generator
        retrieved = []
        for q in questions:  # retrieval once, outside the timing: only the evidence step differs
            hits, _ = svc.search.retrieve_checked(q.question, None, q.filters or None, check=False)
            retrieved.append((q, hits, [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, 1)]))
        service._select(questions[0].question, retrieved[0][1], retrieved[0][2])  # warm the model up
        for size in (0, settings.answer.evidence_vector_cache):
            service.vectors = cache = VectorCache(size)
            for r in range(args.rounds):
                times, lines = [], []
                for q, hits, cites in retrieved:
                    before = cache.misses
                    t0 = time.perf_counter()
                    service._select(q.question, hits, cites)
                    times.append(time.perf_counter() - t0)
                    lines.append(cache.misses - before)
                rows.append({"cache": size, "round": r + 1, "questions": len(times),
                             "median_s": round(statistics.median(times), 4),
                             "lines_embedded_median": statistics.median(lines), "lines_embedded_total": sum(lines)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_name()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, {len(questions)} questions of {args.questions.name}")
    print("| cache entries | round | median s per question | lines embedded per question (median) | lines embedded in all |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['cache']:,} | {r['round']} | {r['median_s']:.3f} | {r['lines_embedded_median']:.0f} | {r['lines_embedded_total']:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
