"""retained_heap: inside it big blocks come from the heap and stay there; outside, glibc's defaults hold.

Each check runs in a fresh interpreter: in the test process, earlier tests leave big free chunks in the
heap, and glibc would serve a big block from those instead of mapping it, whatever the settings.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lorebase.finetune import heap

PROBE = r"""
import ctypes, json, sys
from lorebase.finetune import heap

BIG = 64 * 1024 * 1024  # above glibc's largest mmap threshold (32 MiB): normally always a fresh mmap


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = heap._glibc()
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


def probe():
    # mmapped blocks while a big block is held (relative to before), free heap bytes after freeing it
    before = libc.mallinfo2().hblks
    p = libc.malloc(BIG)
    assert p
    held = libc.mallinfo2().hblks - before
    libc.free(p)
    return {"new_mappings": held, "free_after": libc.mallinfo2().fordblks}


out = {"outside_before": probe()}
with heap.retained_heap(enabled=sys.argv[1] == "on") as active:
    out["active"] = active
    out["inside"] = probe()
out["outside_after"] = probe()
print(json.dumps(out))
"""

BIG = 64 * 1024 * 1024


def run_probe(mode: str) -> dict:
    if heap._glibc() is None or not hasattr(heap._glibc(), "mallinfo2"):
        pytest.skip("needs glibc 2.33+ (mallinfo2)")
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_inside_big_blocks_come_from_the_heap_and_stay_after_free() -> None:
    out = run_probe("on")
    assert out["outside_before"]["new_mappings"] == 1, "outside the block, glibc maps a 64 MiB allocation on its own"
    assert out["active"] is True
    assert out["inside"]["new_mappings"] == 0, "inside, the allocation must not be a new mapping"
    assert out["inside"]["free_after"] >= BIG, "inside, the freed block stays in the heap for the next step"
    assert out["outside_after"]["new_mappings"] == 1, "afterwards glibc's defaults are back"
    assert out["outside_after"]["free_after"] < BIG, "and the kept memory was trimmed"


def test_disabled_changes_nothing() -> None:
    out = run_probe("off")
    assert out["active"] is False
    assert out["inside"]["new_mappings"] == 1
