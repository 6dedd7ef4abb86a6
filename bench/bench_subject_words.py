"""The subject-word check on every dev question, with the index alone (no model).

For each answerable SWE-QA and QMSum dev question and each unanswerable one, searched in its own
repository or meeting the way the answer path searches: the subject words the sources never
mention (`index/coverage.py`; the answer abstains at once when there is one), and how many of the
question's subject words the best single chunk in scope lacks, to see whether co-occurrence could
separate the unanswerable questions that pass the check.

    LOREBASE_HOME=H .venv/bin/python bench/bench_subject_words.py [--list]
    LOREBASE_HOME=T .venv/bin/python bench/bench_subject_words.py --tuning .evaldata/qmsum-tuning.jsonl [--list]

``--tuning FILE`` checks QMSum *train* queries instead (the 289 of the 40 tuning meetings that
`bench/build_evalsets.py` writes), in a home where those meetings were ingested from
``--folder`` (default tuning-meetings): all are answerable, so every abstention there is false.
The check's rules are chosen there and confirmed on the dev questions. ``--sweqa FILE --repo SLUG``
checks the questions of another SWE-QA-Bench repository (its ``Benchmark/<name>.jsonl``, read where
`fetch` put the benchmark), in a home where that repository was ingested at its pinned commit: code
questions the word lists were never written on, all answerable. ``--questions FILE`` checks any
question file of `lorebase eval answers`, each scoped as the answer path scopes it, e.g.
TutorialVQA's course questions (`.evaldata/tutorialvqa-dev.jsonl`, searched across every video) in
a home holding its videos.

Prints JSON: per set, how many questions the check abstains on (false abstentions on answerable
sets), and the distribution of "subject words the best chunk lacks" among the questions it lets
through; ``--list`` adds each question the check abstains on with its words.

``--rare 1,2,8`` also tries a stricter rule on the questions the check lets through: abstain when a
subject word (as the check counts them) is rare in the scope, held by 1 to N chunks, and none of
the top 5 retrieved chunks holds it (the sources mention the word, but not where the question is
about). For each N, how many more questions of each set it would abstain on. ``--questions`` may
be given more than once.
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
    ap.add_argument("--datasets", type=Path, default=ROOT / "datasets" / "eval")
    ap.add_argument("--list", action="store_true", help="also list the questions the check abstains on")
    ap.add_argument("--tuning", type=Path, help="QMSum train queries (qmsum-tuning.jsonl) instead of the dev sets")
    ap.add_argument("--folder", default="tuning-meetings", help="with --tuning: the folder the meetings were ingested from")
    ap.add_argument("--sweqa", type=Path, help="a SWE-QA-Bench question file (Benchmark/<name>.jsonl) instead of the dev sets")
    ap.add_argument("--repo", help="with --sweqa: the repository's owner/name as ingested")
    ap.add_argument("--questions", type=Path, action="append",
                    help="any `lorebase eval answers` question file, scoped as the answer path scopes it (repeatable)")
    ap.add_argument("--rare", default="", help="comma-separated N: also count the rare-word rule (see above) at each N")
    args = ap.parse_args(argv)
    if bool(args.sweqa) != bool(args.repo):
        ap.error("--sweqa and --repo go together")

    import numpy as np

    from lorebase.eval.answers import AnswerQuestion, load_answer_questions, scope
    from lorebase.index.coverage import LONG_QUESTION_WORDS, SubjectWords
    from lorebase.index.english import english_words
    from lorebase.index.filters import allowed_chunk_ids, parse_filters
    from lorebase.services import Services
    from lorebase.settings import load_settings

    svc = Services.build(load_settings())
    bm25 = svc.search.bm25
    words = SubjectWords(bm25.stemmer, english_words())
    sets: dict[str, list[AnswerQuestion]] = {"code": [], "meetings": [], "unanswerable code": [], "unanswerable meetings": []}
    if args.questions:
        sets = {p.stem: load_answer_questions(p) for p in args.questions}
    elif args.tuning:
        sets = {"meetings (QMSum train)": load_answer_questions(args.tuning)}
    elif args.sweqa:
        rows = [json.loads(x) for x in args.sweqa.read_text().splitlines() if x.strip()]
        sets = {f"code ({args.repo})": [AnswerQuestion(f"{args.repo}-{n}", r["question"], "code", repo=args.repo)
                                        for n, r in enumerate(rows, start=1)]}
    else:
        for name in ("sweqa-dev.jsonl", "qmsum-dev.jsonl", "unanswerable-dev.jsonl"):
            for q in load_answer_questions(args.datasets / name):
                about = "code" if q.repo else "meetings"
                sets[about if q.kind != "unanswerable" else f"unanswerable {about}"].append(q)

    def scope_of(q: AnswerQuestion) -> dict[str, str] | None:
        return {"lecture": f"{args.folder}/{q.meeting}"} if args.tuning and q.meeting else scope(q)

    rare = [int(n) for n in args.rare.split(",") if n.strip()]

    def rare_unretrieved(q: AnswerQuestion, allowed: np.ndarray) -> int | None:
        """The fewest chunks holding a subject word that no top-5 chunk holds (None: there is none)."""
        subject = {t: w for t, w in words.of(q.question).items() if not words.summing_up(t, w)}
        if len(q.question.split()) >= LONG_QUESTION_WORDS:  # as the check: a long question's plain words are wording
            subject = {t: w for t, w in subject.items() if not words.plain(w)}
        top = {h.chunk_id for h in svc.search.retrieve(q.question, 5, scope_of(q))}
        holders = bm25.holders(subject, allowed)
        chunk_ids = bm25._state[0]  # index position -> chunk id (loaded by holders), to compare with the top chunks
        counts = [len(held) for held in (set(chunk_ids[d].tolist()) for d in holders.values()) if held and not held & top]
        return min(counts, default=None)

    report: dict[str, dict] = {}
    for name, questions in sets.items():
        caught: list[dict] = []
        lacking: Counter[int] = Counter()
        more = dict.fromkeys(rare, 0)
        for q in questions:
            allowed = allowed_chunk_ids(svc.store, parse_filters(scope_of(q)))
            if allowed is None or not allowed.size:
                raise SystemExit(f"{q.id}: nothing ingested in its scope {scope_of(q)}")
            missing = svc.search.unmentioned(q.question, scope_of(q))  # as the answer path decides it
            if missing:
                caught.append({"id": q.id, "words": missing})
                continue
            subject = words.of(q.question)
            per_chunk: Counter[int] = Counter()
            for docs in bm25.holders(subject, allowed).values():
                per_chunk.update(docs.tolist())
            lacking[len(subject) - max(per_chunk.values(), default=0)] += 1
            if rare and (fewest := rare_unretrieved(q, allowed)) is not None:
                for n in rare:
                    more[n] += fewest <= n
        entry: dict = {"questions": len(questions), "abstains": len(caught),
                       "passed, by subject words the best chunk lacks": dict(sorted(lacking.items()))}
        if rare:
            entry["rare-word rule: more abstentions, by N"] = more
        if args.list:
            entry["abstained on"] = caught
        report[name] = entry
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
