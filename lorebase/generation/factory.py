"""Build the configured generator backend (``generation.backend``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

from lorebase.errors import ModelNotAvailable, SettingsError
from lorebase.generation.backend import ChatTokenizer, Generator, model_context_length
from lorebase.generation.queue import GenerationQueue
from lorebase.offline_models import generator_path
from lorebase.settings import Settings


def base_model_name(settings: Settings) -> str:
    """The name the base model is served under, known without loading or preparing it."""
    return settings.generation.model_name or Path(settings.models.generator).expanduser().name


async def open_generator(
    settings: Settings,
    *,
    adapters: Mapping[str, Path] | None = None,
    progress: Callable[[str], None] | None = None,
    on_restarted: Callable[[], None] | None = None,
) -> Generator:
    """Start (or connect to) the generator; ``adapters`` (name -> folder) default to ``generation.adapters``.

    ``progress`` hears what is being done while it starts (preparing the model on first use, the
    vLLM server's start), and later when a watched vLLM server restarts; ``on_restarted`` when it
    serves again. The caller owns the result and must ``await generator.aclose()`` (it stops a vLLM
    server we started).
    """
    g = settings.generation
    queue = GenerationQueue(g.max_concurrency, g.max_queue)
    start_adapters = {name: Path(p).expanduser() for name, p in (g.adapters if adapters is None else adapters).items()}
    api_key = g.api_key.get_secret_value() if g.api_key is not None else None

    match g.backend:
        case "transformers":
            from lorebase.generation.transformers_backend import TransformersBackend

            model_dir = await asyncio.to_thread(generator_path, settings, log=progress)
            if progress is not None:
                progress(f"loading {model_dir.name} in process (transformers)")
            return await TransformersBackend.open(
                model_dir,
                base_model=g.model_name or model_dir.name,
                queue=queue,
                context_length=g.max_model_len,
                adapters=start_adapters,
                dtype=g.transformers_dtype,
            )

        case "vllm":
            from lorebase.generation.vllm_backend import VLLMBackend
            from lorebase.generation.vllm_server import VLLMServer

            model_dir = await asyncio.to_thread(generator_path, settings, log=progress)
            name = g.model_name or model_dir.name
            context_length = g.max_model_len or model_context_length(model_dir)
            tokenizer = ChatTokenizer(model_dir)
            if g.base_url:  # a server started elsewhere: connect only
                backend = VLLMBackend(
                    base_url=g.base_url,
                    base_model=name,
                    context_length=context_length,
                    queue=queue,
                    tokenizer=tokenizer,
                    api_key=api_key,
                    timeout_s=g.request_timeout_s,
                )
                for adapter, path in start_adapters.items():
                    await backend.load_adapter(adapter, path)
                return backend
            server = VLLMServer.from_settings(
                settings, model_dir=model_dir, served_name=name, max_model_len=context_length, adapters=start_adapters
            )
            server.on_phase, server.on_restarted = progress, on_restarted
            return await VLLMBackend.start(server, queue=queue, tokenizer=tokenizer, timeout_s=g.request_timeout_s)

        case "openai":
            from lorebase.generation.openai_backend import OpenAIBackend, require_base_url

            base_url = require_base_url(g.base_url)
            local: Path | None
            try:
                local = await asyncio.to_thread(generator_path, settings, log=progress)
            except ModelNotAvailable:
                local = None  # a remote-only model: prompt sizes are estimated, the server judges
            remote_name = g.model_name or (local.name if local is not None else None)
            if remote_name is None:
                raise SettingsError("the openai generation backend needs generation.model_name: the model id the server serves")
            remote = OpenAIBackend(
                base_url=base_url,
                base_model=remote_name,
                context_length=g.max_model_len or (model_context_length(local) if local is not None else 0),
                queue=queue,
                tokenizer=ChatTokenizer(local) if local is not None else None,
                api_key=api_key,
                timeout_s=g.request_timeout_s,
            )
            if not remote.context_length:
                served = await remote.served_context_length()
                if served is None:
                    await remote.aclose()
                    raise SettingsError(f"the server at {base_url} does not state its context length: set generation.max_model_len")
                remote.context_length = served
            for adapter, path in start_adapters.items():
                await remote.load_adapter(adapter, path)
            return remote
