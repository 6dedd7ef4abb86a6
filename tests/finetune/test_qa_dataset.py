"""The stored QA dataset: near-duplicates, unanswerable pairs, grouped splits, export, and
incremental regeneration with retirement."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase.finetune.dedupe import near_duplicates
from lorebase.finetune.export import export_dataset, export_jsonl, load_pairs, stats
from lorebase.finetune.qa_drafts import strip_citations
from lorebase.finetune.qa_generation import QAGenerator, QAReport
from lorebase.finetune.retrieval import retriever
from lorebase.finetune.splits import split_for
from lorebase.generation import grounding
from lorebase.generation.prompts import ABSTAIN_TEXT
from lorebase.services import Services
from lorebase.store.models import Chunk, QAPair, Source
from tests.finetune.conftest import VTT, Corpus, ingest


def generate(services: Services, **kw: object) -> QAReport:
    gen = QAGenerator(services.settings, services.store, embed=services.search.embedder.embed,
                      retrieve=retriever(services.search))
    return asyncio.run(gen.generate(**kw))  # type: ignore[arg-type]


def active(services: Services) -> list[QAPair]:
    return load_pairs(services.store, validated_only=False)


def test_near_duplicates_with_the_embedder(services: Services) -> None:
    embed = services.search.embedder.embed
    questions = [
        "How many times is a failed job retried?",  # kept, existing
        "How often is a failed job retried?",  # paraphrase of 0
        "Which library parses WebVTT files?",
        "how many times is a failed job retried ?",  # case and spacing copy of 0
        "What does the ledger keep in memory?",
    ]
    dropped = near_duplicates(questions, embed, threshold=0.9, fixed=1)
    assert dict(dropped) == {1: 0, 3: 0}
    # The existing (fixed) questions are never dropped, even when they repeat each other.
    assert near_duplicates(questions[:2], embed, threshold=0.9, fixed=2) == []
    # A strict threshold keeps the paraphrase but still drops the exact copy.
    assert dict(near_duplicates(questions, embed, threshold=0.99, fixed=1)) == {3: 0}


def test_generate_makes_deduplicated_pairs_with_abstention(services: Services) -> None:
    settings = services.settings
    report = generate(services)
    pairs = active(services)
    assert report.added == len(pairs) > 20
    assert report.by_method["template"] > 0 and report.by_method["abstention"] > 0
    questions = [p.question for p in pairs if p.method != "abstention"]
    assert len(set(questions)) == len(questions), "no question twice"
    sims = near_duplicates(questions, services.search.embedder.embed, settings.qa.dedupe_threshold)
    assert sims == [], "nothing left above the near-duplicate threshold"

    chunks: dict[int, Chunk] = {}
    with services.store.session() as s:
        for c in s.scalars(select(Chunk)):
            chunks[c.id] = c
    by_question = {p.question: p for p in pairs if p.method != "abstention"}
    for p in (p for p in pairs if p.method == "abstention"):
        assert p.answer == ABSTAIN_TEXT and p.category == "abstention" and p.chunk_ids == []
        original = by_question[p.question]
        assert p.source_ids == original.source_ids, "follows the withheld source (split, changes)"
        contexts = p.provenance["contexts"]
        assert contexts and all(c["source_id"] not in p.source_ids for c in contexts)
        claim = strip_citations(original.answer)
        for c in contexts:  # no context shown answers the question
            assert grounding.support(claim, chunks[c["chunk_id"]].text) < settings.answer.support_threshold
        assert p.provenance["withheld"][0]["chunk_id"] == original.chunk_ids[0]


def test_splits_group_pairs_by_source(services: Services) -> None:
    generate(services)
    splits_of: dict[str, set[str]] = defaultdict(set)
    for p in active(services):
        splits_of[p.source_ids[0]].add(str(p.split))
    assert all(len(v) == 1 for v in splits_of.values()), "a source's pairs are all in one split"
    qa = services.settings.qa
    for sid, (split,) in splits_of.items():
        assert split == split_for(sid, salt=qa.split_salt, train_share=qa.train_share, validation_share=qa.validation_share)
    # The hash spreads many groups close to the configured shares.
    drawn = Counter(split_for(f"src_{i}", salt="x", train_share=0.8, validation_share=0.1) for i in range(5000))
    assert abs(drawn["train"] / 5000 - 0.8) < 0.03 and abs(drawn["validation"] / 5000 - 0.1) < 0.02
    assert split_for("src_1", salt="a", train_share=0.8, validation_share=0.1) == split_for(
        "src_1", salt="a", train_share=0.8, validation_share=0.1)


def test_export_jsonl_and_datasets_folder_with_card(services: Services, tmp_path: Path) -> None:
    from datasets import load_from_disk

    generate(services)
    pairs = load_pairs(services.store)
    n = export_jsonl(pairs, tmp_path / "qa.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert n == len(lines) == len(pairs)
    assert {r["id"] for r in lines} == {p.id for p in pairs}
    assert all(r["provenance"] and r["validation"] and r["method"] and r["split"] for r in lines)

    counts = export_dataset(pairs, tmp_path / "ds")
    ds = load_from_disk(str(tmp_path / "ds"))
    assert {k: len(v) for k, v in ds.items()} == counts
    assert sum(counts.values()) == len(pairs)
    card = (tmp_path / "ds" / "README.md").read_text()
    with services.store.session() as s:
        rows = s.execute(select(QAPair.split, QAPair.kind, QAPair.method)).all()
    by_kind, by_method = card.split("### By kind")[1].split("### By method")
    for table, field in ((by_kind, "kind"), (by_method, "method")):
        shown = card_table(table)
        for split in counts:
            want = Counter(getattr(r, field) for r in rows if r.split == split)
            got = {k: int(v) for k, v in shown[split].items() if k != "total" and int(v)}
            assert got == dict(want)
            assert int(shown[split]["total"]) == counts[split]
    assert stats(services.store)["active"] == len(pairs)


def card_table(text: str) -> dict[str, dict[str, str]]:
    """{split: {column: cell}} from the card's markdown table."""
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header, body = cells[0], cells[1:]
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in body}


@pytest.mark.slow
def test_incremental_regeneration_and_retirement(services: Services, corpus: Corpus) -> None:
    first = generate(services)
    assert first.added > 0 and first.retired == 0
    again = generate(services)
    assert (again.added, again.retired, again.regenerated) == (0, 0, 0), "nothing changed, nothing redone"

    with services.store.session() as s:
        lecture = s.scalar(select(Source).where(Source.kind == "transcript"))
        assert lecture is not None
        lecture_id = lecture.id
    before = {p.id: p for p in active(services)}
    lecture_pairs = {pid for pid, p in before.items() if lecture_id in p.source_ids}
    assert lecture_pairs

    # Change the lecture: only its pairs are retired and made anew.
    corpus.vtt.write_text(VTT.replace("three times", "five times").replace("thirty seconds", "ten seconds"))
    ingest(corpus.settings, [str(corpus.lectures)])
    changed = generate(services)
    assert changed.regenerated == 1 and changed.retired == len(lecture_pairs)
    after = {p.id: p for p in active(services)}
    assert set(before) - set(after) == lecture_pairs, "only the lecture's pairs left the active set"
    new = [p for pid, p in after.items() if pid not in before]
    assert new and all(lecture_id in p.source_ids for p in new)
    with services.store.session() as s:
        h = s.get(Source, lecture_id).content_hash  # type: ignore[union-attr]
    assert all(p.source_hash == h for p in new)

    # Delete the lecture: its pairs are retired, never deleted.
    corpus.vtt.unlink()
    ingest(corpus.settings, [str(corpus.lectures)])
    gone = generate(services)
    assert gone.gone == 1 and gone.retired == len(new) and gone.added == 0
    with services.store.session() as s:
        rows = list(s.scalars(select(QAPair).where(QAPair.id.in_(lecture_pairs | {p.id for p in new}))))
    assert len(rows) == len(lecture_pairs) + len(new), "retired rows stay for traceability"
    assert all(r.retired_at is not None for r in rows)
    assert all(lecture_id not in p.source_ids for p in active(services))
