"""The vLLM launcher and server manager, in the parts that need no model server."""

from __future__ import annotations

import ast
import socket
import sys
from pathlib import Path

import pytest

from lorebase.errors import EngineUnavailable
from lorebase.generation import vllm_launch
from lorebase.generation.vllm_server import VLLMOptions, VLLMServer, cpu_ranges


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
    return VLLMOptions(
        python=python,
        model_dir=tmp_path / "model",
        served_name="m",
        max_model_len=64,
        log_file=tmp_path / "logs" / "vllm.log",
        cache_dir=tmp_path / "cache",
        port=port,
        startup_timeout_s=5,
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
