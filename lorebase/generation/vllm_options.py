"""How one vLLM engine is started: what is the engine's own (the model folder, the name it serves,
its port, log and CPU binding, whether it takes LoRA adapters) beside ``settings.generation``, from
which everything else (interpreter, dtype, KV cache, LoRA slots, eager mode, start-up timeout) is
read, never copied into a parallel set of fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorebase.cpu_budget import cpu_ranges, usable_cpus
from lorebase.cpu_budget import plan as cpu_plan
from lorebase.settings import GenerationSettings, Settings


@dataclass(frozen=True)
class VLLMOptions:
    generation: GenerationSettings
    model_dir: Path
    served_name: str
    max_model_len: int
    log_file: Path
    cache_dir: Path
    port: int
    host: str = "127.0.0.1"
    cpu_bind: str | None = None  # CPUs for vLLM's pinned threads ("0-13"); None: every CPU this process may use
    enable_lora: bool = True  # False for an engine on merged weights: no LoRA slots, no LoRA work per token
    # True for an engine whose structured output may carry whitespace whatever vllm_compact_json says
    # (the judge: ragas' examples are indented JSON, and held to compact JSON a 1.5B closes its lists empty)
    json_whitespace: bool = False
    # How the process is watched: ours, not settings.
    stop_grace_s: float = 20.0
    health_interval_s: float = 10.0
    health_failures: int = 3  # consecutive failed /health checks before a running server is restarted
    backoff_s: tuple[float, float] = (1.0, 60.0)  # first and longest wait before a restart

    @classmethod
    def of(cls, settings: Settings, *, model_dir: Path, served_name: str, max_model_len: int, **engine: Any) -> VLLMOptions:
        """The engine of these settings: port, log, cache and CPU binding from the settings tree;
        `engine` overrides an engine's own field (a merged engine's port, a judge's log)."""
        own: dict[str, Any] = {
            "port": settings.generation.vllm_port,
            "log_file": settings.logs_dir / "vllm.log",
            "cache_dir": settings.home / "vllm-cache",
            "cpu_bind": cpu_ranges(cpu_plan(settings).vllm_cpus),
            "enable_lora": settings.generation.vllm_lora,
        }
        return cls(settings.generation, model_dir, served_name, max_model_len, **{**own, **engine})

    def replace(self, **changes: Any) -> VLLMOptions:
        return dataclasses.replace(self, **changes)

    # --- read from settings.generation ---------------------------------------------------------

    @property
    def python(self) -> Path:
        return self.generation.vllm_python.expanduser().absolute()

    @property
    def dtype(self) -> str:
        """The precision passed to vLLM: `auto` decided here for a CPU (vLLM's own auto would take the
        checkpoint's, which is float16 or bfloat16 whatever the CPU can do fast)."""
        setting = self.generation.vllm_dtype
        if setting != "auto" or _has_gpu():
            return setting
        from lorebase.index.embeddings import cpu_supports_bf16

        return "bfloat16" if cpu_supports_bf16() else "float32"

    @property
    def kv_cache_gib(self) -> float:
        return self.generation.vllm_kv_cache_gib

    @property
    def max_loras(self) -> int:
        return self.generation.max_loras

    @property
    def max_lora_rank(self) -> int:
        return self.generation.max_lora_rank

    @property
    def compact_json(self) -> bool:
        return self.generation.vllm_compact_json and not self.json_whitespace

    @property
    def startup_timeout_s(self) -> float:
        return self.generation.vllm_startup_timeout_s

    @property
    def enforce_eager(self) -> bool:
        return self.generation.vllm_eager


def cpu_binding() -> str:
    """The CPUs this process may use, in the form vLLM's VLLM_CPU_OMP_THREADS_BIND wants."""
    return cpu_ranges(usable_cpus())


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())
