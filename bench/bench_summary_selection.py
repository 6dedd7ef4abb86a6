"""How a long summary's points are chosen, measured without re-running the model for each choice.

A meeting too long for one call is summarised in parts; the parts' bullets that pass the check
(the "mapped" points) and the meeting's own salient sentences (the quotes) then compete for
`generation.summary_words`. The model's part is slow (a minute a meeting on 2 cores) and the
choice is cheap, so this script splits them:

    # once per set: the map step of the real summary path, the checked bullets kept in a file
    LOREBASE_HOME=<home with the meetings> .venv/bin/python bench/bench_summary_selection.py map \
        --set datasets/eval/qmsum-dev-summaries.jsonl --out /tmp/dev-map.json [--generator small] [--dtype bfloat16]
    # then any number of times: each way of choosing, scored against QMSum's references
    LOREBASE_HOME=<same home> .venv/bin/python bench/bench_summary_selection.py score /tmp/dev-map.json

Ways of choosing (`score`):
- ``frequent``: what ships (`salience.salient_points`, SumBasic): the meeting's first
  `generation.summary_opening` sentences that say something, then the bullets scored by how often
  the meeting uses their words; the model's points first, then the quotes. ``frequent, no
  opening``: the same without the opening sentences (what shipped before 2026-12-07).
- ``central λ``: maximal marginal relevance over MiniLM vectors (the configured embedder): a
  bullet scores λ·cos(bullet, centroid of the quotes) − (1−λ)·max cos(bullet, chosen); the model's
  points first, then the quotes.
- ``central λ mixed``: the same with points and quotes in one pool.

ROUGE-1/2/L F1 (`rouge_score`, Porter stemming), means over the meetings, with how many meetings
each row raises or lowers against ``frequent`` (ROUGE-1). Choose on QMSum train meetings
(``.evaldata/qmsum-tuning-summaries.jsonl`` in a home where ``.evaldata/tuning-meetings`` was
ingested) and confirm on the dev ones; QMSum's test split is never used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_summaries import score  # noqa: E402  # bench/ is on sys.path when a script in it runs
from machine import cpu_name  # noqa: E402

LAMBDAS = (0.4, 0.5, 0.6, 0.7, 0.85)


async def run_map(args: argparse.Namespace) -> None:
    """The map step of `SummaryService` for each meeting: its batches' bullets that pass the check."""
    from lorebase.cli.scaffold import running_services
    from lorebase.generation.prompts import summary_messages
    from lorebase.generation.summarize import _Calls, check_bullets
    from lorebase.settings import load_settings

    if args.instruction:  # a different system prompt for the map calls, to try one (this run only)
        import lorebase.generation.prompts as prompts

        prompts.SUMMARY_SYSTEM = args.instruction
    overrides: dict = {"models": {"generator": args.generator}}
    if args.dtype:
        overrides["generation"] = {"vllm_dtype": args.dtype}
    settings = load_settings(**overrides)
    rows = [json.loads(x) for x in args.set.read_text().splitlines() if x.strip()][: args.limit]
    out: list[dict] = []
    async with running_services(settings) as svc:
        service = svc.summaries
        assert service is not None
        for row in rows:
            target = service.target(lecture=row["meeting"])
            parts, _ = service._parts(target)
            batches = service._batches(target.title, parts)
            partials: list[str] = []
            calls = [(summary_messages(target.title, [(p.ref, p.text) for p in b]), b) for b in batches]
            async for _, texts in _Calls(service, None).all(calls):
                partials = texts
            checked = [check_bullets(t, b, settings.answer.support_threshold) for t, b in zip(partials, batches, strict=True)]
            mapped = [ln for text, v in checked if v.supported for ln in text.split("\n") if ln.strip()]
            out.append({"meeting": row["meeting"], "reference": row["answer"], "batches": len(batches), "mapped": mapped})
            args.out.write_text(json.dumps(out, indent=1))  # after every meeting: a stopped run keeps what it has
            print(f"{row['meeting']}: {len(batches)} parts, {len(mapped)} checked bullets", file=sys.stderr)


def central(points: list[str], quotes: list[str], vectors: dict[str, np.ndarray], words: int, lam: float,
            points_first: bool) -> list[str]:
    """Maximal marginal relevance around the centroid of the quotes, up to ``words`` words."""
    pool = points + quotes
    if not pool:
        return []
    v = np.stack([vectors[b] for b in pool])
    c = np.stack([vectors[b] for b in (quotes or points)]).mean(0)
    relevance = v @ (c / np.linalg.norm(c))
    groups = [list(range(len(points))), list(range(len(points), len(pool)))] if points_first else [list(range(len(pool)))]
    chosen: list[int] = []
    used = 0
    for left in groups:
        while left and used < words:
            redundancy = (v[left] @ v[chosen].T).max(1) if chosen else np.zeros(len(left))
            best = left[int(np.argmax(lam * relevance[left] - (1 - lam) * redundancy))]
            left.remove(best)
            chosen.append(best)
            used += len(pool[best].split())
    return [pool[i] for i in chosen]


def oracle(pool: list[str], reference: str) -> list[str]:
    """The bullets that, added one at a time while ROUGE-1 rises, score best against the reference:
    how far choosing alone could go (an upper bound that reads the answer)."""
    chosen: list[str] = []
    best = 0.0
    left = list(pool)
    while left:
        top, pick = max((score(reference, "\n".join(chosen + [b]))["rouge1"], i) for i, b in enumerate(left))
        if top <= best:
            break
        best = top
        chosen.append(left.pop(pick))
    return chosen


def run_score(args: argparse.Namespace) -> str:
    from lorebase.generation.grounding import content_words
    from lorebase.generation.salience import MIN_WORDS, opening, salient_points
    from lorebase.generation.summarize import MIN_BULLET_WORDS, SummaryService, _position, _quotes
    from lorebase.index.embeddings import LorebaseEmbedding
    from lorebase.settings import load_settings
    from lorebase.store import Store

    settings = load_settings()
    store = Store(settings.db_url)
    service = SummaryService(settings, store, None)  # type: ignore[arg-type]  # reading parts needs no model
    embedder = LorebaseEmbedding.configured(settings)
    words = args.words or settings.generation.summary_words
    label = re.compile(r"^(?:[-*•]\s*)?(?:[A-Z][\w .'-]{0,40}:\s+)?")
    ref = re.compile(r"\s*\[(?:S\d+|\d{1,2}:\d\d(?::\d\d)?)\]")

    def plain(bullet: str) -> str:  # what a bullet says: no dash, speaker or reference
        return label.sub("", ref.sub("", bullet)).strip()

    rows: dict[str, list[np.ndarray]] = {}
    try:
        for rec in json.loads(args.cache.read_text()):
            # a one-hour meeting never fits one call: it is read by its salient sentences, as `_parts` does
            parts, _ = service._read(service.target(lecture=rec["meeting"]), settings.generation.summary_sentences_per_part)
            texts = [p.text for p in parts]
            points = [b for b in rec["mapped"] if len(content_words(plain(b))) >= MIN_BULLET_WORDS]
            quotes = [q for q in _quotes(parts) if len(content_words(plain(q))) >= MIN_WORDS]
            pool = list(dict.fromkeys(points + quotes))
            vectors = dict(zip(pool, embedder.embed([plain(b) for b in pool]), strict=True))
            lead = opening(_quotes(parts), settings.generation.summary_opening)
            choices = {"frequent": salient_points(rec["mapped"], texts, words, _quotes(parts), lead=lead),
                       "frequent, no opening": salient_points(rec["mapped"], texts, words, _quotes(parts))}
            if args.oracle:
                choices["oracle (reads the reference)"] = oracle(pool, rec["reference"])
            for lam in LAMBDAS:
                choices[f"central {lam}"] = central(points, quotes, vectors, words, lam, points_first=True)
                choices[f"central {lam} mixed"] = central(points, quotes, vectors, words, lam, points_first=False)
            for name, chosen in choices.items():
                text = "\n".join(sorted(chosen, key=_position))  # as shipped: in the meeting's order
                rows.setdefault(name, []).append(np.array(list(score(rec["reference"], text).values())))
            print(f"{rec['meeting']}: " + ", ".join(f"{k} {v[-1][0]:.1f}" for k, v in rows.items() if "mixed" not in k),
                  file=sys.stderr)
    finally:
        store.close()
    base = np.array([r[0] for r in rows["frequent"]])
    lines = [f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}; {args.cache.name}; {len(base)} meetings; "
             f"summary_words {words}.", "",
             "| choice | ROUGE-1 | ROUGE-2 | ROUGE-L | meetings up / down (ROUGE-1, against frequent) |",
             "|---|---:|---:|---:|---:|"]
    for name, scores in rows.items():
        m = np.mean(scores, 0)
        r1 = np.array([s[0] for s in scores])
        lines.append(f"| {name} | {m[0]:.1f} | {m[1]:.1f} | {m[2]:.1f} | {int((r1 > base).sum())} / {int((r1 < base).sum())} |")
    lines.append(f"\nmedian ROUGE-1 of frequent: {statistics.median(base):.1f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("map", help="run the map step once per meeting and keep its checked bullets")
    m.add_argument("--set", type=Path, default=REPO / "datasets/eval/qmsum-dev-summaries.jsonl")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--generator", default="small")
    m.add_argument("--dtype", choices=["float32", "bfloat16", "auto"])
    m.add_argument("--limit", type=int)
    m.add_argument("--instruction", help="the map calls' system prompt instead of prompts.SUMMARY_SYSTEM")
    s = sub.add_parser("score", help="score each way of choosing on a map file")
    s.add_argument("cache", type=Path)
    s.add_argument("--oracle", action="store_true", help="add the greedy oracle row (slow: minutes a meeting)")
    s.add_argument("--words", type=int, help="the word budget (default: generation.summary_words)")
    args = ap.parse_args()
    if args.cmd == "map":
        asyncio.run(run_map(args))
    else:
        print(run_score(args))


if __name__ == "__main__":
    main()
