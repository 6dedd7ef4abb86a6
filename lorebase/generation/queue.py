"""Bounded concurrency for generation: a few requests run, a bounded number wait, the rest are refused.

Memory stays bounded: beyond ``max_concurrency`` running and ``max_queue`` waiting, a new request
gets :class:`~lorebase.errors.Overloaded` at once instead of joining an ever longer line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lorebase.errors import Overloaded


class GenerationQueue:
    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        if max_concurrency < 1 or max_queue < 0:
            raise ValueError("max_concurrency must be at least 1 and max_queue at least 0")
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._free = asyncio.Semaphore(max_concurrency)
        self._running = 0
        self._waiting = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one generation slot for the body; wait in line if all are taken and the line has room."""
        if self._running + self._waiting >= self.max_concurrency and self._waiting >= self.max_queue:
            raise Overloaded(
                f"the generator is busy: {self._running} requests running and {self._waiting} waiting "
                f"(limits {self.max_concurrency} and {self.max_queue}); try again shortly"
            )
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._free.release()
