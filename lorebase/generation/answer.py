"""Grounded answers: retrieve, prompt with numbered sources, generate, check, and say so plainly
when the sources do not hold the answer.

The service yields typed events; the API turns them into SSE and the UI into messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lorebase.citations import Citation, cite
from lorebase.errors import PromptTooLong
from lorebase.generation import grounding
from lorebase.generation.backend import GenerationRequest, Generator, Usage
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence, answer_messages, fit_evidence
from lorebase.settings import Settings

if TYPE_CHECKING:
    from lorebase.index.search import Hit, SearchService

NOT_VERIFIED = "Note: this answer could not be verified against the sources; see the closest sources below."
NOTHING_FOUND = "I could not find anything about this in the ingested sources."


@dataclass(frozen=True)
class Check:
    supported: bool
    abstained: bool
    reason: str


@dataclass
class AnswerEvent:
    """`sources` once retrieval is done, `delta` per piece of text, `final` last."""

    type: Literal["sources", "delta", "final"]
    text: str = ""
    sources: list[Citation] = field(default_factory=list)
    check: Check | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    answer: str = ""  # on `final`: the whole answer as it should be stored or shown
    # on `final`: each checked sentence with the labels of the sources that support it
    sentences: list[grounding.SentenceCheck] = field(default_factory=list)


@dataclass
class Answer:
    text: str
    sources: list[Citation]
    check: Check
    usage: Usage
    model: str
    finish_reason: str


class AnswerService:
    def __init__(self, settings: Settings, search: SearchService, generator: Generator) -> None:
        self.settings = settings
        self.search = search
        self.generator = generator

    async def stream(
        self,
        question: str,
        *,
        history: Sequence[dict[str, str]] = (),
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        model: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        out_tokens = max_tokens or self.settings.generation.max_new_tokens
        budget = self.generator.context_length - out_tokens - 8
        count = self.generator.count_prompt_tokens
        bare = count(answer_messages(question, [], history))
        if bare > budget:  # before retrieval: an oversize prompt is the caller's error, whatever we find
            raise PromptTooLong(
                f"the question and history take {bare} tokens; with {out_tokens} answer tokens the model's "
                f"context limit of {self.generator.context_length} tokens leaves no room for sources"
            )
        hits = await asyncio.to_thread(self.search.retrieve, question, top_k, filters)
        evidence = [Evidence(cite(h.source, h.chunk, f"S{i}", score=round(h.score, 6)), h.chunk.text)
                    for i, h in enumerate(hits, start=1)]
        closest = [e.citation for e in evidence]
        if not hits or not await asyncio.to_thread(self._relevant, question, hits):
            yield AnswerEvent("sources", sources=closest)
            text = NOTHING_FOUND if not closest else f"{ABSTAIN_TEXT} The closest sources are listed below."
            yield AnswerEvent("delta", text=text)
            yield AnswerEvent("final", sources=closest, answer=text, finish_reason="stop", usage=Usage(0, 0),
                              check=Check(False, True, "retrieval found nothing relevant to the question"))
            return

        kept = fit_evidence(question, evidence, lambda m: count([*m[:1], *history, *m[1:]]), budget)
        sources = [e.citation for e in kept]
        yield AnswerEvent("sources", sources=sources)

        req = GenerationRequest(
            messages=answer_messages(question, kept, history),
            max_tokens=out_tokens,
            temperature=self.settings.generation.temperature if temperature is None else temperature,
            model=model,
            repetition_penalty=self.settings.generation.repetition_penalty,
        )
        parts: list[str] = []
        usage, finish = Usage(0, 0), "stop"
        async for d in self.generator.stream(req):
            if d.text:
                parts.append(d.text)
                yield AnswerEvent("delta", text=d.text)
            if d.finish_reason is not None:
                finish = d.finish_reason
            if d.usage is not None:
                usage = d.usage
        raw = "".join(parts)
        g = grounding.check(raw, kept, self.settings.answer.support_threshold)
        check = Check(g.supported, g.abstained, g.reason)
        if g.supported:
            final = g.answer
        elif g.abstained:
            final = f"{ABSTAIN_TEXT} The closest sources are listed below."
        else:
            final = raw.rstrip() + "\n\n" + NOT_VERIFIED
            yield AnswerEvent("delta", text="\n\n" + NOT_VERIFIED)
        yield AnswerEvent("final", sources=sources, check=check, usage=usage, finish_reason=finish, answer=final,
                          sentences=g.sentences)

    async def answer(self, question: str, **kwargs: Any) -> Answer:
        """The whole answer at once. Unlike the stream, text the check could not verify is replaced
        by a plain statement, since nothing has been shown yet."""
        final: AnswerEvent | None = None
        async for ev in self.stream(question, **kwargs):
            if ev.type == "final":
                final = ev
        assert final is not None and final.check is not None
        text = final.answer
        if not final.check.supported and not final.check.abstained:
            text = "I could not find an answer the sources support. The closest sources are listed below."
        return Answer(text, final.sources, final.check, final.usage or Usage(0, 0),
                      kwargs.get("model") or self.generator.base_model, final.finish_reason or "stop")

    # --- relevance gate -------------------------------------------------------------------------

    def _relevant(self, question: str, hits: Sequence[Hit]) -> bool:
        """Does any retrieved chunk plausibly concern the question? Word overlap first (cheap), then
        the embedder's cosine, since a fused rank score says nothing about absolute relevance."""
        top = hits[:3]
        words = set(grounding.content_words(question))
        for h in top:
            shared = words & set(grounding.content_words(h.chunk.text))
            # Two or more shared words, half the question's: one common word ("capital") is not enough.
            if len(shared) >= 2 and len(shared) >= 0.5 * len(words):
                return True
        emb = self.search.embedder
        q = np.asarray(emb.get_query_embedding(question), dtype=np.float32)
        docs = np.asarray(emb.get_text_embedding_batch([h.chunk.text for h in top]), dtype=np.float32)
        cos = docs @ q / (np.linalg.norm(docs, axis=1) * np.linalg.norm(q) + 1e-9)
        return float(cos.max()) >= self.settings.answer.min_relevance
