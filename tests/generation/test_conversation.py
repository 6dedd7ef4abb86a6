"""The conversation service every face uses: its modes, readiness, model choice, history and the
final-text rule (the deltas spell exactly the result's text), against real parts: a real SQLite
store with an ingested lecture, the real embedder and retrieval, the real OpenAIBackend talking to
a stand-in model server (a real HTTP server speaking OpenAI's streaming protocol, replying with a
scripted text chosen by what it is asked)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lorebase.errors import EngineUnavailable, InvalidInput, PromptTooLong, UnknownModel
from lorebase.generation.conversation import MODES, ConversationEvent, ConversationRequest, ConversationResult
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.services import Services
from lorebase.settings import load_settings
from tests.local_http import serving

pytestmark = pytest.mark.slow  # loads the embedder

VTT = """WEBVTT

00:00:00.000 --> 00:00:08.000
Welcome back. Today we look at how the job scheduler of the course project handles failures.

00:00:08.000 --> 00:00:17.000
A failed job is retried three times with exponential backoff, starting at thirty seconds.

00:00:17.000 --> 00:00:26.000
After the third failure the scheduler writes a dead letter record for an operator to inspect.
"""

ANSWER = "A failed job is retried three times with exponential backoff [S1]. A failed job is never retried [S1]."
SUMMARY = ("- A failed job is retried three times with exponential backoff [00:08].\n"
           "- The scheduler emails the project manager every Friday afternoon [00:00].")
CHAT = "Hello there, I am the model."
SEEN: list[dict[str, Any]] = []  # the bodies the stand-in model was sent, newest last


class _Scripted(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self._json({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "test"},
                                               {"id": "lora-a", "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append(body)
        prompt = body["messages"][-1]["content"]
        text = SUMMARY if prompt.startswith("Summarise:") else ANSWER if "[S1]" in prompt else CHAT
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(text), 7):  # small pieces, so sentences arrive split anywhere
            self._event({"choices": [{"index": 0, "delta": {"content": text[i:i + 7]}, "finish_reason": None}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self._event({"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}})
        payload = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n")

    def _event(self, obj: dict[str, Any]) -> None:
        payload = f"data: {json.dumps({'id': 'x', 'object': 'chat.completion.chunk', 'created': 0, 'model': 'm', **obj})}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _json(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(_Scripted) as url:
        yield url


@pytest_asyncio.fixture
async def svc(tmp_path: Path, upstream: str) -> AsyncIterator[Services]:
    lectures = tmp_path / "lectures"
    lectures.mkdir()
    (lectures / "jobs.vtt").write_text(VTT)
    s = Services.build(load_settings(home=tmp_path / "home"))
    assert s.ingest.ingest([str(lectures)]).ok
    backend = OpenAIBackend(base_url=upstream, base_model="m", context_length=4096, queue=GenerationQueue(2, 2), timeout_s=30)
    await s.start_generator(backend, load_adapters=False)
    yield s
    await s.aclose()


async def _collect(svc: Services, req: ConversationRequest) -> tuple[list[ConversationEvent], ConversationResult]:
    events = [ev async for ev in svc.conversation.stream(req)]
    assert events[-1].type == "final" and events[-1].result is not None
    assert [e for e in events if e.result is not None] == events[-1:]  # one final result, last
    return events, events[-1].result


def _deltas(events: list[ConversationEvent]) -> str:
    return "".join(e.text for e in events if e.type == "delta")


@pytest.mark.asyncio
async def test_an_answer_streams_exactly_its_checked_text_with_the_verdict_and_citations(svc: Services) -> None:
    events, result = await _collect(svc, ConversationRequest.ask("How often is a failed job retried?"))
    assert events[0].type == "sources" and events[0].sources
    assert _deltas(events) == result.text == "A failed job is retried three times with exponential backoff. [S1]"
    v = result.verdict
    assert v.mode == "generated" and v.verified and v.removed == 1  # "never retried" contradicts the source
    assert result.sources[0].id == "S1" and result.sources[0].kind == "transcript"
    assert result.model == "m" and result.adapter is None and result.usage.completion_tokens == 20


@pytest.mark.asyncio
async def test_history_is_trimmed_to_the_turns_asked_for(svc: Services) -> None:
    turns = [("first question?", "first answer."), ("second question?", "second answer."), ("third question?", "third answer.")]
    messages = [m for q, a in turns for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    req = ConversationRequest([*messages, {"role": "user", "content": "How often is a failed job retried?"}], history_turns=1)
    SEEN.clear()
    await svc.conversation.complete(req)
    sent = " ".join(m["content"] for m in SEEN[-1]["messages"])
    assert "third question?" in sent and "third answer." in sent
    assert "first question?" not in sent and "second answer." not in sent


@pytest.mark.asyncio
async def test_a_summary_drafts_then_gives_only_the_bullets_that_hold_up(svc: Services) -> None:
    events, result = await _collect(svc, ConversationRequest.ask("Summarise it", mode="summary", lecture="jobs"))
    sources = events[0]
    assert sources.type == "sources" and sources.title and len(sources.sources) == 1
    assert "draft" in {e.type for e in events} and "progress" in {e.type for e in events}
    draft = "".join(e.text for e in events if e.type == "draft")
    assert draft.startswith(SUMMARY)  # what the model wrote, unchecked, then the lecture's own sentences
    assert _deltas(events) == result.text
    assert "retried three times" in result.text and "Friday" not in result.text
    assert result.verdict.mode == "summary" and result.verdict.removed == 1 and result.title == sources.title
    assert result.input_chars > 0


@pytest.mark.asyncio
async def test_plain_chat_passes_the_conversation_to_the_model_unchecked(svc: Services) -> None:
    req = ConversationRequest([{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                              mode="chat", stop=["\n\n"], max_tokens=12)
    SEEN.clear()
    events, result = await _collect(svc, req)
    assert _deltas(events) == result.text == CHAT
    assert result.verdict.mode == "chat" and not result.verdict.verified and result.sources == []
    body = SEEN[-1]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."} and body["stop"] == ["\n\n"]
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 12


@pytest.mark.asyncio
async def test_models_resolve_as_every_face_names_them(svc: Services) -> None:
    conv = svc.conversation
    alias = svc.settings.server.model_alias
    assert await conv.resolve_model(None) is None and await conv.resolve_model(alias) is None  # no adapter promoted
    assert await conv.resolve_model("m") is None  # the base model by name
    assert await conv.resolve_model("lora-a") == "lora-a"
    with pytest.raises(UnknownModel, match=rf"'nope'.*available: {alias}, m, lora-a"):
        await conv.resolve_model("nope")
    _, result = await _collect(svc, ConversationRequest.ask("Hi", mode="chat", model="lora-a"))
    assert result.model == "lora-a" and result.adapter == "lora-a"


@pytest.mark.asyncio
async def test_refusals_come_before_any_event(svc: Services) -> None:
    conv = svc.conversation
    with pytest.raises(InvalidInput, match="mode 'poem'"):
        await conv.begin(ConversationRequest.ask("Hi", mode="poem"))
    with pytest.raises(InvalidInput, match="empty"):
        await conv.begin(ConversationRequest.ask("   "))
    with pytest.raises(PromptTooLong, match="too long"):
        await conv.begin(ConversationRequest.ask("retry " * 3000, limit_question=True))
    turn = await conv.begin(ConversationRequest.ask("retry " * 3000))  # the limit is the face's choice
    assert turn.mode is MODES["answer"]


@pytest.mark.asyncio
async def test_not_ready_is_engine_unavailable_with_retry_after_while_starting(tmp_path: Path) -> None:
    s = Services.build(load_settings(home=tmp_path / "home"))
    try:
        with pytest.raises(EngineUnavailable) as not_started:
            await s.conversation.begin(ConversationRequest.ask("Hi"))
        assert not_started.value.retry_after_s is not None  # nothing failed: it may yet start
        s.readiness.begin("generator", "loading the model")
        with pytest.raises(EngineUnavailable, match="loading the model"):
            s.conversation.engine()
        s.readiness.fail("generator", "out of memory")
        with pytest.raises(EngineUnavailable, match="out of memory") as failed:
            s.conversation.engine()
        assert failed.value.retry_after_s is None
        assert s.generator is None and s.answers is None and s.summaries is None
    finally:
        await s.aclose()
