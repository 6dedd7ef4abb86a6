"""RAGAS scores of answered questions: the judge's four metrics and ragas' metrics without an LLM.

Each (question, metric) is scored on its own, under a time limit: a failure (invalid JSON, a
time-out, a refused request) leaves that one score empty and is counted, never ending the run.
A metric whose inputs the question lacks (no reference answer, no sources) is skipped, not failed.

Imports ragas: import this module only when an evaluation runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragas.dataset_schema import SingleTurnSample
from ragas.embeddings.base import BaseRagasEmbedding
from ragas.metrics import (
    IDBasedContextPrecision,
    IDBasedContextRecall,
    NonLLMContextPrecisionWithReference,
    NonLLMContextRecall,
)
from ragas.metrics.collections import (
    AnswerRelevancy,
    BleuScore,
    ContextPrecision,
    ContextRecall,
    Faithfulness,
    NonLLMStringSimilarity,
    RougeScore,
)

from lorebase.eval import catalog
from lorebase.eval.judge import classify

if TYPE_CHECKING:
    from ragas.llms.base import InstructorBaseRagasLLM

    from lorebase.index.embeddings import LorebaseEmbedding


@dataclass
class Sample:
    """One answered question, as the metrics see it."""

    id: str
    question: str
    answer: str
    reference: str | None
    contexts: list[str]  # the chunk texts the model was given, in prompt order
    context_ids: list[str]  # their source ids
    reference_contexts: list[str]  # gold chunk texts
    reference_ids: list[str]  # gold source ids


@dataclass
class SampleScores:
    scores: dict[str, float | None] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # metric -> {kind, message}
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why


class RagasEmbedder(BaseRagasEmbedding):
    """lorebase's embedder as ragas' embedding interface (for answer relevancy)."""

    def __init__(self, embedder: LorebaseEmbedding) -> None:
        super().__init__()
        self.embedder = embedder

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return [float(x) for x in self.embedder.embed([text])[0]]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return await asyncio.to_thread(self.embed_text, text)

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return [[float(x) for x in v] for v in self.embedder.embed(list(texts))]

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_texts, texts)


Scorer = Callable[[Sample], Awaitable[Any]]


def _value(result: Any) -> float | None:
    v = getattr(result, "value", result)
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, 4)


class RagasScoring:
    """The metric set. ``llm`` None scores only the metrics that need no LLM."""

    def __init__(self, llm: InstructorBaseRagasLLM | None, embedder: LorebaseEmbedding | None, *,
                 timeout_s: float, concurrency: int = 1) -> None:
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self.judged: dict[str, tuple[Scorer, Callable[[Sample], str | None]]] = {}
        if llm is not None:
            faith, cprec, crec = Faithfulness(llm=llm), ContextPrecision(llm=llm), ContextRecall(llm=llm)
            self.judged["faithfulness"] = (
                lambda s: faith.ascore(user_input=s.question, response=s.answer, retrieved_contexts=s.contexts),
                _needs(answer=True, contexts=True),
            )
            if embedder is not None:
                relevancy = AnswerRelevancy(llm=llm, embeddings=RagasEmbedder(embedder))
                self.judged["answer_relevancy"] = (
                    lambda s: relevancy.ascore(user_input=s.question, response=s.answer), _needs(answer=True)
                )
            self.judged["context_precision"] = (
                lambda s: cprec.ascore(user_input=s.question, reference=s.reference or "", retrieved_contexts=s.contexts),
                _needs(reference=True, contexts=True),
            )
            self.judged["context_recall"] = (
                lambda s: crec.ascore(user_input=s.question, retrieved_contexts=s.contexts, reference=s.reference or ""),
                _needs(reference=True, contexts=True),
            )
        np_prec, np_rec = NonLLMContextPrecisionWithReference(), NonLLMContextRecall()
        id_prec, id_rec = IDBasedContextPrecision(), IDBasedContextRecall()
        similarity, rouge, bleu = NonLLMStringSimilarity(), RougeScore(rouge_type="rougeL"), BleuScore()

        def texts(s: Sample) -> SingleTurnSample:
            return SingleTurnSample(retrieved_contexts=s.contexts, reference_contexts=s.reference_contexts)

        def ids(s: Sample) -> SingleTurnSample:
            return SingleTurnSample(retrieved_context_ids=list[str | int](s.context_ids),
                                    reference_context_ids=list[str | int](s.reference_ids))

        self.plain: dict[str, tuple[Scorer, Callable[[Sample], str | None]]] = {
            "non_llm_context_precision_with_reference": (lambda s: np_prec.single_turn_ascore(texts(s)), _needs(contexts=True, gold=True)),
            "non_llm_context_recall": (lambda s: np_rec.single_turn_ascore(texts(s)), _needs(contexts=True, gold=True)),
            "id_based_context_precision": (lambda s: id_prec.single_turn_ascore(ids(s)), _needs(contexts=True, gold=True)),
            "id_based_context_recall": (lambda s: id_rec.single_turn_ascore(ids(s)), _needs(contexts=True, gold=True)),
            "non_llm_string_similarity": (lambda s: similarity.ascore(reference=s.reference or "", response=s.answer),
                                          _needs(answer=True, reference=True)),
            "rouge_score": (lambda s: rouge.ascore(reference=s.reference or "", response=s.answer), _needs(answer=True, reference=True)),
            "bleu_score": (lambda s: bleu.ascore(reference=s.reference or "", response=s.answer), _needs(answer=True, reference=True)),
        }
        assert set(self.plain) == set(catalog.NO_LLM) and set(self.judged) <= set(catalog.JUDGE)

    async def score_all(self, samples: list[Sample], progress: Callable[[str], None] | None = None) -> dict[str, SampleScores]:
        out = {s.id: SampleScores() for s in samples}
        for s in samples:  # no-LLM metrics: quick and CPU-bound, one after another
            for name, (fn, needs) in self.plain.items():
                await self._one(s, name, fn, needs, out[s.id], timeout=None)
        jobs = [self._one(s, name, fn, needs, out[s.id], timeout=self.timeout_s)
                for s in samples for name, (fn, needs) in self.judged.items()]
        for done, coro in enumerate(asyncio.as_completed(jobs), start=1):
            await coro
            if progress is not None and (done % 10 == 0 or done == len(jobs)):
                progress(f"judged {done}/{len(jobs)} metric scores")
        return out

    async def _one(self, s: Sample, name: str, fn: Scorer, needs: Callable[[Sample], str | None], into: SampleScores,
                   *, timeout: float | None) -> None:
        missing = needs(s)
        if missing:
            into.scores[name] = None
            into.skipped[name] = missing
            return
        async with self._slots if timeout is not None else contextlib.nullcontext():
            try:
                into.scores[name] = _value(await asyncio.wait_for(fn(s), timeout))
                if into.scores[name] is None and timeout is not None:
                    # ragas gives NaN when the judge's (valid) JSON held nothing to score, e.g. no
                    # statements found in the answer: a lost score like any other, so it is counted.
                    into.failures[name] = {"kind": "invalid_output", "message": "the judge's answers gave no score (NaN)"}
            except asyncio.CancelledError:
                raise
            except Exception as e:  # one score lost, counted and shown; the run goes on
                kind, message = classify(e)
                if isinstance(e, TimeoutError) and not str(e):
                    message = f"no score within {timeout:g} s"
                into.scores[name] = None
                into.failures[name] = {"kind": kind, "message": message}


def _needs(*, answer: bool = False, reference: bool = False, contexts: bool = False,
           gold: bool = False) -> Callable[[Sample], str | None]:
    def check(s: Sample) -> str | None:
        if answer and not s.answer.strip():
            return "no answer"
        if reference and not (s.reference or "").strip():
            return "no reference answer in the eval set"
        if contexts and not s.contexts:
            return "the answer used no sources"
        if gold and not s.reference_contexts:
            return "no gold source found in the store"
        return None

    return check
