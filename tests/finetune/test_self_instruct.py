"""Self-instruct through a real generator backend (transformers on the tiny random Llama).

The tiny model writes random text, so what is tested is the gatekeeping: unsupported generated
answers never become pairs, an extractive span that matches the question does, and a question the
chunk cannot answer is rejected with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase.finetune.qa_drafts import as_seen, evidence, strip_citations
from lorebase.finetune.qa_generation import QAGenerator
from lorebase.finetune.self_instruct import (
    SelfInstruct,
    extractive_answer,
    parse_questions,
)
from lorebase.generation import grounding
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.services import Services
from lorebase.store.models import Chunk, Source


@pytest.fixture(scope="module")
def backend(tiny_llama: Path) -> Iterator[TransformersBackend]:
    b = asyncio.run(TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 4)))
    yield b
    asyncio.run(b.aclose())


def lecture(services: Services) -> tuple[Source, Chunk]:
    with services.store.session() as s:
        chunk, src = s.execute(select(Chunk, Source).join(Source).where(Source.kind == "transcript")).first()  # type: ignore[misc]
        s.expunge_all()
    return src, chunk


def writer(backend: TransformersBackend) -> SelfInstruct:
    return SelfInstruct(backend, questions_per_chunk=3, max_new_tokens=24, threshold=0.6, max_answer_chars=400)


def test_parse_questions() -> None:
    text = "1. How many retries are there?\n- What is the backoff\nQ3: Why?\n\n2) How many retries are there?\nWhat happens after the third failure?"
    assert parse_questions(text, 5) == [
        "How many retries are there?", "What is the backoff?", "What happens after the third failure?",
    ]
    assert parse_questions(text, 1) == ["How many retries are there?"]


def test_extractive_answer_needs_real_overlap() -> None:
    text = "A failed job is retried three times. The dashboard shows the queue."
    assert extractive_answer("How many times is a failed job retried?", text, 400) == ("A failed job is retried three times.", 4)
    assert extractive_answer("What does the dashboard colour mean for billing?", text, 400) is None


def test_unsupported_generation_is_rejected_and_extractive_span_kept(services: Services, backend: TransformersBackend) -> None:
    src, chunk = lecture(services)
    si = writer(backend)
    draft, rejected = asyncio.run(si.answer(src, chunk, "How many times is a failed job retried with exponential backoff?"))
    assert rejected is None and draft is not None
    # The tiny model's random answer failed the check; the chunk's own sentence answers instead.
    assert draft.validation["generated"]["supported"] is False
    assert draft.validation["answer"] == "extractive" and draft.validation["supported"] is True
    assert strip_citations(draft.answer) in chunk.text
    assert "retried three times" in draft.answer and draft.answer.endswith("[S1].")
    assert draft.method == "self_instruct" and draft.chunk_ids == [chunk.id] and draft.provenance["sources"][0]["start_time"] == 0.0

    none, why = asyncio.run(si.answer(src, chunk, "Which database engine stores the billing invoices?"))
    assert none is None and why is not None and "no sentence of the chunk matches" in why.reason


def test_pairs_for_keeps_only_grounded_pairs(services: Services, backend: TransformersBackend) -> None:
    src, chunk = lecture(services)
    result = asyncio.run(writer(backend).pairs_for(src, chunk))
    for d in result.pairs:
        g = grounding.check(d.answer, [as_seen(evidence(src, chunk))])
        assert g.supported and d.validation["supported"] is True
    for r in result.rejected:
        assert r.reason and r.category == "transcript.self_instruct"


def test_generate_with_self_instruct_through_the_generator(services: Services, backend: TransformersBackend) -> None:
    settings = services.settings.model_copy(update={"qa": services.settings.qa.model_copy(update={"self_instruct_max_chunks": 2})})
    gen = QAGenerator(settings, services.store, embed=services.search.embedder.embed, retrieve=None, generator=backend)
    report = asyncio.run(gen.generate(self_instruct=True, kinds=["transcript"]))
    assert report.self_instruct_chunks == 1  # the corpus' one lecture chunk
    assert report.by_method["template"] > 0
    # Every stored self-instruct pair passed validation; the rest were counted as rejected.
    from lorebase.finetune.export import load_pairs

    stored = [p for p in load_pairs(services.store, validated_only=False) if p.method == "self_instruct"]
    assert all(p.validated for p in stored)
    # Each question the model wrote became a validated pair or a counted rejection (before de-duplication).
    assert report.self_instruct_questions >= len(stored)
    assert report.rejected == report.self_instruct_questions - len(stored) - report.duplicates
