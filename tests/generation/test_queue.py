"""The generation queue: bounded running, bounded waiting, refusal beyond."""

from __future__ import annotations

import asyncio

import pytest

from lorebase.errors import Overloaded
from lorebase.generation.queue import GenerationQueue

pytestmark = pytest.mark.asyncio


async def _hold(queue: GenerationQueue, release: asyncio.Event, order: list[int], i: int) -> None:
    async with queue.slot():
        order.append(i)
        await release.wait()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_runs_up_to_the_limit_queues_up_to_the_limit_and_refuses_beyond() -> None:
    queue = GenerationQueue(max_concurrency=2, max_queue=3)
    release = asyncio.Event()
    order: list[int] = []
    tasks = [asyncio.create_task(_hold(queue, release, order, i)) for i in range(5)]
    await _settle()
    assert (queue.running, queue.waiting) == (2, 3)
    assert order == [0, 1]

    # Beyond both limits: refused at once, and nothing grows.
    for _ in range(10):
        with pytest.raises(Overloaded, match="2 requests running and 3 waiting"):
            async with queue.slot():
                pytest.fail("a sixth request must not run")
    assert (queue.running, queue.waiting) == (2, 3)

    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]  # first come, first served
    assert (queue.running, queue.waiting) == (0, 0)


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    queue = GenerationQueue(max_concurrency=1, max_queue=1)
    release = asyncio.Event()
    order: list[int] = []
    running = asyncio.create_task(_hold(queue, release, order, 0))
    waiting = asyncio.create_task(_hold(queue, release, order, 1))
    await _settle()
    with pytest.raises(Overloaded):
        async with queue.slot():
            pass

    waiting.cancel()  # a client that went away while in line
    await _settle()
    assert queue.waiting == 0
    late = asyncio.create_task(_hold(queue, release, order, 2))
    await _settle()
    assert queue.waiting == 1

    release.set()
    await asyncio.gather(running, late)
    assert order == [0, 2]
    assert (queue.running, queue.waiting) == (0, 0)


async def test_an_error_in_the_body_frees_the_slot() -> None:
    queue = GenerationQueue(max_concurrency=1, max_queue=0)
    with pytest.raises(ValueError):
        async with queue.slot():
            raise ValueError("generation failed")
    async with queue.slot():
        assert queue.running == 1
    assert queue.running == 0


async def test_no_queue_means_refusal_as_soon_as_all_slots_run() -> None:
    queue = GenerationQueue(max_concurrency=1, max_queue=0)
    release = asyncio.Event()
    task = asyncio.create_task(_hold(queue, release, [], 0))
    await _settle()
    with pytest.raises(Overloaded):
        async with queue.slot():
            pass
    release.set()
    await task


async def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        GenerationQueue(max_concurrency=0, max_queue=1)
    with pytest.raises(ValueError):
        GenerationQueue(max_concurrency=1, max_queue=-1)
