"""The judge adapter over an in-process generator, failure classification, and the RAGAS metrics
that need no LLM, scored on hand-made samples whose values are worked out below."""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from ragas.llms.base import InstructorBaseRagasLLM

from lorebase.eval.judge import GeneratorJudge, JudgeOutputError, classify, json_text
from lorebase.eval.ragas_scoring import RagasScoring, Sample
from lorebase.generation.backend import Generator

pytestmark = pytest.mark.slow  # imports ragas (several seconds) and loads the tiny model


class Verdict(BaseModel):
    reason: str
    verdict: int


def test_json_text_finds_the_object() -> None:
    assert json_text('Sure! ```json\n{"a": 1}\n``` done') == '{"a": 1}'
    assert json_text('prefix {"a": {"b": 2}} suffix') == '{"a": {"b": 2}}'
    with pytest.raises(JudgeOutputError):
        json_text("no braces at all")


def test_failures_are_told_apart() -> None:
    assert classify(TimeoutError())[0] == "timeout"
    try:
        Verdict.model_validate_json('{"reason": "x"}')
    except ValidationError as e:
        assert classify(e)[0] == "invalid_output"
    assert classify(JudgeOutputError("cut"))[0] == "invalid_output"
    try:
        try:
            raise ConnectionRefusedError("refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("the call failed") from inner
    except RuntimeError as e:
        kind, message = classify(e)
    assert kind == "error" and message.startswith("RuntimeError: the call failed")


@pytest.fixture(scope="module")
def tiny_generator(tiny_llama: Path) -> Iterator[Generator]:
    from lorebase.generation.queue import GenerationQueue
    from lorebase.generation.transformers_backend import TransformersBackend

    loop = asyncio.new_event_loop()
    gen = loop.run_until_complete(TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 8),
                                                           context_length=8192, adapters={}))
    yield gen
    loop.run_until_complete(gen.aclose())
    loop.close()


def test_generator_judge_falls_back_to_prompt_only_json_and_garbage_is_invalid_output(tiny_generator: Generator) -> None:
    judge = GeneratorJudge(tiny_generator, max_tokens=12)
    with pytest.raises((JudgeOutputError, ValidationError)) as info:
        asyncio.run(judge.agenerate('Reply with JSON {"reason": str, "verdict": 0 or 1}.', Verdict))
    assert judge.structured is False  # transformers refused the json_schema once; the prompt carries it from now on
    assert classify(info.value)[0] == "invalid_output"


SAMPLE = Sample(
    id="s1", question="How often is a failed job retried?", answer="Three times, with exponential backoff.",
    reference="Three times, with exponential backoff.",
    contexts=["A failed job is retried three times with exponential backoff.", "Unrelated text about parsing headers.",
              "More unrelated text about the index.", "The scheduler runs jobs."],
    context_ids=["src_a", "src_b", "src_c", "src_d"],
    reference_contexts=["A failed job is retried three times with exponential backoff.", "Backoff starts at thirty seconds, then doubles."],
    reference_ids=["src_a", "src_e"],
)


def test_metrics_without_an_llm_by_hand() -> None:
    got = asyncio.run(RagasScoring(None, None, timeout_s=5).score_all([SAMPLE]))["s1"]
    s = got.scores
    assert s["id_based_context_precision"] == 0.25  # src_a of four sources
    assert s["id_based_context_recall"] == 0.5  # src_a of src_a, src_e
    # one reference chunk is retrieved word for word, the other matches nothing (similarity < 0.5)
    assert s["non_llm_context_recall"] == 0.5
    assert s["non_llm_context_precision_with_reference"] == pytest.approx(1.0, abs=1e-6)  # the one match is ranked first
    assert s["rouge_score"] == s["bleu_score"] == s["non_llm_string_similarity"] == 1.0  # answer == reference
    assert not got.failures and not got.skipped
    assert not {"faithfulness", "answer_relevancy", "context_precision", "context_recall"} & set(s)  # no judge, not scored

    bare = Sample(**{**SAMPLE.__dict__, "id": "s2", "reference": None, "contexts": [], "context_ids": []})
    got = asyncio.run(RagasScoring(None, None, timeout_s=5).score_all([bare]))["s2"]
    assert got.skipped["rouge_score"] == "no reference answer in the eval set"
    assert got.skipped["id_based_context_recall"] == "the answer used no sources"
    assert all(v is None for v in got.scores.values()) and not got.failures


def test_a_judge_past_its_time_limit_is_counted_as_a_timeout(tiny_generator: Generator) -> None:
    judge = GeneratorJudge(tiny_generator, max_tokens=64, structured=False)
    got = asyncio.run(RagasScoring(judge, None, timeout_s=0.001).score_all([SAMPLE]))["s1"]
    judged = {"faithfulness", "context_precision", "context_recall"}  # answer relevancy needs the embedder
    assert set(got.failures) == judged
    assert {f["kind"] for f in got.failures.values()} == {"timeout"}, got.failures
    assert all(got.scores[m] is None for m in judged)
    assert got.scores["rouge_score"] == 1.0  # the other metrics are unaffected


class EmptyJudge(InstructorBaseRagasLLM):
    """Valid JSON of the asked shape that holds nothing: every list empty (what a weak judge under
    constrained decoding often writes)."""

    async def agenerate(self, prompt: str, response_model: type[Any]) -> Any:
        return response_model.model_validate({n: [] for n, f in response_model.model_fields.items()
                                              if typing.get_origin(f.annotation) is list})

    def generate(self, prompt: str, response_model: type[Any]) -> Any:
        return asyncio.run(self.agenerate(prompt, response_model))


def test_a_judge_answer_with_nothing_to_score_is_counted_not_silently_dropped() -> None:
    got = asyncio.run(RagasScoring(EmptyJudge(), None, timeout_s=30).score_all([SAMPLE]))["s1"]
    # No statements extracted: ragas gives NaN for faithfulness and context recall.
    for metric in ("faithfulness", "context_recall"):
        assert got.scores[metric] is None
        assert got.failures[metric]["kind"] == "invalid_output" and "NaN" in got.failures[metric]["message"]
    assert got.scores["rouge_score"] == 1.0  # metrics without a judge are unaffected
