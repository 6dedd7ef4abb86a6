"""Rule-based QA templates on chunks made by the real readers and ingest service."""

from __future__ import annotations

from sqlalchemy import select

from lorebase.finetune.qa_drafts import QADraft, as_seen, evidence, strip_citations
from lorebase.finetune.templates import Templates, key_phrase
from lorebase.generation import grounding
from lorebase.services import Services
from lorebase.store.models import Chunk, Source
from tests.finetune.conftest import OPS_PY, Corpus


def all_pairs(services: Services, kind: str) -> list[tuple[QADraft, Source, Chunk]]:
    t = Templates(0.6, 400, 3)
    out = []
    with services.store.session() as s:
        rows = s.execute(select(Chunk, Source).join(Source).where(Source.kind == kind).order_by(Chunk.id)).all()
        s.expunge_all()
    for chunk, src in rows:
        for d in t.pairs(src, chunk).pairs:
            out.append((d, src, chunk))
    return out


def by_category(pairs: list[tuple[QADraft, Source, Chunk]], category: str) -> list[tuple[QADraft, Source, Chunk]]:
    return [p for p in pairs if p[0].category == category]


def test_code_templates_answer_from_docstring_signature_and_location(services: Services) -> None:
    pairs = all_pairs(services, "code")
    lines = OPS_PY.splitlines()
    start = next(i for i, ln in enumerate(lines, 1) if ln.startswith("def add_numbers"))
    end = next(i for i, ln in enumerate(lines, 1) if "return a + b" in ln)

    purpose = {d.question: d for d, _, _ in by_category(pairs, "code.purpose")}
    q = "What does the function `add_numbers` in `calc/ops.py` do?"
    assert q in purpose
    # The docstring's first paragraph, not the detail after the blank line.
    assert strip_citations(purpose[q].answer) == "Add two integers and return their sum."
    assert purpose[q].answer.endswith("[S1].")

    returns = {d.question: d.answer for d, _, _ in by_category(pairs, "code.returns")}
    assert returns["What does the function `add_numbers` in `calc/ops.py` return?"] == "`add_numbers` returns `int` [S1]."
    assert not any("Ledger" in q for q in returns), "a class has no return value to ask about"

    where = {d.question: (d, c) for d, _, c in by_category(pairs, "code.location")}
    d, chunk = where["Where is the function `add_numbers` defined?"]
    assert d.answer == f"`add_numbers` is defined in `calc/ops.py`, lines {start}-{end} [S1]."
    assert (chunk.start_line, chunk.end_line) == (start, end)
    assert "Where is the class `Ledger` defined?" in where
    # The module docstring chunk (a filler, symbol_kind module) asks nothing.
    assert all(c.meta.get("symbol_kind") != "module" for _, _, c in pairs)


def test_commit_templates_say_what_changed_and_why(services: Services, corpus: Corpus) -> None:
    pairs = all_pairs(services, "commit")
    from tests.ingest.gitrepo_helpers import git

    log = git(corpus.repo, "log", "--format=%H %s")
    shas = {subject: sha for sha, subject in (line.split(" ", 1) for line in log.splitlines())}
    add_sha = shas["Add arithmetic helpers"][:7]
    what = {d.question: d.answer for d, _, _ in by_category(pairs, "commit.what")}
    assert what[f"What changed in commit {add_sha}?"] == f"Commit {add_sha}: Add arithmetic helpers [S1]."
    why = by_category(pairs, "commit.why")
    assert len(why) == 1, "only the commit with a body says why"
    d, src, _ = why[0]
    assert d.question == f"Why was `calc/ops.py` changed in commit {add_sha}?"
    assert "one tested place to add totals" in d.answer
    assert src.commit == shas["Add arithmetic helpers"]


def test_issue_and_pull_request_templates(services: Services) -> None:
    issues = all_pairs(services, "issue")
    pulls = all_pairs(services, "pull_request")
    with services.store.session() as s:
        closed = {src.number: src for src in s.scalars(select(Source).where(Source.kind == "issue"))
                  if (src.meta or {}).get("state") == "closed"}
        merged = {src.number for src in s.scalars(select(Source).where(Source.kind == "pull_request"))
                  if (src.meta or {}).get("merged")}
    resolved = {src.number: d for d, src, _ in by_category(issues, "issue.resolution")}
    assert resolved and set(resolved) <= set(closed), "only closed issues get a resolution question"
    for n, d in resolved.items():
        assert d.question == f"How was issue #{n} resolved?"
        closed_by = closed[n].meta.get("closed_by") or []
        if closed_by:
            assert f"#{closed_by[0]}" in d.answer
    problems = by_category(issues, "issue.problem")
    assert problems and all(d.question.startswith("What was the problem in issue #") for d, _, _ in problems)
    for d, _, chunk in problems:  # extractive: the answer's words are the post's words
        assert grounding.support(strip_citations(d.answer), chunk.text) == 1.0
    pr_res = {src.number: d for d, src, _ in by_category(pulls, "pull_request.resolution")}
    assert merged and merged <= set(pr_res)
    assert all("merged on" in pr_res[n].answer for n in merged)


def test_doc_template_asks_how_to_from_the_heading(services: Services) -> None:
    pairs = all_pairs(services, "doc")
    howto = {d.question: d for d, _, _ in by_category(pairs, "doc.howto")}
    d = howto["How do I install the tool?"]
    assert strip_citations(d.answer).startswith("Run pip install calc inside a fresh virtual environment.")
    other = [q for q in howto if "Design notes" in q]
    assert other == ['What does the section "Calc > Design notes" in `README.md` explain?']


def test_transcript_template_names_a_key_phrase_and_the_time(services: Services) -> None:
    pairs = all_pairs(services, "transcript")
    assert pairs
    for d, _, chunk in pairs:
        assert d.question.startswith('What does the lecture "')
        phrase = d.question.rsplit(" say about ", 1)[1].rstrip("?")
        assert phrase.lower() in chunk.text.lower()
        assert d.answer.startswith("At 00:00, ")  # the chunk starts at 0 s
        sentence = strip_citations(d.answer)[len("At 00:00, "):]
        assert sentence[:-1].lower() in chunk.text.lower(), "the answer is a sentence of the chunk"


def test_every_template_pair_is_grounded_and_traceable(services: Services) -> None:
    seen_kinds = set()
    for kind in ("code", "commit", "issue", "pull_request", "doc", "transcript"):
        for d, src, chunk in all_pairs(services, kind):
            seen_kinds.add(kind)
            assert d.method == "template" and d.kind == kind and d.category.startswith(kind)
            assert d.chunk_ids == [chunk.id] and d.source_ids == [src.id] and d.source_hash == src.content_hash
            assert d.validation["supported"] is True and d.validation["check"] == "grounding"
            g = grounding.check(d.answer, [as_seen(evidence(src, chunk))])
            assert g.supported and g.cited == ["S1"]
            place = d.provenance["sources"][0]
            assert place["source_id"] == src.id and place["chunk_id"] == chunk.id and place["kind"] == kind
            if kind in ("code", "doc"):
                assert place["path"] and place["commit"] and place["start_line"] >= 1 and place["end_line"] >= place["start_line"]
            if kind == "commit":
                assert len(place["commit"]) == 40
            if kind in ("issue", "pull_request"):
                assert place["number"] == src.number and place["url"].startswith("https://github.com/")
            if kind == "transcript":
                assert place["start_time"] == chunk.start_time and place["end_time"] == chunk.end_time
    assert seen_kinds == {"code", "commit", "issue", "pull_request", "doc", "transcript"}


def test_key_phrase_skips_stop_words_verbs_and_used_phrases() -> None:
    rare = {"exponential": 3.0, "backoff": 3.0, "retri": 1.0, "failed": 1.0, "job": 0.5}
    sent = "A failed job is retried three times with exponential backoff."
    phrase = key_phrase(sent, set(), lambda w: rare.get(w, 0.1))
    assert phrase == "exponential backoff"
    assert key_phrase(sent, {"exponential backoff"}, lambda w: rare.get(w, 0.1)) == "failed job"
    assert key_phrase("It gives us this.", set(), lambda w: 1.0) is None
