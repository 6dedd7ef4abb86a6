"""How the API process and the vLLM worker share the CPU cores: by plan, from settings (``cpu``).

vLLM's CPU worker pins one OpenMP thread to each core of its list (``VLLM_CPU_OMP_THREADS_BIND``)
and every decode step ends at a barrier of all of them; the API process runs the embedder, BM25,
FAISS and the grounding check. When the two meet on a core, a pinned thread loses its time slice and
the whole step waits, and an API thread pool waits likewise for its slowest thread. So, unless the
settings say otherwise (``auto``), with ``n`` usable cores:

| cores | vLLM's threads | API process | API threads (torch, FAISS, BLAS) |
|---|---|---|---|
| 1-2 | every core | shares them (not pinned) | 1 |
| 3-7 (e.g. 4) | all but the last core (0-2) | pinned to the last core (3) | 1 |
| 8+ (e.g. 16) | all but n // 8 cores, at least 2 (0-13) | pinned to the rest (14-15) | as many as it has cores (2) |

Without a local vLLM server (the transformers backend runs in process; ``openai`` or
``generation.base_url`` serve elsewhere) the API process keeps every core. The plan is applied by
`lorebase serve` at start (:func:`apply_to_api_process`) and by the vLLM launcher
(:meth:`CpuPlan.vllm_env`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from lorebase.errors import SettingsError
from lorebase.settings import Settings

# Thread-pool sizes read by OpenMP (torch, FAISS), MKL and OpenBLAS when they load.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_ranges(cpus: list[int]) -> str:
    """[0, 1, 2, 3, 8] -> "0-3,8" (the form VLLM_CPU_OMP_THREADS_BIND and taskset take)."""
    spans: list[list[int]] = []  # [first, last] of each run of consecutive CPUs
    for c in sorted(set(cpus)):
        if spans and c == spans[-1][1] + 1:
            spans[-1][1] = c
        else:
            spans.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in spans)


def parse_cpus(spec: str, key: str) -> list[int]:
    """"0-3,8" -> [0, 1, 2, 3, 8]; a clear error naming the setting otherwise."""
    cpus: set[int] = set()
    try:
        for part in spec.split(","):
            lo, _, hi = part.strip().partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
            if first < 0 or last < first:
                raise ValueError
            cpus.update(range(first, last + 1))
    except ValueError:
        raise SettingsError(f"setting {key}: {spec!r} is not a CPU list like 0-3,8") from None
    return sorted(cpus)


@dataclass(frozen=True)
class CpuPlan:
    cores: list[int]  # what this process may use
    vllm_cpus: list[int]  # one pinned vLLM OpenMP thread per CPU
    api_cpus: list[int] | None  # the API process is pinned here; None: it shares every core
    api_threads: int

    def vllm_env(self) -> dict[str, str]:
        """What the vLLM server's environment gets: its thread binding, nothing held in reserve
        (the list is explicit), and its own affinity back, should the API process be pinned."""
        return {
            "VLLM_CPU_OMP_THREADS_BIND": cpu_ranges(self.vllm_cpus),
            "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
            "LOREBASE_VLLM_AFFINITY": cpu_ranges(self.vllm_cpus),
        }

    def describe(self) -> str:
        api = f"pinned to {cpu_ranges(self.api_cpus)}" if self.api_cpus else "sharing every core"
        return f"vLLM threads on {cpu_ranges(self.vllm_cpus)}; API process {api}, {self.api_threads} thread(s)"


def plan(settings: Settings, cpus: list[int] | None = None) -> CpuPlan:
    """The plan for these usable CPUs (default: this process's), from ``settings.cpu`` and the backend."""
    c = settings.cpu
    cores = sorted(cpus if cpus is not None else usable_cpus())
    n = len(cores)
    g = settings.generation
    local_vllm = g.backend == "vllm" and not g.base_url
    if not local_vllm:  # nothing beside us to share with
        vllm_auto, api_auto = cores, None
    elif n <= 2:
        vllm_auto, api_auto = cores, None
    else:
        api_cores = 1 if n < 8 else max(2, n // 8)
        vllm_auto, api_auto = cores[: n - api_cores], cores[n - api_cores :]
    vllm = parse_cpus(c.vllm_cpus, "cpu.vllm_cpus") if c.vllm_cpus else vllm_auto
    if c.api_cpus == "all":
        api: list[int] | None = None
    elif c.api_cpus:
        api = parse_cpus(c.api_cpus, "cpu.api_cpus")
    else:
        api = api_auto
    for name, chosen in (("cpu.vllm_cpus", vllm), ("cpu.api_cpus", api or [])):
        outside = sorted(set(chosen) - set(cores))
        if outside:
            raise SettingsError(f"setting {name}: CPUs {cpu_ranges(outside)} are not usable here (usable: {cpu_ranges(cores)})")
    if c.api_threads:
        threads = c.api_threads
    elif not local_vllm:
        threads = n
    else:
        threads = len(api) if api else 1
    return CpuPlan(cores, vllm, api, threads)


def apply_to_api_process(settings: Settings) -> CpuPlan:
    """Pin this process and size its thread pools by the plan; call it before the heavy libraries
    load (`lorebase serve` does, first thing). Values an operator put in the environment
    (OMP_NUM_THREADS, ...) win over the automatic size; ``cpu.api_threads`` wins over both."""
    p = plan(settings)
    if p.api_cpus is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, p.api_cpus)
    for var in THREAD_VARS:
        if settings.cpu.api_threads or var not in os.environ:
            os.environ[var] = str(p.api_threads)
    if "torch" in sys.modules:  # already loaded: the variables came too late for its pool
        import torch

        torch.set_num_threads(p.api_threads)
    return p
