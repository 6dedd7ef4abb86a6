"""The map step of a long summary sends its batches at once, bounded by the generation queue, and
reports its progress. The model server here is a stand-in (a few lines of the standard library)
that answers every chat request after a pause and records how many were in flight at once: what
is measured is our client's concurrency, which a real vLLM turns into one batch."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.summarize import SummaryProgress, SummaryService
from lorebase.ingest.records import ChunkDraft, SourceDraft, Upsert
from lorebase.ingest.service import IngestService
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import SourceKind
from tests.local_http import serving, stream_chat_reply

pytestmark = pytest.mark.asyncio

PAUSE_S = 0.25


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.prompts: list[str] = []


RECORD = Recorder()


class _Model(BaseHTTPRequestHandler):
    """An OpenAI-style streaming chat endpoint: one bullet per request, after PAUSE_S."""

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with RECORD.lock:
            RECORD.in_flight += 1
            RECORD.most = max(RECORD.most, RECORD.in_flight)
            RECORD.prompts.append(body["messages"][-1]["content"])
        try:
            time.sleep(PAUSE_S)
        finally:
            # Counted out before the reply is written: a client that sends its next request as soon
            # as the reply arrives must not overlap a handler still on its way out.
            with RECORD.lock:
                RECORD.in_flight -= 1
        stream_chat_reply(self, body["model"], "- a point [00:00]")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    with serving(_Model) as url:
        yield url


def _settings(tmp_path: Path, **generation: object) -> Settings:
    s = load_settings(home=tmp_path / "home", generation={"max_concurrency": 4, "summary_sentences_per_part": 0, **generation})
    s.ensure_home()
    return s


def _lecture(settings: Settings, store: Store, parts: int) -> None:
    """A lecture of `parts` one-minute chunks, each long enough to need a map batch of its own."""
    lecture = SourceDraft(
        key="transcript:c/long", kind=SourceKind.transcript, title="Long lecture", lecture="Long lecture", text="...",
        chunks=[ChunkDraft(text=f"Minute {i}: the lecturer explains topic {i} with an example. " * 14,
                           start_time=60.0 * i, end_time=60.0 * (i + 1)) for i in range(parts)],
    )

    class Fixed:
        label = "fixed"

        def read(self, ctx):  # type: ignore[no-untyped-def]
            yield Upsert(lecture)

    assert IngestService(settings, store, progress=False).run([Fixed()], inputs=[]).ok


async def _summarise(settings: Settings, url: str, events: list[SummaryProgress]) -> tuple[float, int]:
    store = Store(settings.db_url)
    try:
        _lecture(settings, store, parts=12)
        g = settings.generation
        backend = OpenAIBackend(base_url=url, base_model="m", context_length=700,  # small: one part per map batch
                                queue=GenerationQueue(g.max_concurrency, g.max_queue), timeout_s=30)
        service = SummaryService(settings, store, backend)
        deadline = time.monotonic() + 10
        while RECORD.in_flight and time.monotonic() < deadline:  # the last test's handlers finish writing
            time.sleep(0.05)
        RECORD.most, RECORD.prompts = 0, []
        t0 = time.perf_counter()
        summary = await service.summarize(service.target(lecture="Long lecture"), progress=events.append)
        wall = time.perf_counter() - t0
        await backend.aclose()
        assert summary.text.startswith("- a point")
        return wall, len(RECORD.prompts)
    finally:
        store.close()


async def test_map_calls_overlap_up_to_the_queue_limit(tmp_path: Path, model_url: str) -> None:
    events: list[SummaryProgress] = []
    wall, calls = await _summarise(_settings(tmp_path), model_url, events)
    maps = [p for p in RECORD.prompts if "Minute " in p]  # merges carry only the partial summaries
    assert len(maps) >= 8, "the lecture must need many map batches, or this shows nothing"
    # The server saw 4 requests at once (each is held PAUSE_S), never more: the queue's 4 slots, all busy.
    assert RECORD.most == 4, f"the map step should keep the queue's 4 slots busy, not {RECORD.most}"

    # Progress: one event per finished call, never going back, ending done with everything counted.
    dones = [e.done for e in events]
    assert dones == sorted(dones) and events[-1] == SummaryProgress("done", calls, calls)
    assert all(e.done <= e.total for e in events)
    assert [e.stage for e in events][:2] == ["map", "map"] and "merge" in {e.stage for e in events}


async def test_one_at_a_time_when_summary_concurrency_is_1(tmp_path: Path, model_url: str) -> None:
    events: list[SummaryProgress] = []
    wall, calls = await _summarise(_settings(tmp_path, summary_concurrency=1), model_url, events)
    assert RECORD.most == 1 and wall >= calls * PAUSE_S
