"""Would moving or adding citations after the fact make meeting answers cite the gold span?

Reads the per-question records of a `bench/bench_answers.py` run (its `--out` file) and, for each
answer the model wrote itself on the QMSum dev questions, rebuilds the evidence the answer path
showed (the same retrieval and evidence selection, no model). Then it scores two rewrites of the
answer's citations without generating anything:

- **move**: a sentence cites instead the shown source whose word share with it is at least
  ``--margin`` higher than its cited source's, when that source passes the served support check;
- **add**: a sentence also cites every other shown source that passes the check.

    LOREBASE_HOME=H .venv/bin/python bench/bench_citation_moves.py /path/to/bench-answers.json [--row small]

Prints where the gold stands (among the retrieved chunks, among the evidence shown, the first
shown source on a gold span), then for each rewrite how many answers cite the gold before and
after, and how many answers have a sentence that some uncited source also passes the check for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("answers", type=Path, help="the --out file of bench/bench_answers.py")
    ap.add_argument("--row", default="small")
    ap.add_argument("--questions", type=Path, default=ROOT / "datasets" / "eval" / "qmsum-dev.jsonl")
    ap.add_argument("--margin", type=float, default=0.15)
    args = ap.parse_args(argv)

    from lorebase.citations import Citation, cite
    from lorebase.eval.answers import cites_gold, load_answer_questions, scope
    from lorebase.generation import grounding
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.prompts import Evidence
    from lorebase.generation.support import check_claim
    from lorebase.services import Services
    from lorebase.settings import load_settings

    svc = Services.build(load_settings())
    service = AnswerService(svc.settings, svc.search, None)  # type: ignore[arg-type]  # evidence selection only
    threshold = svc.settings.answer.support_threshold
    records = {r["id"]: r for r in json.loads(args.answers.read_text())["results"][args.row]["qmsum-dev"]["records"]}

    def claims(answer: str, shown: dict[str, str]) -> list[tuple[str, list[str]]]:
        """Each sentence with the sources the model cited for it, read by the served check (which
        gives citations written after a full stop to the sentence before)."""
        g = grounding.check(answer, [Evidence(Citation(id=lbl, source_id=lbl, kind="transcript", title=lbl), text)
                                     for lbl, text in shown.items()], threshold)
        return [(c.text, list(c.labels)) for c in g.sentences if c.labels and not c.added]

    counts: dict[str, Counter[tuple[bool, bool]]] = {"move": Counter(), "add": Counter()}
    another_passes = generated = 0
    first_gold: Counter[int] = Counter()  # position of the first shown source on a gold span (0: none)
    gold_chunks = 0
    for q in load_answer_questions(args.questions):
        rec = records.get(q.id)
        if rec is None:
            continue
        hits = svc.search.retrieve(q.question, None, scope(q))
        cites = [cite(h.source, h.chunk, f"S{i}", score=h.score) for i, h in enumerate(hits, start=1)]
        gold_chunks += cites_gold(q, cites)
        selections = service._select(q.question, hits, cites)
        first_gold[next((i for i, s in enumerate(selections, start=1) if cites_gold(q, [s.citation])), 0)] += 1
        if rec["mode"] != "generated":
            continue
        generated += 1
        shown = {s.citation.id: s.text for s in selections}
        gold = {s.citation.id for s in selections if cites_gold(q, [s.citation])}
        moved: set[str] = set()
        added: set[str] = set()
        passes_elsewhere = False
        for bare, cited in claims(rec["answer"], shown):
            others = [lbl for lbl in shown if lbl not in cited and check_claim(bare, shown[lbl], threshold).supported]
            passes_elsewhere |= bool(others)
            added.update(cited, others)
            share = {lbl: grounding.support(bare, text) for lbl, text in shown.items()}
            best = max(share, key=lambda lbl: share[lbl])
            if best not in cited and share[best] >= max(share[c] for c in cited) + args.margin and best in others:
                moved.add(best)
            else:
                moved.update(cited)
        counts["move"][(bool(rec["cites_gold"]), bool(moved & gold))] += 1
        counts["add"][(bool(rec["cites_gold"]), bool(added & gold))] += 1
        another_passes += passes_elsewhere
    out: dict[str, object] = {
        "questions": sum(first_gold.values()), "gold_in_retrieved_chunks": gold_chunks,
        "gold_in_evidence_shown": sum(n for pos, n in first_gold.items() if pos),
        "first_gold_source": {f"S{pos}" if pos else "none": n for pos, n in sorted(first_gold.items())},
        "answers_citing_gold": sum(1 for r in records.values() if r["cites_gold"]),
        "generated_answers": generated, "with_a_sentence_an_uncited_source_also_passes": another_passes,
    }
    for name, c in counts.items():
        out[name] = {"cites_gold_before": c[(True, True)] + c[(True, False)], "cites_gold_after": c[(True, True)] + c[(False, True)],
                     "gained": c[(False, True)], "lost": c[(True, False)]}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
