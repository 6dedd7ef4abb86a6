"""A generator that fails after streaming has begun: the client gets the text so far, one error chunk
in OpenAI's shape, then `data: [DONE]`; and the server goes on serving.

The lorebase server is real (uvicorn, a small ingested corpus) and so is its generator, lorebase's
OpenAI backend. What fails is the model server behind it: a few lines of the standard library that
stream three pieces of text and then break the way a real one can (the connection drops halfway
through the body, an error event arrives, a chunk is not JSON). One backend subclass raises a plain
bug (RuntimeError) mid-stream, for the branch that must not leak the exception's text.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import openai
import pytest

from lorebase.generation.backend import Delta, GenerationRequest
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from tests.api.conftest import Running, api_settings, ingest_corpus, serve
from tests.local_http import serving

pytestmark = pytest.mark.slow  # a real server over an ingested corpus: ~10 s for the module

MODEL = "upstream-model"
PIECES = ["Hel", "lo", " wor"]  # streamed before every failure
SECRET = "/srv/secret/path.py"  # in the RuntimeError's text; must never reach the client


class _Upstream(BaseHTTPRequestHandler):
    """A model server's chat endpoint. A word in the prompt picks how the stream ends."""

    protocol_version = "HTTP/1.1"  # chunked bodies, so a cut-off body is detectable as one

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = " ".join(str(m.get("content", "")) for m in body["messages"])
        self.close_connection = True
        if "[down]" in prompt:  # failing before any text
            data = json.dumps({"error": {"message": "engine is restarting", "code": 503}}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in PIECES:
            self._event(self._chunk({"content": piece}, None))
        if "[drop]" in prompt:  # the process died: the body ends without its last chunk
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "[error]" in prompt:  # what vLLM sends when the engine fails mid-answer
            self._event(json.dumps({"error": {"message": "EngineCore died mid-answer", "type": "InternalServerError", "code": 500}}))
        elif "[garbage]" in prompt:
            self._event("{not json")
        else:
            self._event(self._chunk({}, "stop"))
            usage = {"prompt_tokens": 11, "completion_tokens": len(PIECES), "total_tokens": 11 + len(PIECES)}
            self._event(json.dumps({"id": "u", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                                    "choices": [], "usage": usage}))
            self._event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    @staticmethod
    def _chunk(delta: dict[str, str], finish: str | None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return json.dumps({"id": "u", "object": "chat.completion.chunk", "created": 0, "model": MODEL, "choices": [choice]})

    def _event(self, data: str) -> None:
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        pass


class BuggyBackend(OpenAIBackend):
    """The real backend, plus a bug: a RuntimeError after two pieces when the prompt says [bug]."""

    async def stream(self, req: GenerationRequest) -> AsyncGenerator[Delta, None]:
        buggy = any("[bug]" in m.get("content", "") for m in req.messages)
        sent = 0
        async with aclosing(super().stream(req)) as inner:  # closed at once, so its queue slot is freed
            async for d in inner:
                yield d
                sent += bool(d.text)
                if buggy and sent == 2:
                    raise RuntimeError(f"index out of range in {SECRET}")


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(_Upstream) as url:
        yield url


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, upstream: str) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("api-stream-errors")
    settings = api_settings(tmp / "home", tiny_llama)
    ingest_corpus(settings, tmp)
    # One slot and no waiting room: a slot that a failed stream kept would refuse the next request (429).
    backend = BuggyBackend(base_url=upstream, base_model=MODEL, context_length=2048, queue=GenerationQueue(1, 0), timeout_s=30)
    yield from serve(settings, generator=backend)


def client(api: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0)


def sse_data(api: Running, content: str, **extra: object) -> list[str]:
    """The `data:` payloads of a raw streamed chat completion, in order."""
    body = {"model": MODEL, "stream": True, "mode": "chat", "messages": [{"role": "user", "content": content}], **extra}
    with httpx.stream("POST", api.url + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return [line[len("data:"):].strip() for line in r.iter_lines() if line.startswith("data:")]


def assert_serves(api: Running) -> None:
    """A whole streamed answer and a whole plain one, right after a failure."""
    payloads = sse_data(api, "hello", stream_options={"include_usage": True})
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(PIECES)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["usage"]["completion_tokens"] == len(PIECES)
    r = client(api).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hello"}], extra_body={"mode": "chat"})
    assert r.choices[0].message.content == "".join(PIECES)


@pytest.mark.parametrize(
    ("word", "says"),
    [("[drop]", "connection to the model server"), ("[error]", "EngineCore died mid-answer"), ("[garbage]", "model server")],
)
def test_a_model_server_failing_mid_stream_gives_an_error_chunk_then_done(api: Running, word: str, says: str) -> None:
    for _ in range(2):  # twice: the one generation slot must come back after each failure
        payloads = sse_data(api, f"say hello {word}")
        assert payloads[-1] == "[DONE]"
        *chunks, error = [json.loads(p) for p in payloads[:-1]]
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(PIECES)
        assert all(c["choices"][0].get("finish_reason") is None for c in chunks), "a failed answer must not look finished"
        assert set(error) == {"error"} and set(error["error"]) == {"message", "type", "param", "code"}
        assert error["error"]["type"] == "server_error" and error["error"]["code"] == "engine_unavailable"
        assert says in error["error"]["message"]
    assert_serves(api)


def test_the_openai_client_receives_the_text_then_raises_the_error(api: Running) -> None:
    stream = client(api).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "say hello [error]"}], stream=True, extra_body={"mode": "chat"}
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "".join(PIECES)
    assert not isinstance(e.value, openai.APIStatusError)  # the status was 200; the error came in the stream
    assert e.value.message.endswith("EngineCore died mid-answer")
    assert isinstance(e.value.body, dict) and e.value.body["code"] == "engine_unavailable"
    assert_serves(api)


def test_answer_mode_never_shows_unchecked_text_before_a_failure(api: Running) -> None:
    # Answer mode shows a sentence only once it is complete and checked: the model's "Hello wor"
    # before the drop was never shown, so the failure is still a plain HTTP error, not a stream.
    with pytest.raises(openai.InternalServerError) as e:
        for _ in client(api).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "How many times is a failed job retried? [drop]"}], stream=True
        ):
            pass
    assert e.value.status_code == 503
    assert isinstance(e.value.body, dict) and e.value.body["code"] == "engine_unavailable"
    assert_serves(api)


def test_a_bug_mid_stream_is_an_internal_error_that_shows_no_internals(api: Running) -> None:
    payloads = sse_data(api, "say hello [bug]")
    assert payloads[-1] == "[DONE]"
    *chunks, error = [json.loads(p) for p in payloads[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(PIECES[:2])
    assert error["error"]["code"] == "internal_error" and error["error"]["type"] == "server_error"
    assert SECRET not in json.dumps(payloads) and "RuntimeError" not in json.dumps(payloads)
    assert_serves(api)


def test_a_failure_before_any_text_is_a_plain_http_error(api: Running) -> None:
    for mode in ("chat", "answer"):
        question = "How many times is a failed job retried? [down]"
        body = {"model": MODEL, "stream": True, "mode": mode, "messages": [{"role": "user", "content": question}]}
        r = httpx.post(api.url + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 503, (mode, r.text)
        assert r.json()["error"]["code"] == "engine_unavailable" and "engine is restarting" in r.json()["error"]["message"]
    assert_serves(api)
