"""Where should an answer abstain? The best evidence line's score on answerable and unanswerable dev
questions, side by side, and the abstention each threshold would give.

    LOREBASE_HOME=H .venv/bin/python bench/calibrate_abstention.py ANSWERABLE.jsonl UNANSWERABLE.jsonl

The score is the one `answer.min_relevance` and `answer.min_evidence_score` are compared with: the
blended word-overlap and embedder cosine of the best evidence unit among the top three retrieved
chunks (lorebase/generation/evidence.py). No generator is needed. Tune on dev sets only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lorebase.citations import cite
from lorebase.eval.answers import load_answer_questions
from lorebase.generation.answer import AnswerService
from lorebase.services import Services
from lorebase.settings import load_settings


def best_scores(svc: Services, path: Path) -> list[float]:
    service = AnswerService(svc.settings, svc.search, None)  # type: ignore[arg-type]
    out = []
    for q in load_answer_questions(path):
        hits = svc.search.retrieve(q.question, None, None)
        cites = [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, start=1)]
        sels = service._select(q.question, hits, cites) if hits else []
        out.append(max((s.score for s in sels[:3]), default=0.0))
    return out


def main() -> None:
    answerable, unanswerable = map(Path, sys.argv[1:3])
    svc = Services.build(load_settings())
    try:
        a, u = best_scores(svc, answerable), best_scores(svc, unanswerable)
    finally:
        svc.store.close()
    print(f"answerable n={len(a)} unanswerable n={len(u)}")
    print("threshold  abstains(unanswerable)  false_abstention(answerable)")
    for t in [x / 100 for x in range(30, 91, 5)]:
        print(f"{t:.2f}       {sum(s < t for s in u) / len(u):.3f}                  {sum(s < t for s in a) / len(a):.3f}")


if __name__ == "__main__":
    main()
