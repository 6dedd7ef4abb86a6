"""Summaries of a lecture, a commit range, an issue or PR thread, or any set of sources.

Parts are labelled with where they come from ([mm:ss] for a lecture, [S1]… otherwise) so every
bullet can point back. When the parts do not fit one call (`generation.summary_call_tokens`, or the
model's context if smaller), they are summarised in batches (map); the summary is then chosen from
the batches' checked bullets (`generation.summary_merge: select`) or the partial summaries are
merged by the model (reduce), recursively.

`SummaryService.stream` yields progress ("part k of n") while the parts are summarised and the final
text as it is written; `summarize` waits for the whole summary. The calls of one step (map batches,
pairwise merges) are sent at once, up to ``generation.summary_concurrency`` at a time (by default as
many as the generation queue runs), so a vLLM server batches them instead of decoding one long
request after another.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from lorebase.citations import Citation, cite, format_timestamp
from lorebase.errors import InvalidInput, Overloaded
from lorebase.generation.backend import GenerationRequest, Generator
from lorebase.generation.disfluency import clean_transcript
from lorebase.generation.grounding import content_words
from lorebase.generation.prompts import merge_summaries_messages, summary_messages
from lorebase.generation.salience import opening, salient_passages, salient_points
from lorebase.generation.summary_targets import SummaryTarget, find_target
from lorebase.generation.support import check_claim
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Chunk
from lorebase.verdict import SentenceSupport, Verdict

TARGET_RATIO = 0.3  # aim at ~70% shorter than the input
MIN_BULLET_WORDS = 4  # content words a bullet needs before it can count as summarising a part


@dataclass
class Part:
    ref: str  # "03:15" or "S2"
    text: str


@dataclass
class Summary:
    title: str
    text: str
    sources: list[Citation]
    input_chars: int
    model: str
    verdict: Verdict | None = None


@dataclass
class SummaryEvent:
    """`progress` before each generation (what it does, as `step` of `steps`), `delta` per piece
    of the final text, `final` last with the whole summary."""

    type: Literal["progress", "delta", "final"]
    text: str = ""
    step: int = 0
    steps: int = 0
    summary: Summary | None = None
    stage: str = ""  # map | merge: which step the progress is in
    done: int = 0  # generation calls done of `total` known so far
    total: int = 0


@dataclass(frozen=True)
class SummaryProgress:
    """Generation calls done of those known so far; ``total`` grows when partial summaries need
    more than one merge. ``stage`` is ``map``, ``merge`` or ``done``."""

    stage: str
    done: int
    total: int


ProgressFn = Callable[[SummaryProgress], None]


class SummaryService:
    def __init__(self, settings: Settings, store: Store, generator: Generator) -> None:
        self.settings = settings
        self.store = store
        self.generator = generator

    # --- choosing what to summarise -----------------------------------------------------------

    def target(
        self,
        *,
        source_ids: Sequence[str] | None = None,
        lecture: str | None = None,
        commit_range: str | None = None,
        number: int | None = None,
        repo: str | None = None,
    ) -> SummaryTarget:
        return find_target(self.store, source_ids=source_ids, lecture=lecture, commit_range=commit_range, number=number, repo=repo)

    # --- writing it ---------------------------------------------------------------------------

    async def summarize(self, target: SummaryTarget, model: str | None = None, progress: ProgressFn | None = None) -> Summary:
        total = 1
        async for ev in self.stream(target, model):
            if ev.type == "progress" and progress is not None:
                progress(SummaryProgress(ev.stage, ev.done, ev.total))
                total = ev.total
            if ev.summary is not None:
                if progress is not None:
                    progress(SummaryProgress("done", total, total))  # every call known, the streamed last one too
                return ev.summary
        raise AssertionError("the summary stream ended without a final event")

    def concurrency(self) -> int:
        """Calls of one summary in flight at once: the setting, never more than the generator's queue runs."""
        g = self.settings.generation
        queue = getattr(self.generator, "queue", None)
        running = queue.max_concurrency if queue is not None else g.max_concurrency
        return min(g.summary_concurrency or running, running)

    async def stream(self, target: SummaryTarget, model: str | None = None) -> AsyncIterator[SummaryEvent]:
        parts, citations = self._parts(target)
        if not parts:
            raise InvalidInput(f"{target.title}: nothing to summarise (the source is empty)")
        input_chars = sum(len(p.text) for p in parts)
        pieces: list[str] = []
        mapped: list[str] = []
        async for ev in self._reduce(target.title, parts, model, mapped):
            if ev.type == "delta":
                pieces.append(ev.text)
            yield ev
        checked, verdict = check_bullets("".join(pieces), parts, self.settings.answer.support_threshold)
        if not verdict.supported and mapped:
            # A small model's merge can drop the references or drift from the parts; the checked
            # bullets of each part still hold up, so they are the summary rather than unverified text.
            checked, verdict = check_bullets("\n".join(mapped), parts, self.settings.answer.support_threshold)
            verdict = verdict.model_copy(update={"reason": "the merged summary could not be verified; "
                                                           f"the checked bullets of each part are shown ({verdict.reason})"})
        summary = Summary(target.title, checked, citations, input_chars, model or self.generator.base_model, verdict)
        yield SummaryEvent("final", summary=summary)

    def _parts(self, target: SummaryTarget) -> tuple[list[Part], list[Citation]]:
        """The parts to summarise. A transcript too long for one call is read by its salient
        sentences (``generation.summary_sentences_per_part``): in batches, a small model copies the
        turn-taking it reads first."""
        keep = self.settings.generation.summary_sentences_per_part
        parts, citations = self._read(target, 0)
        if keep and any(s.kind == "transcript" for s in target.sources) and not self._fits(target.title, parts):
            parts, citations = self._read(target, keep)
        return parts, citations

    def _read(self, target: SummaryTarget, keep: int) -> tuple[list[Part], list[Citation]]:
        single_lecture = len(target.sources) == 1 and target.sources[0].kind == "transcript"
        parts: list[Part] = []
        citations: list[Citation] = []
        for i, src in enumerate(target.sources, start=1):
            label = f"S{i}"
            citations.append(cite(src, None, label))
            # Joined windows repeat the chunks they join: each passage once.
            chunks: Sequence[Chunk | None] = [c for c in src.chunks if c.joins is None] or [None]
            texts = [ch.text if ch is not None else src.text for ch in chunks]
            if src.kind == "transcript":  # "uh", "um" and stutters cost tokens and say nothing
                texts = salient_passages([clean_transcript(t) for t in texts], keep)
            for ch, text in zip(chunks, texts, strict=True):
                if not text:
                    continue
                if single_lecture and ch is not None and ch.start_time is not None:
                    parts.append(Part(format_timestamp(ch.start_time), text))
                else:
                    parts.append(Part(label, text))
        return parts, citations

    def _budget(self) -> int:
        out = min(self.settings.generation.max_new_tokens, 512)
        return min(max(256, self.generator.context_length - out - 64), self.settings.generation.summary_call_tokens)

    async def _reduce(self, title: str, parts: list[Part], model: str | None,
                      mapped: list[str]) -> AsyncIterator[SummaryEvent]:
        """The summary's events; ``mapped`` receives the map step's bullets that pass the check
        against their own batch (the fallback when the merge cannot be verified)."""
        batches = self._batches(title, parts)
        calls = _Calls(self, model)
        if len(batches) == 1:
            yield SummaryEvent("progress", "Writing the summary", 1, 1, stage="map", done=0, total=1)
            pieces: list[str] = []
            async for ev in self._generate_stream(summary_messages(title, [(p.ref, p.text) for p in batches[0]]), batches[0], model):
                pieces.append(ev.text)
                yield ev
            if self.settings.generation.summary_merge == "select":
                fill = self._fill("".join(pieces), parts)
                if fill:  # streamed after the model's bullets, so the summary is still what was streamed, checked
                    yield SummaryEvent("delta", "\n" + "\n".join(fill))
            return
        n = len(batches)
        select = self.settings.generation.summary_merge == "select"
        calls.total = n + (0 if select else 1)  # the maps and, unless bullets are selected, at least one merge
        partials: list[str] = []
        yield SummaryEvent("progress", f"Summarising part 1 of {n}", 0, n, stage="map", done=0, total=calls.total)
        async for k, texts in calls.all([(summary_messages(title, [(p.ref, p.text) for p in b]), b) for b in batches]):
            yield SummaryEvent("progress", f"Summarising part {min(k + 1, n)} of {n}", k, n, stage="map",
                               done=calls.done, total=calls.total)
            partials = texts
        threshold = self.settings.answer.support_threshold
        checked = [check_bullets(text, batch, threshold) for text, batch in zip(partials, batches, strict=True)]
        mapped.extend(ln for text, verdict in checked if verdict.supported for ln in text.split("\n") if ln.strip())
        if select and mapped:
            yield SummaryEvent("progress", f"Choosing the summary's points from {n} partial summaries", 1, 1,
                               stage="merge", done=calls.done, total=calls.total)
            yield SummaryEvent("delta", "\n".join(self._select(mapped, parts)))
            return
        if select:  # no part's bullets held up: the model's merge is all there is to try
            calls.total += 1
        # The merge reads the checked bullets of each part (a part with none keeps its raw text).
        merged_parts = [Part("", text if verdict.supported else raw) for (text, verdict), raw in zip(checked, partials, strict=True)]
        while True:
            msgs = merge_summaries_messages(title, [p.text for p in merged_parts])
            if self.generator.count_prompt_tokens(msgs) <= self._budget() or len(merged_parts) == 1:
                yield SummaryEvent("progress", f"Writing the summary from {len(merged_parts)} partial summaries", 1, 1,
                                   stage="merge", done=calls.done, total=calls.total)
                async for ev in self._generate_stream(msgs, merged_parts, model):
                    yield ev
                return
            # still too long: merge pairwise (the pairs at once) and try again
            pairs = [merged_parts[j : j + 2] for j in range(0, len(merged_parts), 2)]
            calls.total += len(pairs)
            async for k, texts in calls.all([(merge_summaries_messages(title, [p.text for p in pair]), pair) for pair in pairs]):
                yield SummaryEvent("progress", f"Merging partial summaries, pair {min(k + 1, len(pairs))} of {len(pairs)}",
                                   k, len(pairs), stage="merge", done=calls.done, total=calls.total)
                merged_parts = [Part("", t) for t in texts] if texts else merged_parts

    def _select(self, points: list[str], parts: Sequence[Part]) -> list[str]:
        """A long transcript's summary from its parts' checked bullets: its opening sentences first
        (`generation.summary_opening`), then the bullets about what it keeps coming back to, filled
        with its own salient sentences when too few of the model's bullets held up."""
        quotes = _quotes(parts)
        lead = opening(quotes, self.settings.generation.summary_opening)
        return salient_points(points, [p.text for p in parts], self.settings.generation.summary_words, quotes,
                              position=_position, lead=lead)

    def _fill(self, text: str, parts: Sequence[Part]) -> list[str]:
        """The transcript's own sentences that fill a one-call summary whose checked bullets fall
        short of ``summary_words``, chosen as the select step fills a long one; none for a summary
        of anything but one timed transcript, or one long enough. On the demo lectures most of the
        model's bullets fail the check, which left summaries of 18 and 26 words."""
        quotes = _quotes(parts)
        if not quotes:
            return []
        words = self.settings.generation.summary_words
        checked, verdict = check_bullets(text, parts, self.settings.answer.support_threshold)
        points = [ln for ln in checked.split("\n") if ln.strip()] if verdict.supported else []
        if sum(len(p.split()) for p in points) >= words:
            return []
        chosen = salient_points(points, [p.text for p in parts], words, quotes, position=_position)
        return [q for q in chosen if q not in points]

    def _fits(self, title: str, parts: Sequence[Part]) -> bool:
        return self.generator.count_prompt_tokens(summary_messages(title, [(x.ref, x.text) for x in parts])) <= self._budget()

    def _split_oversize(self, title: str, part: Part) -> list[Part]:
        """A part too long for a prompt on its own is cut at a sentence or word near its middle."""
        if self._fits(title, [part]) or len(part.text) < 200:
            return [part]
        mid = len(part.text) // 2
        cut = max(part.text.rfind(". ", 0, mid) + 1, part.text.rfind(" ", 0, mid))
        cut = cut if cut > 0 else mid
        halves = [Part(part.ref, part.text[:cut].strip()), Part(part.ref, part.text[cut:].strip())]
        return [q for h in halves for q in self._split_oversize(title, h)]

    def _batches(self, title: str, parts: list[Part]) -> list[list[Part]]:
        budget = self._budget()
        parts = [q for p in parts for q in self._split_oversize(title, p)]
        batches: list[list[Part]] = [[]]
        for p in parts:
            trial = batches[-1] + [p]
            if batches[-1] and self.generator.count_prompt_tokens(summary_messages(title, [(x.ref, x.text) for x in trial])) > budget:
                batches.append([p])
            else:
                batches[-1] = trial
        return batches

    def _request(self, messages: list[dict[str, str]], parts: Sequence[Part], model: str | None) -> GenerationRequest:
        approx_input_tokens = sum(len(p.text) for p in parts) // 4
        max_tokens = max(48, min(self.settings.generation.max_new_tokens, int(approx_input_tokens * TARGET_RATIO)))
        return GenerationRequest(messages=messages, max_tokens=max_tokens, temperature=0.0, model=model,
                                 repetition_penalty=self.settings.generation.repetition_penalty)

    async def _generate(self, messages: list[dict[str, str]], parts: Sequence[Part], model: str | None) -> str:
        out = await self.generator.complete(self._request(messages, parts, model))
        return out.text

    async def _generate_stream(self, messages: list[dict[str, str]], parts: Sequence[Part],
                               model: str | None) -> AsyncIterator[SummaryEvent]:
        async for d in self.generator.stream(self._request(messages, parts, model)):
            if d.text:
                yield SummaryEvent("delta", d.text)


class _Calls:
    """One summary's generation calls: a step's calls sent at once, bounded by the service's
    concurrency; a full queue (other users) makes a call wait rather than fail the summary."""

    def __init__(self, service: SummaryService, model: str | None) -> None:
        self.service = service
        self.model = model
        self.slots = asyncio.Semaphore(service.concurrency())
        self.done = 0
        self.total = 0

    async def _call(self, messages: list[dict[str, str]], parts: Sequence[Part]) -> str:
        async with self.slots:
            wait, deadline = 0.5, time.monotonic() + self.service.settings.generation.request_timeout_s
            while True:
                try:
                    text = await self.service._generate(messages, parts, self.model)
                    break
                except Overloaded:
                    if time.monotonic() + wait > deadline:
                        raise
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 5.0)
        self.done += 1
        return text

    async def all(self, calls: Sequence[tuple[list[dict[str, str]], Sequence[Part]]]) -> AsyncIterator[tuple[int, list[str]]]:
        """Yields (calls finished, []) as each finishes, then (all, the texts in order); a failure
        cancels the rest."""
        tasks = [asyncio.ensure_future(self._call(m, p)) for m, p in calls]
        try:
            for k, fut in enumerate(asyncio.as_completed(tasks), start=1):
                await fut
                if k < len(tasks):
                    yield k, []
            yield len(tasks), [t.result() for t in tasks]
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


_REF = re.compile(r"\[((?:\d+:)?\d{1,2}:\d{2}|S\d+)\]")


def check_bullets(text: str, parts: Sequence[Part], threshold: float) -> tuple[str, Verdict]:
    """Check each bullet against the parts its reference ([mm:ss] or [S#]) names, as answer sentences
    are checked. Unsupported bullets are left out while at least one bullet holds up."""
    by_ref: dict[str, list[str]] = {}
    for p in parts:
        by_ref.setdefault(p.ref, []).append(p.text)
    timed = sorted((_seconds(r), r) for r in by_ref if not r.startswith("S") and r)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    results: list[SentenceSupport] = []
    keep: list[str] = []
    seen: set[str] = set()
    words_of: dict[str, set[str]] | None = None
    for ln in lines:
        refs = list(dict.fromkeys(_REF.findall(ln)))
        body = _REF.sub("", ln).strip().lstrip("-*• ").strip()
        key = " ".join(body.lower().split())
        if not body or key in seen:  # a small model repeats itself; each point once
            continue
        seen.add(key)
        if len(content_words(body)) < MIN_BULLET_WORDS:
            # "One?", "Grad A: Yep." are found in any transcript and say nothing about it
            results.append(SentenceSupport(text=body, labels=refs, supported=False, reason="too short to summarise anything"))
            continue
        if not refs:
            # Small models often leave the reference out: the part that supports the bullet best
            # is its reference (if the check then passes), so nothing unchecked is shown.
            if words_of is None:  # each part's words once, not once per bullet
                words_of = {r: set(content_words(" ".join(t))) for r, t in by_ref.items() if r}
            found = _locate(body, words_of)
            if found is None:
                results.append(SentenceSupport(text=body, labels=refs, supported=False, reason="cites no part of the source"))
                continue
            refs, ln = [found], f"{ln.rstrip()} [{found}]"
        evidence = " ".join(t for r in refs for t in by_ref.get(_part_ref(r, timed), []))
        if not evidence:
            results.append(SentenceSupport(text=body, labels=refs, supported=False, reason="cites no part of the source"))
            continue
        c = check_claim(body, evidence, threshold)
        results.append(SentenceSupport(text=body, labels=refs, supported=c.supported, reason=c.reason))
        if c.supported:
            keep.append(ln)
    ok = [r for r in results if r.supported]
    if not ok:
        return text.strip(), Verdict(mode="summary", supported=False, abstained=False, sentences=results,
                                     reason="no bullet could be verified against the part it cites")
    removed = len(results) - len(ok)
    return "\n".join(keep), Verdict(mode="summary", supported=True, abstained=False, sentences=results, removed=removed,
                                   reason="every bullet shown is supported by the part it cites" if not removed else
                                   f"{removed} bullet(s) the cited parts do not support were left out")


def _locate(body: str, words_of: dict[str, set[str]]) -> str | None:
    """The reference of the part whose words cover most of ``body`` (the earliest on a tie); None
    when no part is labelled."""
    words = content_words(body)
    best, best_score = None, -1.0
    for ref, have in words_of.items():
        score = sum(w in have for w in words) / max(len(words), 1)
        if score > best_score:
            best, best_score = ref, score
    return best


def _quotes(parts: Sequence[Part]) -> list[str]:
    """A transcript's parts, each line a bullet with its time; none for parts labelled [S#]."""
    return [f"- {line.strip()} [{p.ref}]" for p in parts if p.ref and not p.ref.startswith("S")
            for line in p.text.split("\n") if line.strip()]


def _position(bullet: str) -> float:
    """Where a bullet's first reference points: seconds for [mm:ss], n for [Sn]."""
    m = _REF.search(bullet)
    if m is None:
        return float("inf")
    ref = m.group(1)
    return float(ref[1:]) if ref.startswith("S") else float(_seconds(ref))


def _seconds(ref: str) -> int:
    return sum(int(n) * 60 ** i for i, n in enumerate(reversed(ref.split(":"))))


def _part_ref(ref: str, timed: Sequence[tuple[int, str]]) -> str:
    """The part a reference points into: [S2] as it is; a time, the part that starts at or before it
    (the model may cite [02:40] inside the part labelled [02:00], or write [2:00])."""
    if ref.startswith("S"):
        return ref
    t = _seconds(ref)
    before = [r for start, r in timed if start <= t]
    return before[-1] if before else ref
