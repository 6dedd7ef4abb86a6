"""The server's generator used from a job thread: every call runs on the loop that owns it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from lorebase.generation.backend import Completion, Delta, GenerationRequest, Message, Usage, collect
from lorebase.scheduler.served_generator import ServedGenerator


class LoopBound:
    """A generator that, like the real backends, only works on the loop it was made on."""

    base_model = "tiny"
    context_length = 64
    base_url = "http://127.0.0.1:9/v1"

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()  # bound to this loop once used
        self.adapters: list[str] = []

    def _check(self) -> None:
        if asyncio.get_running_loop() is not self.loop:
            raise RuntimeError("called from a foreign event loop")

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self._check()
        async with self.lock:
            yield Delta("hel")
            yield Delta("lo", finish_reason="stop", usage=Usage(3, 2))

    async def complete(self, req: GenerationRequest) -> Completion:
        return await collect(self.stream(req))

    async def models(self) -> list[str]:
        self._check()
        return ["tiny", *self.adapters]

    async def load_adapter(self, name: str, path: Path) -> None:
        self._check()
        self.adapters.append(name)

    async def unload_adapter(self, name: str) -> None:
        self._check()
        self.adapters.remove(name)

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"]) for m in messages)

    async def aclose(self) -> None:
        raise AssertionError("the job must not close the server's generator")


def test_calls_from_a_job_thread_run_on_the_servers_loop(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        async def make() -> LoopBound:
            return LoopBound()

        inner = asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=10)
        req = GenerationRequest(messages=[{"role": "user", "content": "hi"}])

        async def job() -> None:  # a job's own loop, in this (other) thread
            with pytest.raises(RuntimeError, match="foreign"):
                await inner.complete(req)
            served = ServedGenerator(inner, loop)
            assert (served.base_model, served.context_length, served.base_url) == ("tiny", 64, inner.base_url)
            done = await served.complete(req)
            assert (done.text, done.finish_reason, done.usage) == ("hello", "stop", Usage(3, 2))
            assert [d.text async for d in served.stream(req)] == ["hel", "lo"]
            await served.load_adapter("a1", tmp_path)
            assert await served.models() == ["tiny", "a1"]
            await served.unload_adapter("a1")
            assert served.count_prompt_tokens([{"role": "user", "content": "abcd"}]) == 4
            await served.aclose()

        asyncio.run(job())
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
