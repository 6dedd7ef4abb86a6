"""The vLLM backend: the OpenAI backend pointed at a vLLM server that lorebase runs and watches.

With ``generation.base_url`` set it only connects to that server (started elsewhere). Otherwise
:class:`VLLMServer` starts one from ``generation.vllm_python`` and restarts it if it dies.
Adapters changed at run time are remembered by the server object, so a restart brings them back.

**Merged lane.** The base engine serves the base model and every adapter through vLLM's LoRA path.
One adapter, the promoted one, can also be served by an engine of its own on merged weights (see
:mod:`lorebase.finetune.merge`), which costs no LoRA work per token: :meth:`serve_merged` switches
blue-green. The new engine starts beside the running ones and answers a first request; then requests
for that adapter go to it, the engine it replaces receives nothing new, finishes the requests it
holds (drains), and stops. Until a merged engine is ready, and should it fail, the adapter is served
through LoRA on the base engine, so no request finds nothing to serve it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorebase.errors import EngineUnavailable, ModelNotAvailable
from lorebase.generation.backend import ChatTokenizer, Delta, GenerationRequest
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.vllm_options import VLLMOptions
from lorebase.generation.vllm_server import VLLMServer, free_port

log = logging.getLogger(__name__)


@dataclass
class MergedLane:
    """An engine serving one adapter on merged weights, and the requests it holds now."""

    adapter: str
    model_dir: Path
    server: VLLMServer
    client: OpenAIBackend
    in_flight: int = 0
    started_at: float = 0.0


class VLLMBackend(OpenAIBackend):
    def __init__(
        self,
        *,
        base_url: str,
        base_model: str,
        context_length: int,
        queue: GenerationQueue,
        tokenizer: ChatTokenizer,
        server: VLLMServer | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        super().__init__(
            base_url=base_url,
            base_model=base_model,
            context_length=context_length,
            queue=queue,
            tokenizer=tokenizer,
            api_key=api_key,
            timeout_s=timeout_s,
        )
        self.server = server
        self._tokenizer_for_lanes = tokenizer
        self._timeout_s = timeout_s
        self.merged: MergedLane | None = None
        self.switching_to: str | None = None  # the adapter a merged engine is being started for
        self._switch = asyncio.Lock()

    @classmethod
    async def start(
        cls,
        server: VLLMServer,
        *,
        queue: GenerationQueue,
        tokenizer: ChatTokenizer,
        timeout_s: float = 600.0,
    ) -> VLLMBackend:
        """Start ``server`` (adapters it holds are loaded at start) and connect to it."""
        await server.start()
        return cls(
            base_url=server.url + "/v1",
            base_model=server.options.served_name,
            context_length=server.options.max_model_len,
            queue=queue,
            tokenizer=tokenizer,
            server=server,
            timeout_s=timeout_s,
        )

    # --- requests ------------------------------------------------------------------------------

    async def stream(self, req: GenerationRequest) -> AsyncGenerator[Delta, None]:
        lane = self.merged
        if lane is not None and req.model == lane.adapter and lane.server.ready:
            # The lane is taken now, at the request's start: a switch that follows lets it finish here.
            lane.in_flight += 1
            try:
                async with aclosing(lane.client.stream(req)) as deltas:
                    async for delta in deltas:
                        yield delta
            finally:
                lane.in_flight -= 1
            return
        if self.server is not None and not self.server.ready:
            raise EngineUnavailable(f"the vLLM server is restarting (see {self.server.options.log_file}); try again shortly",
                                    retry_after_s=10)
        # aclosing: a consumer that stops early closes the upstream response now, so vLLM aborts now.
        async with aclosing(super().stream(req)) as deltas:
            async for delta in deltas:
                yield delta

    # --- adapters ------------------------------------------------------------------------------

    async def load_adapter(self, name: str, path: Path) -> None:
        if self.server is not None and not self.server.options.enable_lora:
            raise ModelNotAvailable(f"adapter {name!r} cannot be loaded: the engine has no LoRA slots "
                                    "(generation.vllm_lora is off); serve it merged or turn the setting on")
        await super().load_adapter(name, path)
        if self.server is not None:
            self.server.adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        await super().unload_adapter(name)
        if self.server is not None:
            self.server.adapters.pop(name, None)

    # --- merged engines (blue-green) -----------------------------------------------------------

    @property
    def can_serve_merged(self) -> bool:
        """Only where lorebase runs the servers itself (not with generation.base_url)."""
        return self.server is not None

    async def serve_merged(self, adapter: str, model_dir: Path) -> None:
        """Serve ``adapter`` from an engine on its merged weights in ``model_dir``, switching blue-green."""
        if self.server is None:
            raise EngineUnavailable("merged serving needs a vLLM server that lorebase starts (generation.base_url is set)")
        async with self._switch:
            current = self.merged
            if current is not None and current.adapter == adapter and current.model_dir == model_dir:
                return
            options = self.merged_options(adapter, model_dir)
            server = VLLMServer(options)
            self.switching_to = adapter
            t0 = time.monotonic()
            try:
                log.info("starting a merged engine for %s beside the running ones (port %s)", adapter, options.port)
                await server.start()
                client = OpenAIBackend(base_url=server.url + "/v1", base_model=adapter, context_length=self.context_length,
                                       queue=self.queue, tokenizer=self._tokenizer_for_lanes, timeout_s=self._timeout_s)
                try:  # it takes traffic once it has answered
                    await client.complete(GenerationRequest([{"role": "user", "content": "Hello"}], max_tokens=1))
                except BaseException:
                    await client.aclose()
                    raise
            except BaseException:
                await server.stop()
                raise
            finally:
                self.switching_to = None
            self.merged = MergedLane(adapter, model_dir, server, client, started_at=time.time())
            log.info("adapter %s now served from merged weights (engine ready in %.0f s)", adapter, time.monotonic() - t0)
        if current is not None:
            await self._retire(current)

    def merged_options(self, adapter: str, model_dir: Path) -> VLLMOptions:
        """A merged engine runs as the base engine does (dtype, KV cache, CPU binding, eager), on its
        own port and log, without LoRA."""
        assert self.server is not None
        return self.server.options.replace(
            model_dir=model_dir,
            served_name=adapter,
            port=free_port(self.server.options.host),
            enable_lora=False,
            log_file=self.server.options.log_file.with_name(f"vllm-merged-{adapter}.log"),
        )

    async def stop_merged(self) -> None:
        """Serve every adapter through LoRA again (the promoted one was rolled back to the base model)."""
        async with self._switch:
            current, self.merged = self.merged, None
        if current is not None:
            await self._retire(current)

    async def _retire(self, lane: MergedLane) -> None:
        """Stop an engine that receives no new requests once those it holds have finished."""
        deadline = time.monotonic() + self._timeout_s
        while lane.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if lane.in_flight:
            log.warning("stopping the merged engine of %s with %d requests still running after %.0f s",
                        lane.adapter, lane.in_flight, self._timeout_s)
        await lane.client.aclose()
        await lane.server.stop()
        log.info("merged engine of %s stopped", lane.adapter)

    def engines(self) -> dict[str, Any]:
        """Which engine serves what, for /healthz."""
        out: dict[str, Any] = {}
        if self.server is not None:
            out["base"] = {"model": self.base_model, "ready": self.server.ready, "pid": self.server.pid, "lora": True}
        lane = self.merged
        if lane is not None:
            out["merged"] = {"adapter": lane.adapter, "ready": lane.server.ready, "pid": lane.server.pid,
                             "in_flight": lane.in_flight, "model_dir": str(lane.model_dir)}
        if self.switching_to is not None:
            out["starting"] = {"adapter": self.switching_to}
        return out

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.stop_merged()
        await super().aclose()
        if self.server is not None:
            await self.server.stop()
