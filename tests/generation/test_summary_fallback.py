"""A long summary whose merge step cannot be verified falls back to the checked bullets of each part.

The model server is a stand-in that writes what a small model does: each map reply quotes its first
part with the part's reference (and says it twice, as small models repeat themselves); the merge
reply either keeps a reference to what it merges or drifts into generic text without any."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.summarize import Summary, SummaryService
from lorebase.ingest.records import ChunkDraft, SourceDraft, Upsert
from lorebase.ingest.service import IngestService
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import SourceKind
from tests.local_http import serving, stream_chat_reply

TOPICS = ["budget for the microphones", "the recogniser's error rate", "the schedule of the next recording",
          "the transcription conventions", "the disk space on the server", "the noise in the far-field channel"]
GENERIC = "- The meeting covers many topics in general."


class _Model(BaseHTTPRequestHandler):
    merge_keeps_references = False
    map_cites = True
    merges = 0  # merge prompts served

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("Merge these partial summaries"):
            type(self).merges += 1
            first = next(ln for ln in prompt.splitlines() if ln.startswith("- "))
            text = first if type(self).merge_keeps_references else GENERIC
        else:
            ref, sentence = re.search(r"^\[(\d\d:\d\d)\] ([^.]+\.)", prompt, re.M).groups()  # type: ignore[union-attr]
            cite = f" [{ref}]" if type(self).map_cites else ""
            text = f"- {sentence}{cite}\n- {sentence}{cite}"
        stream_chat_reply(self, body["model"], text)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serving(_Model) as url:
        yield url


@asynccontextmanager
async def _service(tmp_path: Path, url: str, meeting: SourceDraft, generation: dict[str, object],
                   context: int) -> AsyncIterator[SummaryService]:
    """A summary service over a home holding ``meeting`` alone, its model the stand-in at ``url``."""
    settings = load_settings(home=tmp_path / "home", generation=generation)
    settings.ensure_home()
    store = Store(settings.db_url)

    class Fixed:
        label = "fixed"

        def read(self, ctx):  # type: ignore[no-untyped-def]
            yield Upsert(meeting)

    try:
        assert IngestService(settings, store, progress=False).run([Fixed()], inputs=[]).ok
        backend = OpenAIBackend(base_url=url, base_model="m", context_length=context, queue=GenerationQueue(2, 8), timeout_s=30)
        try:
            yield SummaryService(settings, store, backend)
        finally:
            await backend.aclose()
    finally:
        store.close()


async def _summarise(tmp_path: Path, url: str, merge: str = "model", words: int = 120, context: int = 700,
                     call_tokens: int = 1536) -> Summary:
    # every sentence of each part: the map batches hold one part each (700 tokens of context: one part per map batch)
    _Model.merges = 0
    meeting = SourceDraft(
        key="transcript:m/long", kind=SourceKind.transcript, title="Long meeting", lecture="Long meeting", text="...",
        chunks=[ChunkDraft(text=f"We talked about {topic} for a while. " + "Then people agreed and moved on. " * 12,
                           start_time=300.0 * i, end_time=300.0 * (i + 1)) for i, topic in enumerate(TOPICS)],
    )
    generation = {"max_concurrency": 2, "summary_sentences_per_part": 0, "summary_merge": merge, "summary_words": words,
                  "summary_call_tokens": call_tokens}
    async with _service(tmp_path, url, meeting, generation, context) as service:
        return await service.summarize(service.target(lecture="Long meeting"))


@pytest.mark.parametrize("map_cites", [True, False])
@pytest.mark.asyncio
async def test_an_unverifiable_merge_gives_way_to_the_checked_bullets_of_each_part(tmp_path: Path, model_url: str,
                                                                                 map_cites: bool) -> None:
    # map_cites=False: the model leaves the references out; the part that supports each bullet is found
    _Model.merge_keeps_references, _Model.map_cites = False, map_cites
    summary = await _summarise(tmp_path, model_url)
    lines = summary.text.splitlines()
    # one bullet per part, in order, each with the part's time, the repeated ones said once
    assert lines == [f"- We talked about {topic} for a while. [{5 * i:02d}:00]" for i, topic in enumerate(TOPICS)]
    assert GENERIC not in summary.text
    assert summary.verdict is not None and summary.verdict.supported and summary.verdict.mode == "summary"
    assert "merged summary could not be verified" in summary.verdict.reason


@pytest.mark.asyncio
async def test_a_verified_merge_is_the_summary(tmp_path: Path, model_url: str) -> None:
    _Model.merge_keeps_references, _Model.map_cites = True, True
    summary = await _summarise(tmp_path, model_url)
    assert summary.text == f"- We talked about {TOPICS[0]} for a while. [00:00]"
    assert summary.verdict is not None and summary.verdict.supported
    assert "could not be verified" not in summary.verdict.reason


def test_a_bullet_too_short_to_say_anything_is_not_shown_as_verified() -> None:
    from lorebase.generation.summarize import Part, check_bullets

    parts = [Part("00:00", "PhD A: One? Two? Three? Grad B: Yep."),
             Part("05:00", "Professor D: We compared the noise robustness of the two front ends on the digits task.")]
    text, verdict = check_bullets("- One? [00:00]\n- Yep.\n- The noise robustness of the two front ends was compared.",
                                  parts, 0.6)
    assert text == "- The noise robustness of the two front ends was compared. [05:00]"  # its part found
    assert [s.reason for s in verdict.sentences][:2] == ["too short to summarise anything"] * 2


@pytest.mark.asyncio
async def test_selected_points_are_the_summary_without_a_merge_call(tmp_path: Path, model_url: str) -> None:
    _Model.merge_keeps_references, _Model.map_cites = True, True
    summary = await _summarise(tmp_path, model_url, merge="select", words=70)
    # every part's checked bullet fits the budget: all of them, in order, and the model was not asked to merge
    assert summary.text.splitlines() == [f"- We talked about {topic} for a while. [{5 * i:02d}:00]"
                                         for i, topic in enumerate(TOPICS)]
    assert _Model.merges == 0
    assert summary.verdict is not None and summary.verdict.supported and not summary.verdict.removed
    short = await _summarise(tmp_path / "short", model_url, merge="select", words=20)
    assert len(short.text.splitlines()) == 2  # 11 words a bullet: the budget of 20 is passed on the second


@pytest.mark.asyncio
async def test_a_model_with_a_long_context_still_reads_a_long_meeting_in_parts(tmp_path: Path, model_url: str) -> None:
    """Qwen2.5's 32k context holds a one-hour meeting at once, and the 0.5B model then writes about its
    first minutes: each call reads at most generation.summary_call_tokens."""
    _Model.merge_keeps_references, _Model.map_cites = True, True
    parts = await _summarise(tmp_path, model_url, merge="select", words=70, context=32768, call_tokens=256)
    assert len(parts.text.splitlines()) == len(TOPICS)  # a part a call, as with a 700-token context
    whole = await _summarise(tmp_path / "whole", model_url, merge="model", context=32768, call_tokens=100_000)
    assert whole.text.splitlines() == [f"- We talked about {TOPICS[0]} for a while. [00:00]"]  # one call: the first part


async def _stream(tmp_path: Path, url: str, merge: str, words: int) -> tuple[str, Summary]:
    """A one-call summary of a short meeting: the streamed text and the final summary."""
    meeting = SourceDraft(
        key="transcript:m/short", kind=SourceKind.transcript, title="Short meeting", lecture="Short meeting", text="...",
        chunks=[ChunkDraft(text=f"We talked about {topic} for a while. The {topic.split()[-1]} came up twice.",
                           start_time=60.0 * i, end_time=60.0 * (i + 1)) for i, topic in enumerate(TOPICS)])
    generation = {"summary_sentences_per_part": 0, "summary_merge": merge, "summary_words": words,
                  "summary_call_tokens": 100_000}
    async with _service(tmp_path, url, meeting, generation, 32768) as service:
        events = [ev async for ev in service.stream(service.target(lecture="Short meeting"))]
    final = events[-1].summary
    assert final is not None
    return "".join(ev.text for ev in events if ev.type == "delta"), final


@pytest.mark.asyncio
async def test_a_one_call_summary_too_short_is_filled_with_the_meetings_own_sentences(tmp_path: Path,
                                                                                    model_url: str) -> None:
    """The model writes one bullet about the meeting's first minute (a 0.5B model writes 18-26 words
    about a demo lecture); the meeting's sentences about what else it keeps coming back to follow it,
    each with its time, and are streamed like the model's text."""
    _Model.merge_keeps_references, _Model.map_cites = True, True
    model_bullet = f"- We talked about {TOPICS[0]} for a while. [00:00]"
    streamed, filled = await _stream(tmp_path / "filled", model_url, "select", words=40)
    lines = filled.text.splitlines()
    assert lines[0] == model_bullet and len(lines) > 2  # the model's bullet, said once, then the meeting's own
    assert all(re.search(r"\[\d\d:\d\d\]$", ln) for ln in lines)  # each with its time
    assert sum(len(ln.split()) for ln in lines) >= 40 > sum(len(ln.split()) for ln in lines[:-1])  # up to the budget
    assert streamed.startswith(model_bullet) and all(ln in streamed for ln in lines)  # what was streamed, checked
    assert filled.verdict is not None and filled.verdict.supported
    _, plain = await _stream(tmp_path / "model", model_url, "model", words=40)
    assert plain.text.splitlines() == [model_bullet]  # the model's merge chosen: its bullet alone


@pytest.mark.asyncio
async def test_a_long_meetings_summary_opens_with_what_the_meeting_said_it_was_about(tmp_path: Path, model_url: str) -> None:
    """The chair's opening states the meeting's subject, as QMSum's references open; the model's map
    bullet for that part says only "Good morning." and is turned down, so only `summary_opening` puts
    the subject in the summary. Whole passages: a passage is never a quote that fits the budget here."""
    _Model.merge_keeps_references, _Model.map_cites = True, True
    opening = "Chair: Today the committee reviews the budget for the new recording room microphones."
    chunks = [ChunkDraft(text=f"Chair: Good morning. {opening.removeprefix('Chair: ')}", start_time=0.0, end_time=300.0)]
    chunks += [ChunkDraft(text=f"Member: We talked about {topic} for a while. " + "Then people agreed and moved on. " * 12,
                          start_time=300.0 * i, end_time=300.0 * (i + 1)) for i, topic in enumerate(TOPICS, start=1)]
    meeting = SourceDraft(key="transcript:m/opened", kind=SourceKind.transcript, title="Opened meeting",
                          lecture="Opened meeting", text="...", chunks=chunks)
    lines = {}
    for lead in (2, 0):
        generation = {"max_concurrency": 2, "summary_sentences_per_part": 0, "summary_merge": "select",
                      "summary_words": 60, "summary_opening": lead}
        async with _service(tmp_path / f"lead{lead}", model_url, meeting, generation, 700) as service:
            lines[lead] = (await service.summarize(service.target(lecture="Opened meeting"))).text.splitlines()
    assert lines[2][0] == f"- {opening} [00:00]"
    # then the rest of the meeting, the opening said once, within the budget it counts against
    assert lines[2][1:] and not any("Today the committee" in ln for ln in lines[2][1:])
    assert sum(len(ln.split()) for ln in lines[2][:-1]) < 60 <= sum(len(ln.split()) for ln in lines[2])
    assert not any("Today the committee" in ln for ln in lines[0])  # without it, the subject is not said
