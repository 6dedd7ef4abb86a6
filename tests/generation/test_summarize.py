"""Summaries over a real store, with the in-process backend on the tiny model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from lorebase.errors import InvalidInput, NotFound
from lorebase.generation.backend import Completion, Delta, GenerationRequest
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.summarize import SummaryService
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.ingest.records import ChunkDraft, SourceDraft
from lorebase.ingest.service import IngestService
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import SourceKind

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


class Counting:
    """The real backend, counting the calls the map-reduce makes."""

    def __init__(self, inner: TransformersBackend) -> None:
        self.inner = inner
        self.base_model = inner.base_model
        self.context_length = inner.context_length
        self.calls: list[GenerationRequest] = []
        self.queue = inner.queue  # bounds the summary's concurrency: here one call at a time, in order

    def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return self.inner.count_prompt_tokens(messages)

    async def complete(self, req: GenerationRequest) -> Completion:
        self.calls.append(req)
        return await self.inner.complete(req)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.calls.append(req)
        async for d in self.inner.stream(req):
            yield d


def _fill(settings: Settings, store: Store) -> None:
    svc = IngestService(settings, store, progress=False)
    lecture = SourceDraft(
        key="transcript:c/l1", kind=SourceKind.transcript, title="Lecture 1", lecture="Lecture 1", text="...",
        chunks=[ChunkDraft(text=f"Part {i}: um, the lecturer uh explains topic number {i} in detail. " * 12,
                           start_time=60.0 * i, end_time=60.0 * (i + 1)) for i in range(12)],
    )
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    commits = [SourceDraft(key=f"commit:o/r:{c * 40}", kind=SourceKind.commit, title=f"change {c}", text=f"change {c}",
                           repo="o/r", commit=c * 40, authored_at=t0 + timedelta(days=i), chunks=[ChunkDraft(f"change {c}")])
               for i, c in enumerate("abcd")]
    issues = [SourceDraft(key=f"issue:{r}#7", kind=SourceKind.issue, title="#7 crash", text="crash", repo=r, number=7,
                          chunks=[ChunkDraft("crash")]) for r in ("o/r", "o/other")]
    from lorebase.ingest.records import Upsert

    class Fixed:
        label = "fixed"

        def read(self, ctx):  # type: ignore[no-untyped-def]
            for d in [lecture, *commits, *issues]:
                yield Upsert(d)

    assert svc.run([Fixed()], inputs=[]).ok


@pytest_asyncio.fixture
async def service(settings: Settings, store: Store, tiny_llama: Path) -> SummaryService:
    _fill(settings, store)
    # A small context forces the map-reduce path on the 12-part lecture, read whole.
    backend = await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 4), context_length=700)
    whole = settings.model_copy(update={"generation": settings.generation.model_copy(update={"summary_sentences_per_part": 0})})
    return SummaryService(whole, store, Counting(backend))  # type: ignore[arg-type]


async def test_a_transcript_summary_reads_the_sentences_about_its_subjects(service: SummaryService) -> None:
    salient = SummaryService(service.settings.model_copy(update={"generation": service.settings.generation.model_copy(
        update={"summary_sentences_per_part": 2})}), service.store, service.generator)
    await salient.summarize(salient.target(lecture="Lecture 1"))
    prompts = [c.messages[-1]["content"] for c in service.generator.calls]  # type: ignore[attr-defined]
    maps = "\n".join(p for p in prompts if "Merge these partial summaries" not in p)
    # two sentences of each 12-sentence part, each part once, in the lecture's order
    for i in range(12):
        assert maps.count(f"topic number {i} in detail") == 2
    assert maps.index("[00:00]") < maps.index("[11:00]")


async def test_targets(service: SummaryService) -> None:
    assert service.target(lecture="Lecture 1").title == "Lecture 1"
    assert service.target(lecture="transcript:c/l1").title == "Lecture 1"
    rng = service.target(commit_range="o/r:" + "a" * 7 + ".." + "c" * 7)
    assert [s.commit[0] for s in rng.sources] == ["b", "c"]  # (OLD, NEW], like git
    assert service.target(number=7, repo="o/r").sources[0].repo == "o/r"
    with pytest.raises(InvalidInput, match="several repos"):
        service.target(number=7)
    with pytest.raises(NotFound):
        service.target(lecture="Lecture 99")
    with pytest.raises(InvalidInput, match="exactly one"):
        service.target(lecture="Lecture 1", number=7)
    with pytest.raises(InvalidInput, match="REPO:OLD..NEW"):
        service.target(commit_range="abc..def")


async def test_a_long_lecture_is_summarised_by_map_reduce(service: SummaryService) -> None:
    summary = await service.summarize(service.target(lecture="Lecture 1"))
    calls = service.generator.calls  # type: ignore[attr-defined]
    assert len(calls) >= 3  # at least two map batches and one reduce
    prompts = [c.messages[-1]["content"] for c in calls]
    maps = [p for p in prompts if "Merge these partial summaries" not in p]
    merges = [p for p in prompts if "Merge these partial summaries" in p]
    assert len(maps) >= 2 and merges and prompts[-1] in merges
    assert "[00:00]" in maps[0] and "[11:00]" in maps[-1]  # parts labelled by time, in order
    # the transcript's hesitations are not sent to the model
    assert "the lecturer explains topic number 0" in maps[0] and " uh " not in maps[0] and "um," not in maps[0]
    for c in calls:  # every prompt fits the context it was given
        assert service.generator.count_prompt_tokens(c.messages) + c.max_tokens <= 700 + 64
    assert summary.sources[0].kind == "transcript" and summary.input_chars > 0


async def test_the_stream_tells_each_part_then_streams_the_final_text(service: SummaryService) -> None:
    events = [ev async for ev in service.stream(service.target(lecture="Lecture 1"))]
    progress = [ev for ev in events if ev.type == "progress"]
    maps = [ev for ev in progress if ev.text.startswith("Summarising part")]
    n = maps[0].steps  # parts: one event as the map starts, then one as each part is done
    assert n >= 2 and [(ev.step, ev.steps) for ev in maps] == [(k, n) for k in range(0, n + 1)]
    assert maps[0].text == f"Summarising part 1 of {n}"
    assert maps[-1].text == f"Summarising part {n} of {n}"
    assert progress[-1].text.startswith("Writing the summary from")
    # the final text arrives in pieces after the last progress step, and the summary is their sum
    last = events.index(progress[-1])
    deltas = [ev.text for ev in events[last:] if ev.type == "delta"]
    final = events[-1]
    assert final.type == "final" and final.summary is not None
    assert len(deltas) > 1 and "".join(deltas).strip() == final.summary.text
    assert not any(ev.type == "delta" for ev in events[:last])  # partial summaries are not shown as the answer
