"""The CPU budget: the documented plans for 2, 4 and 16 cores, the settings that override them, and
what a process and the vLLM server it starts really get (checked in fresh interpreters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorebase import cpu_budget
from lorebase.errors import SettingsError
from lorebase.generation.vllm_server import VLLMServer
from lorebase.settings import load_settings
from tests.conftest import REPO_ROOT

TWO_CORES = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2


@pytest.mark.parametrize(
    ("cores", "vllm", "api", "threads"),
    [(2, "0-1", None, 1), (4, "0-2", "3", 1), (16, "0-13", "14-15", 2), (64, "0-55", "56-63", 8)],
)
def test_the_documented_plans(cores: int, vllm: str, api: str | None, threads: int) -> None:
    p = cpu_budget.plan(load_settings(), list(range(cores)))
    assert cpu_budget.cpu_ranges(p.vllm_cpus) == vllm
    assert (cpu_budget.cpu_ranges(p.api_cpus) if p.api_cpus else None) == api
    assert p.api_threads == threads
    if p.api_cpus:
        assert not set(p.api_cpus) & set(p.vllm_cpus), "pinned apart, they never meet on a core"


def test_without_a_local_vllm_server_the_api_keeps_every_core() -> None:
    for s in (load_settings(generation={"backend": "transformers"}), load_settings(generation={"base_url": "http://h:8001/v1"})):
        p = cpu_budget.plan(s, list(range(4)))
        assert p.api_cpus is None and p.api_threads == 4


def test_settings_override_the_plan() -> None:
    s = load_settings(cpu={"vllm_cpus": "0-1,4", "api_cpus": "2-3", "api_threads": 3})
    p = cpu_budget.plan(s, list(range(8)))
    assert (p.vllm_cpus, p.api_cpus, p.api_threads) == ([0, 1, 4], [2, 3], 3)
    assert p.vllm_env()["VLLM_CPU_OMP_THREADS_BIND"] == "0-1,4"
    assert cpu_budget.plan(load_settings(cpu={"api_cpus": "all"}), list(range(4))).api_cpus is None
    with pytest.raises(SettingsError, match="cpu.vllm_cpus: '0-x'"):
        cpu_budget.plan(load_settings(cpu={"vllm_cpus": "0-x"}), [0, 1])
    with pytest.raises(SettingsError, match="cpu.api_cpus: CPUs 7 are not usable here"):
        cpu_budget.plan(load_settings(cpu={"api_cpus": "7"}), [0, 1])


def test_the_vllm_server_gets_the_binding_and_not_the_api_pool_sizes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as `lorebase serve` sets it for its own process
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    s = load_settings(home=tmp_path, cpu={"vllm_cpus": "0"})
    env = VLLMServer.from_settings(s, model_dir=tmp_path, served_name="m", max_model_len=64).environment()
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0" and env["LOREBASE_VLLM_AFFINITY"] == "0"
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" and "OMP_NUM_THREADS" not in env


def _run(code: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_") and k not in cpu_budget.THREAD_VARS}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, "PYTHONPATH": str(REPO_ROOT), **env},
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not TWO_CORES, reason="needs two CPUs")
def test_serve_pins_and_sizes_its_own_process_before_torch_loads() -> None:
    got = _run(
        "import json, os\n"
        "from lorebase.settings import load_settings\n"
        "from lorebase.cpu_budget import apply_to_api_process\n"
        "apply_to_api_process(load_settings())\n"
        "import torch\n"
        "print(json.dumps({'cpus': sorted(os.sched_getaffinity(0)), 'torch': torch.get_num_threads(),"
        " 'omp': os.environ['OMP_NUM_THREADS']}))",
        LOREBASE_CPU__API_CPUS="1", LOREBASE_CPU__VLLM_CPUS="0",
    )
    assert got == {"cpus": [1], "torch": 1, "omp": "1"}


@pytest.mark.skipif(not TWO_CORES, reason="needs two CPUs")
def test_the_vllm_launcher_takes_its_cpus_back_from_a_pinned_parent() -> None:
    """Run the launcher's top level (what every vLLM process runs) in a process pinned to CPU 0."""
    launcher = REPO_ROOT / "lorebase" / "generation" / "vllm_launch.py"
    got = _run(
        "import json, os, runpy\n"
        "os.sched_setaffinity(0, {0})\n"
        f"runpy.run_path({str(launcher)!r}, run_name='not_main')\n"
        "print(json.dumps({'cpus': sorted(os.sched_getaffinity(0))}))",
        LOREBASE_VLLM_AFFINITY="0-1",
    )
    assert got == {"cpus": [0, 1]}
