"""The server's generator, used from a job thread.

Inside `lorebase serve` the generator belongs to the API's event loop (its HTTP client, queue and
locks are bound to it). A job runs in a worker thread with an event loop of its own; this wrapper
hands each call over to the server's loop and waits for it there, so QA self-instruct, the gate on
the configured backend and the scheduled evaluation share the one running model server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lorebase.generation.backend import Completion, Delta, GenerationRequest, Generator, Message

T = TypeVar("T")


class ServedGenerator:
    """A Generator whose calls run on ``loop`` (the server's); closing it leaves the server's open."""

    def __init__(self, inner: Generator, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.loop = loop
        self.base_model = inner.base_model
        self.context_length = inner.context_length
        # A generator behind an HTTP server (vLLM) is judged over HTTP directly (lorebase.eval.judge).
        self.base_url: str | None = getattr(inner, "base_url", None)

    def _there(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        # Collected there and replayed here: a job needs the whole answer, not its first token early.
        async def collect() -> list[Delta]:
            return [d async for d in self.inner.stream(req)]

        for delta in await self._there(collect()):
            yield delta

    async def complete(self, req: GenerationRequest) -> Completion:
        return await self._there(self.inner.complete(req))

    async def models(self) -> list[str]:
        return await self._there(self.inner.models())

    async def load_adapter(self, name: str, path: Path) -> None:
        await self._there(self.inner.load_adapter(name, path))

    async def unload_adapter(self, name: str) -> None:
        await self._there(self.inner.unload_adapter(name))

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        return self.inner.count_prompt_tokens(messages)

    async def aclose(self) -> None:
        """The server owns the generator: nothing to close here."""
