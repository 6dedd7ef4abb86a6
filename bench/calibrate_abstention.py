"""Where should an answer abstain? Two signals on answerable and unanswerable dev questions, side by side.

    LOREBASE_HOME=H .venv/bin/python bench/calibrate_abstention.py QUESTIONS.jsonl [QUESTIONS.jsonl ...]

Each question is searched within its repository or meeting, as `lorebase eval answers` does. Whether a
question is answerable comes from its file (`gold_files` or `gold_spans`: answerable; neither:
unanswerable, as in datasets/eval/unanswerable-dev.jsonl).

1. The best evidence line's score: what `answer.min_relevance` and `answer.min_evidence_score` are
   compared with (the blended word-overlap and embedder cosine of the best evidence unit among the
   top three retrieved chunks, lorebase/generation/evidence.py), and the abstention each threshold
   would give.
2. The subject-word check (`answer.abstain_when_unmentioned`, lorebase/index/coverage.py): how many
   questions of each kind it abstains on, and which.

No generator is needed. Tune on dev sets only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lorebase.citations import cite
from lorebase.eval.answers import AnswerQuestion, load_answer_questions, scope
from lorebase.generation.answer import AnswerService
from lorebase.services import Services
from lorebase.settings import load_settings


def best_score(svc: Services, service: AnswerService, q: AnswerQuestion) -> float:
    hits = svc.search.retrieve(q.question, None, scope(q))
    cites = [cite(h.source, h.chunk, f"S{i}") for i, h in enumerate(hits, start=1)]
    sels = service._select(q.question, hits, cites) if hits else []
    return max((s.score for s in sels[:3]), default=0.0)


def main() -> None:
    questions = [q for arg in sys.argv[1:] for q in load_answer_questions(Path(arg))]
    svc = Services.build(load_settings())
    service = AnswerService(svc.settings, svc.search, None)  # type: ignore[arg-type]  # selection only
    scores: dict[str, list[float]] = {}
    flagged: dict[str, list[tuple[AnswerQuestion, list[str]]]] = {}
    try:
        for q in questions:
            scores.setdefault(q.kind, []).append(best_score(svc, service, q))
            flagged.setdefault(q.kind, []).append((q, svc.search.unmentioned(q.question, scope(q))))
    finally:
        svc.store.close()
    a = [s for k, v in scores.items() if k != "unanswerable" for s in v]
    u = scores.get("unanswerable", [])
    print(f"answerable n={len(a)} unanswerable n={len(u)}")
    if a and u:
        print("threshold  abstains(unanswerable)  false_abstention(answerable)")
        for t in [x / 100 for x in range(10, 91, 5)]:  # the defaults (min_relevance, min_evidence_score) are 0.25
            print(f"{t:.2f}       {sum(s < t for s in u) / len(u):.3f}                  {sum(s < t for s in a) / len(a):.3f}")
    print("\nsubject words the sources never mention (answer.abstain_when_unmentioned):")
    print("| questions | n | abstains | share |\n|---|---:|---:|---:|")
    for kind, rows in flagged.items():
        n = sum(bool(m) for _, m in rows)
        print(f"| {kind} | {len(rows)} | {n} | {n / len(rows):.3f} |")
    for kind, rows in flagged.items():
        for q, m in rows:
            if bool(m) != (kind == "unanswerable"):
                print(f"  {'false abstention' if m else 'not caught'}: {q.id} {m} {q.question[:90]}")


if __name__ == "__main__":
    main()
