"""Meeting summaries against QMSum's reference summaries: the general query of each train/validation
meeting ("Summarize the whole meeting") in ``datasets/eval/qmsum-dev-summaries.jsonl``.

Each meeting is summarised through the conversation service's summary mode, exactly as a user asking
"Summarise Bed002" in the chat or `lorebase summarize Bed002` would get it (map over the meeting's
parts, batched, then reduce; every bullet checked against the part it cites). Scored with ROUGE-1/2/L
F1 (the `rouge_score` package, Porter stemming; QMSum's paper used the Perl ROUGE, so published
figures are close to but not exactly comparable), the share of bullets that carry a citation, the
share the check kept, and wall time per meeting.

    LOREBASE_HOME=<home with the QMSum meetings> .venv/bin/python bench/bench_summaries.py \
        [--generator small] [--dtype bfloat16] [--limit N] [--out results.json]

The data home must hold the meetings as SRT (`bench/build_evalsets.py`). QMSum's test split is
reserved for acceptance and is not in the set. Summary settings are chosen on other train meetings:
``--set .evaldata/qmsum-tuning-summaries.jsonl`` (written by `bench/build_evalsets.py`) with
``LOREBASE_HOME`` a home where ``.evaldata/tuning-meetings`` was ingested.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from machine import cpu_name  # noqa: E402  # bench/machine.py (scripts run from bench/ on sys.path)

BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
CITED = re.compile(r"\[(?:S\d+|\d{1,2}:\d\d(?::\d\d)?)[^\]]*\]")


def score(reference: str, summary: str) -> dict[str, float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    plain = CITED.sub("", summary)
    return {k: round(v.fmeasure * 100, 2) for k, v in scorer.score(reference, plain).items()}


def bullets(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if BULLET.match(ln)]


async def run(args: argparse.Namespace) -> list[dict]:
    from lorebase.cli.scaffold import running_services
    from lorebase.errors import LorebaseError
    from lorebase.generation.conversation import ConversationRequest
    from lorebase.settings import load_settings

    overrides: dict = {"models": {"generator": args.generator}}
    if args.dtype:
        overrides["generation"] = {"vllm_dtype": args.dtype}
    settings = load_settings(**overrides)
    rows = [json.loads(x) for x in args.set.read_text().splitlines() if x.strip()][: args.limit]
    out = []
    async with running_services(settings) as svc:
        for row in rows:
            t0 = time.perf_counter()
            try:
                s = await svc.conversation.complete(ConversationRequest.ask(f"Summarise {row['meeting']}", mode="summary",
                                                                            lecture=row["meeting"]))
            except LorebaseError as e:  # a meeting missing from the home: say so, go on with the others
                print(f"{row['meeting']}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
                continue
            wall = time.perf_counter() - t0
            shown = bullets(s.text)
            v = s.verdict
            rec = {"id": row["id"], "meeting": row["meeting"], "wall_s": round(wall, 1), "summary": s.text,
                   "bullets": len(shown), "cited": sum(1 for b in shown if CITED.search(b)),
                   "removed": v.removed if v else None, **score(row["answer"], s.text)}
            out.append(rec)
            if args.out:  # after every meeting: a long run stopped early keeps what it measured
                args.out.write_text(json.dumps(out, indent=1))
            print(f"{row['meeting']}: R1 {rec['rouge1']:.1f} R2 {rec['rouge2']:.1f} RL {rec['rougeL']:.1f}, "
                  f"{rec['bullets']} bullets ({rec['cited']} cited, {rec['removed']} removed), {wall:.0f} s", file=sys.stderr)
    return out


def naive(args: argparse.Namespace) -> list[dict]:
    """Two baselines without a model, on the same meetings: the first ``--words`` words of the
    cleaned transcript (LEAD), and its sentences chosen SumBasic-style up to ``--words`` (what the
    select step's fill would pick with no bullet from the model)."""
    from lorebase.generation.disfluency import clean_transcript
    from lorebase.generation.salience import salient_passages, salient_points
    from lorebase.generation.summary_targets import find_target
    from lorebase.settings import load_settings
    from lorebase.store import Store

    settings = load_settings()
    store = Store(settings.db_url)
    rows = [json.loads(x) for x in args.set.read_text().splitlines() if x.strip()][: args.limit]
    out = []
    try:
        for row in rows:
            src = find_target(store, lecture=row["meeting"]).sources[0]
            texts = [clean_transcript(c.text) for c in src.chunks if c.joins is None]
            talk = " ".join(re.sub(r"^[^:\n]{1,40}:\s+", "", ln) for t in texts for ln in t.split("\n"))
            lead = " ".join(talk.split()[: args.words])
            salient = salient_passages(texts, settings.generation.summary_sentences_per_part)
            picked = salient_points([], salient, args.words, [f"- {ln}" for t in salient for ln in t.split("\n") if ln])
            for name, text in (("lead", lead), ("sumbasic", "\n".join(picked))):
                out.append({"meeting": row["meeting"], "baseline": name, **score(row["answer"], text)})
    finally:
        store.close()
    return out


def table(records: list[dict], args: argparse.Namespace) -> str:
    def mean(k: str) -> float:
        return statistics.fmean(r[k] for r in records)

    n_b = sum(r["bullets"] for r in records)
    load = Path("/proc/loadavg").read_text().split()[:3]
    return "\n".join([
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}; load {' '.join(load)}; generator {args.generator}"
        f"{' ' + args.dtype if args.dtype else ''}; {len(records)} meetings.",
        "",
        "| meetings | ROUGE-1 | ROUGE-2 | ROUGE-L | bullets (median) | bullets cited | bullets removed by the check | wall s (median) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {len(records)} | {mean('rouge1'):.1f} | {mean('rouge2'):.1f} | {mean('rougeL'):.1f} | "
        f"{statistics.median(r['bullets'] for r in records):.0f} | {sum(r['cited'] for r in records) / max(n_b, 1):.0%} | "
        f"{sum(r['removed'] or 0 for r in records)} | {statistics.median(r['wall_s'] for r in records):.0f} |",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=REPO / "datasets/eval/qmsum-dev-summaries.jsonl")
    ap.add_argument("--generator", default="small", help="a profile (tiny, small, base) or a model folder")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="vLLM precision (default: the setting)")
    ap.add_argument("--limit", type=int, default=None, help="the first N meetings")
    ap.add_argument("--out", type=Path, default=None, help="also write every summary and score as JSON here")
    ap.add_argument("--naive", action="store_true", help="only the baselines without a model (LEAD and SumBasic)")
    ap.add_argument("--words", type=int, default=120, help="with --naive: the baselines' length in words")
    args = ap.parse_args()
    if args.naive:
        rows = naive(args)
        for name in ("lead", "sumbasic"):
            mine = [r for r in rows if r["baseline"] == name]
            print(f"| {name} {args.words} words | {len(mine)} | " + " | ".join(
                f"{statistics.fmean(r[k] for r in mine):.1f}" for k in ("rouge1", "rouge2", "rougeL")) + " |")
        return
    records = asyncio.run(run(args))
    if not records:
        sys.exit("no meeting of the set could be summarised in this data home")
    print(table(records, args))


if __name__ == "__main__":
    main()
