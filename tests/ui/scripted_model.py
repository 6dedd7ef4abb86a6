"""A stand-in model server for the browser tests: OpenAI's chat API (streamed), answering from
scripts we wrote, keyed by words of the question. Answers cite the prompt's sources by what they
are ("the meeting", "the code"), looked up in the prompt's numbered source list, so they cite the
right label whatever order retrieval gave. lorebase reaches it through its real openai backend."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

MODEL = "scripted"
_SOURCE = re.compile(r"^\[(S\d+)\] (.+)$", re.MULTILINE)


# (words in the question, answer template, seconds between pieces); the first match answers
SCRIPTS: list[tuple[str, str, float]] = [
    ("whole retry design",
     " ".join(["The retry design waits thirty seconds before the first retry {meeting}."] +
              [f"Step {i} of the design doubles the wait again." for i in range(1, 60)]), 0.25),
    ("jobs/retry.py",
     "It holds the retry policy: retry_delay returns BASE_DELAY_S doubled for each later retry {code}. Call it like this:\n"
     "```python\ndelay = retry_delay(2)  # the second retry waits {code} sixty seconds\n", 0.02),
    ("first retry",
     "A failed job waits thirty seconds before its first retry, and the wait doubles for each later retry {meeting}. "
     "In the code, retry_delay returns BASE_DELAY_S doubled for each later retry {code}.", 0.02),
]
SUMMARY = ("- The team chose the dashboard colours and layout [00:00]\n"
           "- Failed jobs are shown in red with the time of their next retry [02:40]\n")
SUMMARY_DELAY_S = 0.3


class ScriptedModel(BaseHTTPRequestHandler):
    """Use with tests.local_http.serving; `requests` keeps every chat request's last user message."""

    requests: list[str] = []
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "test",
                                                     "max_model_len": 2048}]})
        else:
            self._json({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        messages = body.get("messages") or []
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        user = messages[-1]["content"] if messages else ""
        with self.lock:
            self.requests.append(user)
        if "summarise" in system.lower():
            text, delay = SUMMARY, SUMMARY_DELAY_S
        else:
            text, delay = self._answer(user)
        self._stream(text, delay)

    @staticmethod
    def _answer(prompt: str) -> tuple[str, float]:
        question = prompt.rsplit("Question:", 1)[-1].lower()
        labels = dict(_SOURCE.findall(prompt))  # S1 -> "jobs/retry.py:1-40@abc1234"

        def first(word: str) -> str:
            found = next((lbl for lbl, head in labels.items() if word in head), next(iter(labels), "S1"))
            return f"[{found}]"

        for words, template, delay in SCRIPTS:
            if words in question:
                return template.format(meeting=first("IS1001a"), code=first("retry.py")), delay
        return "The sources do not contain the answer to this question.", 0.0

    def _stream(self, text: str, delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
            body: dict[str, Any] = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                                    "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                body["usage"] = usage
            return f"data: {json.dumps(body)}\n\n".encode()

        pieces = re.findall(r"\S+\s*|\s+", text)
        try:
            self.wfile.write(chunk({"role": "assistant", "content": ""}))
            for piece in pieces:
                self.wfile.write(chunk({"content": piece}))
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            self.wfile.write(chunk({}, "stop"))
            self.wfile.write(chunk({}, usage={"prompt_tokens": 100, "completion_tokens": len(pieces),
                                              "total_tokens": 100 + len(pieces)}))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client stopped the answer
            pass
