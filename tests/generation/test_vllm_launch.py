"""The vLLM launcher and server manager, in the parts that need no model server."""

from __future__ import annotations

import ast
import socket
import sys
from pathlib import Path

import pytest

from lorebase.cpu_budget import cpu_ranges
from lorebase.errors import EngineUnavailable
from lorebase.generation import vllm_launch
from lorebase.generation.vllm_options import VLLMOptions
from lorebase.generation.vllm_server import VLLMServer
from lorebase.settings import GenerationSettings


def test_the_launcher_imports_only_what_the_model_server_env_has() -> None:
    """It runs under .venv-vllm: the standard library, torch and vllm only, never lorebase."""
    tree = ast.parse(Path(vllm_launch.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots - {"__future__", "torch", "vllm"} <= set(sys.stdlib_module_names)
    assert {"torch", "vllm"} <= roots


@pytest.mark.parametrize(("cpus", "spec"), [([0, 1], "0-1"), ([0], "0"), ([3, 0, 1, 2, 8, 10, 11], "0-3,8,10-11")])
def test_cpu_ranges(cpus: list[int], spec: str) -> None:
    assert cpu_ranges(cpus) == spec


def _options(tmp_path: Path, python: Path, port: int) -> VLLMOptions:
    # a dying launcher is reported as soon as it exits; importing torch can take a while on a busy machine
    generation = GenerationSettings(vllm_python=python, vllm_startup_timeout_s=120)
    return VLLMOptions(
        generation=generation,
        model_dir=tmp_path / "model",
        served_name="m",
        max_model_len=64,
        log_file=tmp_path / "logs" / "vllm.log",
        cache_dir=tmp_path / "cache",
        port=port,
    )


@pytest.mark.asyncio
async def test_a_missing_model_server_env_says_how_to_make_it(tmp_path: Path) -> None:
    server = VLLMServer(_options(tmp_path, tmp_path / ".venv-vllm" / "bin" / "python", 1))
    with pytest.raises(EngineUnavailable, match="make install-vllm"):
        await server.start()
    assert server.pid is None


@pytest.mark.asyncio
async def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = VLLMServer(_options(tmp_path, Path(sys.executable), port))
        with pytest.raises(EngineUnavailable, match=f"port {port}.*generation.vllm_port"):
            await server.start()


@pytest.mark.asyncio
async def test_a_server_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    """The app env has no vllm: the launcher fails at once, and the error shows the log's last lines."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = VLLMServer(_options(tmp_path, Path(sys.executable), port))
    with pytest.raises(EngineUnavailable, match=r"exited while starting(.|\n)*vllm"):
        await server.start()
    assert server.pid is None
    assert "starting vLLM" in (tmp_path / "logs" / "vllm.log").read_text()


def test_auto_dtype_is_decided_by_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default `auto` serves bfloat16 where the CPU does bf16 maths natively and float32 elsewhere
    (vLLM's own auto would take the checkpoint's precision whatever the CPU); an explicit setting wins."""
    from lorebase.generation import vllm_options
    from lorebase.index import embeddings
    from lorebase.settings import load_settings

    monkeypatch.setattr(vllm_options, "_has_gpu", lambda: False)
    settings = load_settings(home=tmp_path)
    assert settings.generation.vllm_dtype == "auto"
    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(embeddings, "cpu_supports_bf16", lambda native=native: native)
        server = VLLMServer.from_settings(settings, model_dir=tmp_path / "model", served_name="m", max_model_len=64)
        cmd = server.command()
        assert cmd[cmd.index("--dtype") + 1] == expected
    pinned = load_settings(home=tmp_path, generation={"vllm_dtype": "float32"})
    monkeypatch.setattr(embeddings, "cpu_supports_bf16", lambda: True)
    cmd = VLLMServer.from_settings(pinned, model_dir=tmp_path / "model", served_name="m", max_model_len=64).command()
    assert cmd[cmd.index("--dtype") + 1] == "float32"
    monkeypatch.setattr(vllm_options, "_has_gpu", lambda: True)
    cmd = VLLMServer.from_settings(settings, model_dir=tmp_path / "model", served_name="m", max_model_len=64).command()
    assert cmd[cmd.index("--dtype") + 1] == "auto"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_one_dtype_setting_reaches_the_base_and_the_merged_engines(tmp_path: Path, dtype: str) -> None:
    """`generation.vllm_dtype` is the one switch: every engine lorebase starts runs in it (merged
    weights are kept in the base's stored precision, so switching needs no new merge)."""
    from lorebase.generation.backend import ChatTokenizer
    from lorebase.generation.queue import GenerationQueue
    from lorebase.generation.vllm_backend import VLLMBackend
    from lorebase.settings import load_settings

    settings = load_settings(home=tmp_path, generation={"vllm_dtype": dtype, "adapters": {"a": str(tmp_path / "a")}})
    server = VLLMServer.from_settings(settings, model_dir=tmp_path / "model", served_name="m", max_model_len=64,
                                      adapters={"a": tmp_path / "a"})
    backend = VLLMBackend(base_url=server.url + "/v1", base_model="m", context_length=64, queue=GenerationQueue(1, 1),
                          tokenizer=ChatTokenizer(tmp_path / "model"), server=server)
    merged = VLLMServer(backend.merged_options("a", tmp_path / "merged-a"))
    base_cmd, merged_cmd = server.command(), merged.command()
    for cmd in (base_cmd, merged_cmd):
        assert cmd[cmd.index("--dtype") + 1] == dtype and "--enforce-eager" in cmd
    assert "--enable-lora" in base_cmd and "--lora-modules" in base_cmd
    assert "--enable-lora" not in merged_cmd and "--lora-modules" not in merged_cmd
    assert merged_cmd[merged_cmd.index("--model") + 1] == str(tmp_path / "merged-a")
    assert merged_cmd[merged_cmd.index("--served-model-name") + 1] == "a"
    assert merged.options.port != server.options.port and merged.options.log_file.name == "vllm-merged-a.log"
    assert merged.environment()["VLLM_CPU_OMP_THREADS_BIND"] == server.environment()["VLLM_CPU_OMP_THREADS_BIND"]


def test_a_base_engine_without_lora_slots_refuses_adapters_with_a_clear_error(tmp_path: Path) -> None:
    """`generation.vllm_lora: false`: no LoRA work per token, and an adapter loaded at run time is our error,
    not a failed request to the engine."""
    import asyncio

    from lorebase.errors import ModelNotAvailable, SettingsError
    from lorebase.generation.backend import ChatTokenizer
    from lorebase.generation.queue import GenerationQueue
    from lorebase.generation.vllm_backend import VLLMBackend
    from lorebase.settings import load_settings

    settings = load_settings(home=tmp_path, generation={"vllm_lora": False})
    with pytest.raises(SettingsError, match="generation.vllm_lora"):  # adapters to serve as LoRA need the slots
        VLLMServer.from_settings(settings, model_dir=tmp_path / "model", served_name="m", max_model_len=64,
                                 adapters={"a": tmp_path / "a"}).command()
    server = VLLMServer.from_settings(settings, model_dir=tmp_path / "model", served_name="m", max_model_len=64)
    cmd = server.command()
    assert "--enable-lora" not in cmd and "--lora-modules" not in cmd
    backend = VLLMBackend(base_url=server.url + "/v1", base_model="m", context_length=64, queue=GenerationQueue(1, 1),
                          tokenizer=ChatTokenizer(tmp_path / "model"), server=server)
    with pytest.raises(ModelNotAvailable, match="generation.vllm_lora"):
        asyncio.run(backend.load_adapter("b", tmp_path / "b"))
    assert "b" not in server.adapters
    on = VLLMServer.from_settings(load_settings(home=tmp_path), model_dir=tmp_path / "model", served_name="m",
                                  max_model_len=64).command()
    assert "--enable-lora" in on
