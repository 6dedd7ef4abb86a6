"""Grounded answers: retrieve, keep the evidence lines that bear on the question, generate, check
every sentence before it is shown, and fall back to quoting the evidence when nothing the model
wrote holds up. This module alone decides the final text of an answer.

The service yields typed events; the API turns them into SSE and the UI into messages. What is
streamed is exactly the final answer: each sentence is checked as soon as it is complete.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lorebase.citations import Citation, cite
from lorebase.errors import PromptTooLong
from lorebase.generation import evidence as ev_select
from lorebase.generation import grounding
from lorebase.generation.backend import GenerationRequest, Generator, Usage
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence, answer_messages, fit_evidence
from lorebase.generation.quotes import TOP_QUOTE_LEAD, extractive, quotable, quote
from lorebase.generation.sentence_stream import FENCE, SentenceStream
from lorebase.generation.support import check_claim
from lorebase.generation.vector_cache import VectorCache
from lorebase.settings import Settings
from lorebase.verdict import SentenceSupport, Verdict

if TYPE_CHECKING:
    from lorebase.generation.answerability import AnswerabilityJudge
    from lorebase.index.search import Hit, SearchService

NOTHING_FOUND = "I could not find anything about this in the ingested sources."
NOT_IN_SOURCES = f"{ABSTAIN_TEXT} The closest sources are listed below."


@dataclass
class AnswerEvent:
    """`sources` once retrieval is done, `delta` per piece of text, `final` last."""

    type: Literal["sources", "delta", "final"]
    text: str = ""
    sources: list[Citation] = field(default_factory=list)
    verdict: Verdict | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    answer: str = ""  # on `final`: the whole answer as shown and stored


@dataclass
class Answer:
    text: str
    sources: list[Citation]
    verdict: Verdict
    usage: Usage
    model: str
    finish_reason: str


class AnswerService:
    def __init__(self, settings: Settings, search: SearchService, generator: Generator,
                 judge: AnswerabilityJudge | None = None) -> None:
        self.settings = settings
        self.search = search
        self.generator = generator
        self.judge = judge  # whether the sources answer a repository question at all (None: not asked)
        self.vectors = VectorCache(settings.answer.evidence_vector_cache)

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
        hits, unmentioned = await asyncio.to_thread(self.search.retrieve_checked, question, top_k, filters,
                                                    check=self.settings.answer.abstain_when_unmentioned)
        closest = [cite(h.source, h.chunk, f"S{i}", score=round(h.score, 6)) for i, h in enumerate(hits, start=1)]
        selections = await asyncio.to_thread(self._select, question, hits, closest) if hits and not unmentioned else []
        relevant = self._relevant(selections)
        unanswered = await self._judged_unanswerable(question, hits) if selections and relevant else None
        if not hits or unmentioned or not relevant or unanswered:
            yield AnswerEvent("sources", sources=closest)
            text, reason = NOTHING_FOUND, "retrieval found nothing relevant to the question"
            if unmentioned:
                names = _quoted(unmentioned)
                text, reason = f"The sources never mention {names}. {NOT_IN_SOURCES}", f"the sources never mention {names}"
            elif unanswered:
                text, reason = NOT_IN_SOURCES, unanswered
            elif closest:
                text = NOT_IN_SOURCES
            yield AnswerEvent("delta", text=text)
            yield AnswerEvent("final", sources=closest, answer=text, finish_reason="stop", usage=Usage(0, 0),
                              verdict=Verdict(mode="abstained", supported=False, abstained=True, reason=reason))
            return

        evidence = [Evidence(s.citation.model_copy(update={"snippet": s.text}), s.text) for s in selections]
        kept = fit_evidence(question, evidence, lambda m: count([*m[:1], *history, *m[1:]]), budget)
        by_label = {s.citation.id: s for s in selections}
        sources = [e.citation for e in kept]
        yield AnswerEvent("sources", sources=sources)

        req = GenerationRequest(
            messages=answer_messages(question, kept, history),
            max_tokens=out_tokens,
            temperature=self.settings.generation.temperature if temperature is None else temperature,
            model=model,
            repetition_penalty=self.settings.generation.repetition_penalty,
        )
        checker = _SentenceChecker(kept, self.settings.answer.support_threshold)
        cutter = SentenceStream()
        shown: list[str] = []
        usage, finish = Usage(0, 0), "stop"
        async with aclosing(self.generator.stream(req)) as deltas:  # type: ignore[type-var]  # every backend's stream is an async generator
            async for d in deltas:
                if d.text:
                    for piece in cutter.feed(d.text):
                        if (out := checker.take(piece)) is not None:
                            shown.append(out)
                            yield AnswerEvent("delta", text=out if len(shown) == 1 else _sep(out) + out)
                if d.finish_reason is not None:
                    finish = d.finish_reason
                if d.usage is not None:
                    usage = d.usage
                if checker.repeats >= 2:  # the model is looping: stop paying for it
                    finish = "stop"
                    break
        for piece in cutter.close():
            if (out := checker.take(piece)) is not None:
                shown.append(out)
                yield AnswerEvent("delta", text=out if len(shown) == 1 else _sep(out) + out)

        if shown:
            text = "".join(s if i == 0 else _sep(s) + s for i, s in enumerate(shown))
            if (quote := self._top_quote(kept, by_label, checker.results)) is not None:
                checker.results.append(quote[1])
                text += quote[0]
                yield AnswerEvent("delta", text=quote[0])
            verdict = Verdict(mode="generated", supported=True, abstained=False, sentences=checker.results,
                              removed=checker.removed,
                              reason="supported" if not checker.removed else
                              f"{checker.removed} sentence(s) the sources do not support were left out")
        else:
            a = self.settings.answer
            # The model's own "not in the sources" stands unless an evidence line is very close to the question.
            bar = a.override_abstention_score if checker.abstained else a.min_evidence_score
            strong = quotable([by_label[e.label] for e in kept], bar, most=a.quotes, share=a.quote_share)
            if not strong:
                text = NOT_IN_SOURCES
                reason = ("the model found no answer in the sources" if checker.abstained else
                          "nothing the model wrote could be verified") + " and no evidence line clearly holds one"
                verdict = Verdict(mode="abstained", supported=False, abstained=True, sentences=checker.results,
                                  removed=checker.removed, reason=reason)
            else:
                text, sentences = extractive(strong)
                # the model's sentences the check turned down stay on record before the quotes, as in `generated`
                verdict = Verdict(mode="extractive", supported=True, abstained=False, sentences=[*checker.results, *sentences],
                                  removed=checker.removed,
                                  reason=("the model found no answer in the sources, but an evidence line is close "
                                          "to the question; quoting it") if checker.abstained else
                                  "nothing the model wrote could be verified; quoting the best evidence")
            yield AnswerEvent("delta", text=text)
        yield AnswerEvent("final", sources=sources, verdict=verdict, usage=usage, finish_reason=finish, answer=text)

    async def answer(self, question: str, **kwargs: Any) -> Answer:
        """The whole answer at once: the same text the stream shows."""
        final: AnswerEvent | None = None
        async for ev in self.stream(question, **kwargs):
            if ev.type == "final":
                final = ev
        assert final is not None and final.verdict is not None
        return Answer(final.answer, final.sources, final.verdict, final.usage or Usage(0, 0),
                      kwargs.get("model") or self.generator.base_model, final.finish_reason or "stop")

    async def _judged_unanswerable(self, question: str, hits: Sequence[Hit]) -> str | None:
        """Why the answer abstains when the answerability judge says the top chunks do not answer a
        repository question; None when they do, or when the question is not judged."""
        from lorebase.generation.answerability import judged

        if self.judge is None or not judged(hits):
            return None
        score = await self.judge.ascore(question, hits)
        threshold = self.settings.answer.answerability_threshold
        if score >= threshold:
            return None
        return (f"the answerability judge ({self.judge.name}) scored the top sources {score:.2f}, below "
                f"{threshold:g}: they do not appear to answer the question")

    def _top_quote(self, kept: Sequence[Evidence], by_label: dict[str, ev_select.Selection],
                   results: Sequence[SentenceSupport]) -> tuple[str, SentenceSupport] | None:
        """The top-ranked source's best line, quoted, when no shown sentence cites that source. On the
        QMSum train queries the model wrote about a lower-ranked source while the first held the gold
        span for 30 of 289 answers: the quote shows it, with its time, without a second model call."""
        if not self.settings.answer.quote_top_source or not kept:
            return None
        top = kept[0].label
        if any(top in r.labels for r in results if r.supported):
            return None
        sel = by_label[top]
        if sel.score < self.settings.answer.min_evidence_score:
            return None
        text, support = quote(sel, reason="quoted from the top-ranked source")
        return f"\n\n{TOP_QUOTE_LEAD}\n{text}", support

    # --- evidence and relevance -----------------------------------------------------------------

    def _select(self, question: str, hits: Sequence[Hit], cites: Sequence[Citation]) -> list[ev_select.Selection]:
        emb = self.search.embedder
        raw = getattr(emb, "embed", None)
        model = str(getattr(emb, "model_name", ""))
        embed = None if raw is None else partial(self.vectors.embed, model, embed=raw)
        qvec = np.asarray(emb.get_query_embedding(question), dtype=np.float32)
        qvec /= max(float(np.linalg.norm(qvec)), 1e-9)
        chunks = [(c, h.chunk.text, h.chunk.meta) for c, h in zip(cites, hits, strict=True)]
        budget = int(self.settings.answer.evidence_tokens_per_source * 3.5)  # ~3.5 characters a token
        return ev_select.select(question, chunks, embed, qvec, budget)

    def _relevant(self, selections: Sequence[ev_select.Selection]) -> bool:
        """Does any retrieved chunk plausibly concern the question? Its best evidence unit's blended
        word-overlap and cosine score, since a fused rank score says nothing about absolute relevance."""
        return max((s.score for s in selections[:3]), default=0.0) >= self.settings.answer.min_relevance


def _quoted(words: Sequence[str]) -> str:
    """The words, quoted, as a sentence lists them: “GPU” or “CUDA” (four at most)."""
    q = [f"\u201c{w}\u201d" for w in words[:4]]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " or " + q[-1]


def _sep(piece: str) -> str:
    return "\n" if piece.startswith(("- ", "* ", FENCE)) or piece[:3].rstrip(".").isdigit() else " "


class _SentenceChecker:
    """Checks each complete sentence against the evidence it cites (or, uncited, the evidence that
    supports it best) and returns the text to show, with its citations, or None to leave it out."""

    def __init__(self, evidence: Sequence[Evidence], threshold: float) -> None:
        self.texts = {e.label: e.text for e in evidence}
        self.code = {e.label for e in evidence if e.citation.kind == "code"}
        self.threshold = threshold
        self.results: list[SentenceSupport] = []
        self.removed = 0
        self.repeats = 0
        self.abstained = False
        self._shown: list[set[str]] = []

    def take(self, piece: str) -> str | None:
        if piece.lstrip().startswith(FENCE):
            return self._code(piece.strip())
        piece = _SPEAKER_TAG.sub("", normalize_citations(piece))
        labels = [lbl for lbl in dict.fromkeys(grounding.CITATION.findall(piece)) if lbl in self.texts]
        bare = grounding.CITATION.sub("", piece).strip()
        bare = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(bare.split()))  # "backoff [S1]." leaves "backoff ."
        if not grounding.content_words(bare):
            return None  # a lone citation, a heading marker: nothing to show on its own
        if grounding.is_abstention(bare):
            self.abstained = True
            return None
        words = set(grounding.content_words(bare))
        if len(words) < MIN_CONTENT_WORDS:
            return None
        if any(len(words & seen) >= 0.8 * len(words) for seen in self._shown):
            self.repeats += 1  # small models loop; a sentence said once is enough
            return None
        if labels:
            c = check_claim(bare, " ".join(self.texts[lbl] for lbl in labels), self.threshold,
                            code=bool(self.code & set(labels)))
            if c.supported:
                return self._record(bare, labels, True, c.reason)
        # Uncited, or its citations do not hold it: the single source that supports it, if any.
        ranked = sorted(self.texts, key=lambda lbl: -grounding.support(bare, self.texts[lbl]))
        for lbl in ranked[:2]:
            c = check_claim(bare, self.texts[lbl], self.threshold, code=lbl in self.code)
            if c.supported:
                return self._record(bare, [lbl], True, c.reason)
        reason = check_claim(bare, " ".join(self.texts[lbl] for lbl in (labels or ranked[:1])), self.threshold).reason
        return self._record(bare, labels, False, reason)

    def _code(self, block: str) -> str | None:
        """A fenced block is shown as written (a [2] or [S1] inside code is code) when the sources hold
        it, by word share only: rules on names and numbers would flag every identifier."""
        labels = [lbl for lbl in dict.fromkeys(grounding.CITATION.findall(block)) if lbl in self.texts]
        pool = labels or list(self.texts)
        best = max(pool, key=lambda lbl: grounding.support(block, self.texts[lbl]))
        ok = grounding.support(block, self.texts[best]) >= self.threshold
        self.results.append(SentenceSupport(text=block, labels=[best] if ok else [], supported=ok,
                                            reason="supported" if ok else "code not found in the sources"))
        if not ok:
            self.removed += 1
            return None
        self._shown.append(set(grounding.content_words(block)))
        return block if labels else f"{block}\n[{best}]"

    def _record(self, text: str, labels: list[str], ok: bool, reason: str) -> str | None:
        self.results.append(SentenceSupport(text=text, labels=labels, supported=ok, reason=reason))
        if not ok:
            self.removed += 1
            return None
        self._shown.append(set(grounding.content_words(text)))
        return text + "".join(f" [{lbl}]" for lbl in labels)


# "[Grad B]: ...", "[Bed002] Professor C: ..." -- the model copying a source's header or a speaker
# label in brackets; the label after it stays (it is part of what the source says).
_SPEAKER_TAG = re.compile(r"^(?:\s*\[(?!S\d+\])[^\]\n]{1,40}\]:?)+\s*")
MIN_CONTENT_WORDS = 3  # "Mmm.", "[Laughter.]", "Yes, exactly." answer nothing
# [S1] [Source S1]: [S1, S3] [2] and (S2) (Source S2); a bare number in parentheses is left alone.
_CITE_VARIANTS = re.compile(
    r"\[\s*(?:Sources?\s*)?S?(\d{1,2}(?:\s*[,;]\s*S?\d{1,2})*)\s*\]:?"
    r"|\(\s*(?:Sources?\s*)?S(\d{1,2}(?:\s*[,;]\s*S?\d{1,2})*)\s*\)", re.I)


def normalize_citations(text: str) -> str:
    """The model's ways of citing ("[Source S1]:", "(S2)", "[S1, S3]", "[2]") written as [S1] [S2]."""
    def fix(m: re.Match[str]) -> str:
        return " ".join(f"[S{n}]" for n in re.findall(r"\d+", m.group(1) or m.group(2)))
    return _CITE_VARIANTS.sub(fix, text)
