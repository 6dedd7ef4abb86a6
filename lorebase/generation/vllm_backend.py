"""The vLLM backend: the OpenAI backend pointed at a vLLM server that lorebase runs and watches.

With ``generation.base_url`` set it only connects to that server (started elsewhere). Otherwise
:class:`VLLMServer` starts one from ``generation.vllm_python`` and restarts it if it dies.
Adapters changed at run time are remembered by the server object, so a restart brings them back.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

from lorebase.errors import EngineUnavailable
from lorebase.generation.backend import ChatTokenizer, Delta, GenerationRequest
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.vllm_server import VLLMServer


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

    async def stream(self, req: GenerationRequest) -> AsyncGenerator[Delta, None]:
        if self.server is not None and not self.server.ready:
            raise EngineUnavailable(f"the vLLM server is restarting (see {self.server.options.log_file}); try again shortly",
                                    retry_after_s=10)
        # aclosing: a consumer that stops early closes the upstream response now, so vLLM aborts now.
        async with aclosing(super().stream(req)) as deltas:
            async for delta in deltas:
                yield delta

    async def load_adapter(self, name: str, path: Path) -> None:
        await super().load_adapter(name, path)
        if self.server is not None:
            self.server.adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        await super().unload_adapter(name)
        if self.server is not None:
            self.server.adapters.pop(name, None)

    async def aclose(self) -> None:
        await super().aclose()
        if self.server is not None:
            await self.server.stop()

