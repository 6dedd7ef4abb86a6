"""How the OpenAI backend reports a failing server: error mapping only.

The server here is a few lines of the standard library answering with fixed errors; it is not a model
server. Everything that needs real answers runs against a real vLLM in test_vllm_server.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from lorebase.errors import EngineUnavailable, InvalidInput, LorebaseError, Overloaded, PromptTooLong, UnknownModel
from lorebase.generation.backend import GenerationRequest
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from tests.local_http import serving

pytestmark = pytest.mark.asyncio

# path of the model name -> (status, body); "stream-error" answers 200 and fails inside the stream.
REPLIES: dict[str, tuple[int, dict[str, object]]] = {
    "down": (503, {"error": {"message": "engine is restarting", "type": "ServiceUnavailable", "code": 503}}),
    "broken": (500, {"error": {"message": "EngineCore encountered an issue", "type": "InternalServerError", "code": 500}}),
    "missing": (404, {"error": {"message": "The model `missing` does not exist.", "type": "NotFoundError", "code": 404}}),
    "long": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049 input tokens",
                "code": 400,
            }
        },
    ),
    "busy": (429, {"error": {"message": "too many requests", "code": 429}}),
    "bad": (400, {"error": {"message": "temperature must be non-negative", "code": 400}}),
}


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body.get("model", "")
        if model == "stream-error":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            choice = {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}
            chunk = {"id": "1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b'data: {"error": {"message": "engine died mid-answer", "code": 500}}\n\n')
            return
        status, reply = REPLIES[model]
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def failing_server() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


def _backend(url: str) -> OpenAIBackend:
    return OpenAIBackend(base_url=url, base_model="base", context_length=2048, queue=GenerationQueue(2, 2), timeout_s=10)


@pytest.mark.parametrize(
    ("model", "error", "says"),
    [
        ("down", EngineUnavailable, "503"),
        ("broken", EngineUnavailable, "500"),
        ("missing", UnknownModel, "does not exist"),
        ("long", PromptTooLong, "2048"),
        ("busy", Overloaded, "too many"),
        ("bad", InvalidInput, "temperature"),
        ("stream-error", EngineUnavailable, "mid-answer"),
    ],
)
async def test_server_errors_become_lorebase_errors(failing_server: str, model: str, error: type[LorebaseError], says: str) -> None:
    backend = _backend(failing_server)
    try:
        with pytest.raises(error, match=says):
            await backend.complete(GenerationRequest([{"role": "user", "content": "hi"}], model=model))
    finally:
        await backend.aclose()


async def test_a_server_that_is_not_there_is_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = _backend(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(EngineUnavailable, match="cannot be reached"):
            await backend.complete(GenerationRequest([{"role": "user", "content": "hi"}]))
        with pytest.raises(EngineUnavailable):
            await backend.models()
    finally:
        await backend.aclose()
