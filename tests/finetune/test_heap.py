"""retained_heap: inside it big blocks come from the heap and stay there; outside, glibc's defaults hold."""

from __future__ import annotations

import ctypes

import pytest

from lorebase.finetune import heap

BIG = 64 * 1024 * 1024  # above glibc's largest mmap threshold (32 MiB): normally always a fresh mmap


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL:
    libc = heap._glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc 2.33+ (mallinfo2)")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def _mapped_blocks_while_holding(libc: ctypes.CDLL, size: int) -> tuple[int, int]:
    """(mmapped blocks while a block of ``size`` is held, free bytes in the heap after it is freed)."""
    p = libc.malloc(size)
    assert p
    held = libc.mallinfo2().hblks
    libc.free(p)
    return int(held), int(libc.mallinfo2().fordblks)


def test_inside_big_blocks_come_from_the_heap_and_stay_after_free() -> None:
    libc = _libc()
    before = libc.mallinfo2().hblks
    held, _ = _mapped_blocks_while_holding(libc, BIG)
    assert held == before + 1, "outside the block, glibc maps a 64 MiB allocation on its own"

    with heap.retained_heap() as active:
        assert active
        held, free_after = _mapped_blocks_while_holding(libc, BIG)
        assert held == before, "inside, the allocation must not be a new mapping"
        assert free_after >= BIG, "inside, the freed block stays in the heap for the next step"

    held, _ = _mapped_blocks_while_holding(libc, BIG)
    assert held == before + 1, "afterwards glibc's defaults are back"
    assert libc.mallinfo2().fordblks < BIG, "and the kept memory was trimmed"


def test_disabled_changes_nothing() -> None:
    libc = _libc()
    before = libc.mallinfo2().hblks
    with heap.retained_heap(enabled=False) as active:
        assert not active
        held, _ = _mapped_blocks_while_holding(libc, BIG)
        assert held == before + 1

