"""LLM self-instruct: the generator writes questions about a chunk, and each gets a grounded answer.

Runs through the :class:`~lorebase.generation.backend.Generator` interface, so any backend works.
An answer is first generated with the serving prompt (the chunk as source S1) and kept only if the
grounding check finds it supported; otherwise the chunk sentence that shares the most content words
with the question becomes an extractive answer, kept only if it shares enough (the same rule the
answer service uses to call a passage relevant). A question with neither is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lorebase.finetune.qa_drafts import QADraft, as_seen, draft_for, evidence, with_citation
from lorebase.finetune.templates import Rejected, sentences
from lorebase.generation import grounding
from lorebase.generation.backend import GenerationRequest, Generator
from lorebase.generation.prompts import answer_messages, question_writer_messages
from lorebase.store.models import Chunk, Source

_NUMBERING = re.compile(r"^\s*(?:[-*•]+|\d+[.)]|Q\d*[:.)]|Question\s*\d*[:.)])\s*", re.IGNORECASE)
MIN_QUESTION_WORDS = 3
MAX_QUESTION_CHARS = 300


@dataclass
class SelfInstructResult:
    pairs: list[QADraft] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    questions: int = 0  # questions the generator wrote that parsed


def parse_questions(text: str, n: int) -> list[str]:
    """One question per line, numbering and bullets removed; lines too short or too long dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        q = _NUMBERING.sub("", line).strip().strip('"').strip()
        if len(q.split()) < MIN_QUESTION_WORDS or len(q) > MAX_QUESTION_CHARS:
            continue
        if not q.endswith("?"):
            q = q.rstrip(".:;,") + "?"
        if q.lower() not in seen:
            seen.add(q.lower())
            out.append(q)
        if len(out) >= n:
            break
    return out


def extractive_answer(question: str, text: str, max_chars: int) -> tuple[str, int] | None:
    """The sentence of ``text`` sharing the most content words with the question, with the count;
    None unless it shares at least two and half the question's content words."""
    asked = set(grounding.content_words(question))
    if not asked:
        return None
    best: tuple[str, int] | None = None
    for sent in sentences(text):
        if len(sent) > max_chars:
            continue
        shared = len(asked & set(grounding.content_words(sent)))
        if best is None or shared > best[1]:
            best = (sent, shared)
    if best is None or best[1] < 2 or best[1] < 0.5 * len(asked):
        return None
    return best


class SelfInstruct:
    def __init__(
        self,
        generator: Generator,
        *,
        questions_per_chunk: int,
        max_new_tokens: int,
        threshold: float,
        max_answer_chars: int,
        model: str | None = None,
    ) -> None:
        self.generator = generator
        self.n = questions_per_chunk
        self.max_new_tokens = max_new_tokens
        self.threshold = threshold
        self.max_answer_chars = max_answer_chars
        self.model = model

    async def questions(self, chunk: Chunk) -> list[str]:
        out = await self.generator.complete(GenerationRequest(
            messages=question_writer_messages(chunk.text, self.n), max_tokens=self.max_new_tokens,
            temperature=0.0, model=self.model,
        ))
        return parse_questions(out.text, self.n)

    async def pairs_for(self, source: Source, chunk: Chunk) -> SelfInstructResult:
        result = SelfInstructResult()
        questions = await self.questions(chunk)
        result.questions = len(questions)
        for q in questions:
            self._add(result, *await self.answer(source, chunk, q))
        return result

    async def answer(self, source: Source, chunk: Chunk, question: str) -> tuple[QADraft | None, Rejected | None]:
        """A grounded answer to ``question`` from this chunk alone, or the reason there is none."""
        ev = evidence(source, chunk)
        out = await self.generator.complete(GenerationRequest(
            messages=answer_messages(question, [ev]), max_tokens=self.max_new_tokens, temperature=0.0, model=self.model,
        ))
        g = grounding.check(out.text, [as_seen(ev)], self.threshold)
        generated = {"supported": g.supported, "abstained": g.abstained, "score": round(g.score, 4), "reason": g.reason}
        meta = {"generator": self.generator.base_model if self.model is None else self.model}
        if g.supported and len(g.answer) <= 2 * self.max_answer_chars:
            draft, ok = draft_for(source, chunk, question, g.answer, category=f"{source.kind}.self_instruct",
                                  method="self_instruct", threshold=self.threshold,
                                  extra={"answer": "generated", "generated": generated, **meta})
            if ok:
                return draft, None
        span = extractive_answer(question, chunk.text, self.max_answer_chars)
        if span is None:
            return None, Rejected(question, f"{source.kind}.self_instruct",
                                  f"generated answer rejected ({g.reason}) and no sentence of the chunk matches the question")
        draft, ok = draft_for(source, chunk, question, with_citation(span[0]), category=f"{source.kind}.self_instruct",
                              method="self_instruct", threshold=self.threshold,
                              extra={"answer": "extractive", "shared_words": span[1], "generated": generated, **meta})
        if not ok:
            return None, Rejected(question, f"{source.kind}.self_instruct", str(draft.validation.get("reason")))
        return draft, None

    @staticmethod
    def _add(result: SelfInstructResult, draft: QADraft | None, rejected: Rejected | None) -> None:
        if draft is not None:
            result.pairs.append(draft)
        if rejected is not None:
            result.rejected.append(rejected)
