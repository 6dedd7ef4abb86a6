"""A generator behind any OpenAI-compatible HTTP server, through the official ``openai`` client.

Streams with ``stream_options={"include_usage": True}``; structured output goes as
``response_format={"type": "json_schema", ...}``. When the consumer stops iterating or its task is
cancelled, the upstream response is closed, and vLLM aborts the request. Adapters are loaded at run
time through vLLM's ``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` endpoints.

Errors map to lorebase's: unreachable server or 5xx -> EngineUnavailable, 404 model ->
UnknownModel, 400 about the context length -> PromptTooLong, 429 -> Overloaded.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorebase.errors import (
    EngineUnavailable,
    InvalidInput,
    LorebaseError,
    ModelNotAvailable,
    Overloaded,
    PromptTooLong,
    SettingsError,
    UnknownModel,
)
from lorebase.generation.backend import (
    ChatTokenizer,
    Completion,
    Delta,
    GenerationRequest,
    Message,
    Usage,
    check_prompt_fits,
    collect,
    fit_max_tokens,
)
from lorebase.generation.queue import GenerationQueue

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

_CONTEXT_ERROR = re.compile(r"context length|context_length|maximum context|too long|max_model_len|input tokens", re.IGNORECASE)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exceptions the HTTP layer under the openai client raises mid-stream (it moved from httpx to httpx2)."""
    found: list[type[BaseException]] = []
    for module in ("httpx2", "httpx"):
        try:
            found.append(__import__(module).HTTPError)
        except ImportError:
            continue
    return tuple(found)


def _error_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    return str(getattr(e, "message", None) or e)


def map_error(e: BaseException, where: str) -> LorebaseError:
    """Turn an openai client or transport error into lorebase's own."""
    import openai

    if isinstance(e, LorebaseError):
        return e
    if isinstance(e, openai.APIConnectionError):  # also timeouts
        return EngineUnavailable(f"the model server at {where} cannot be reached: {e}")
    if isinstance(e, openai.APIStatusError):
        status, msg = e.status_code, _error_message(e)
        if status == 404:
            return UnknownModel(msg)
        if status == 400 and (getattr(e, "code", None) == "context_length_exceeded" or _CONTEXT_ERROR.search(msg)):
            return PromptTooLong(msg)
        if status == 429:
            return Overloaded(f"the model server is busy: {msg}")
        if status in (401, 403):
            return EngineUnavailable(f"the model server at {where} refused the key ({status}): {msg}; check generation.api_key")
        if status >= 500:
            return EngineUnavailable(f"the model server at {where} failed ({status}): {msg}")
        return InvalidInput(f"the model server at {where} refused the request ({status}): {msg}")
    if isinstance(e, openai.APIError):  # an error event inside a stream
        return EngineUnavailable(f"the model server at {where} failed mid-answer: {_error_message(e)}")
    if isinstance(e, _transport_errors()):
        return EngineUnavailable(f"the connection to the model server at {where} broke: {e!r}")
    return EngineUnavailable(f"the model server at {where} failed: {e!r}")


class OpenAIBackend:
    """See the module docstring. ``tokenizer`` (the served model's, local) enables exact prompt counts."""

    def __init__(
        self,
        *,
        base_url: str,
        base_model: str,
        context_length: int,
        queue: GenerationQueue,
        tokenizer: ChatTokenizer | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        from openai import AsyncOpenAI

        self.base_url = base_url.rstrip("/")
        self.base_model = base_model
        self.context_length = context_length
        self._tokenizer = tokenizer
        self._queue = queue
        # Retries are ours to decide (the queue and the watchdog); a hidden retry would double the load.
        self._client: AsyncOpenAI = AsyncOpenAI(base_url=self.base_url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=0)

    @property
    def queue(self) -> GenerationQueue:
        """The bounded line every request of this backend goes through (/metrics and summaries read it)."""
        return self._queue

    # --- prompt size ---------------------------------------------------------------------------

    def count_prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Exact with the model's tokenizer; without one, an estimate (4 characters a token, 4 per message).

        Without a local tokenizer the server stays the judge: its 400 becomes PromptTooLong.
        """
        if self._tokenizer is not None:
            return self._tokenizer.count(messages)
        return sum(4 + (len(m.get("content", "")) + 3) // 4 for m in messages) + 2

    # --- generation ----------------------------------------------------------------------------

    async def complete(self, req: GenerationRequest) -> Completion:
        return await collect(self.stream(req))

    def _params(self, req: GenerationRequest, max_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": req.model or self.base_model,
            "messages": list(req.messages),
            "max_tokens": max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if req.stop:
            params["stop"] = list(req.stop)
        if req.seed is not None:
            params["seed"] = req.seed
        if req.repetition_penalty != 1.0:
            params["extra_body"] = {"repetition_penalty": req.repetition_penalty}
        if req.json_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(req.json_schema.get("title", "answer"))[:64], "schema": req.json_schema},
            }
        return params

    async def stream(self, req: GenerationRequest) -> AsyncGenerator[Delta, None]:
        async with self._queue.slot():
            prompt_tokens: int | None = None
            max_tokens = req.max_tokens
            if self._tokenizer is not None:
                prompt_tokens = await asyncio.to_thread(self._tokenizer.count, req.messages)
                check_prompt_fits(prompt_tokens, self.context_length)
                max_tokens = fit_max_tokens(prompt_tokens, req.max_tokens, self.context_length)
            try:
                upstream = await self._client.chat.completions.create(**self._params(req, max_tokens))
            except Exception as e:
                raise map_error(e, self.base_url) from e

            parts: list[str] = []
            finish: str | None = None
            usage: Usage | None = None
            # Closing the response (on any exit, a consumer that went away included) makes vLLM abort.
            async with upstream:
                try:
                    async for chunk in upstream:
                        if chunk.usage is not None:
                            usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                        for choice in chunk.choices:
                            text = choice.delta.content if choice.delta else None
                            if text:
                                parts.append(text)
                                yield Delta(text)
                            if choice.finish_reason:
                                finish = choice.finish_reason
                except Exception as e:
                    raise map_error(e, self.base_url) from e
            if usage is None:  # a server that ignores include_usage
                usage = Usage(
                    prompt_tokens if prompt_tokens is not None else self.count_prompt_tokens(req.messages),
                    self._tokenizer.count_text("".join(parts)) if self._tokenizer is not None else len(parts),
                )
            yield Delta("", finish or "stop", usage)

    # --- models and adapters -------------------------------------------------------------------

    async def models(self) -> list[str]:
        try:
            page = await self._client.models.list()
        except Exception as e:
            raise map_error(e, self.base_url) from e
        ids = [m.id for m in page.data]
        return sorted(ids, key=lambda i: i != self.base_model)

    async def served_context_length(self) -> int | None:
        """The context length the server states for the base model (vLLM's ``max_model_len``), if any."""
        try:
            page = await self._client.models.list()
        except Exception as e:
            raise map_error(e, self.base_url) from e
        for m in page.data:
            value = getattr(m, "max_model_len", None) or (m.model_extra or {}).get("max_model_len")
            if m.id == self.base_model and isinstance(value, int):
                return value
        return None

    async def _admin(self, path: str, body: dict[str, Any]) -> None:
        import httpx2  # the client's own transport; the openai package depends on it
        import openai

        try:
            await self._client.post(path, body=body, cast_to=httpx2.Response)
        except openai.APIStatusError as e:
            if e.status_code in (404, 405) and _error_message(e) in ("Not Found", "Method Not Allowed"):
                raise InvalidInput(
                    f"the model server at {self.base_url} cannot change adapters at run time "
                    "(vLLM needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
                ) from e
            raise
        except Exception as e:
            raise map_error(e, self.base_url) from e

    async def load_adapter(self, name: str, path: Path) -> None:
        """Load a LoRA adapter under ``name`` (replacing one of that name). The path is read by the server."""
        import openai

        if name == self.base_model:
            raise InvalidInput(f"an adapter cannot take the base model's name {name!r}")
        if not (path / "adapter_config.json").is_file():
            raise ModelNotAvailable(f"no LoRA adapter in {path} (adapter_config.json is missing)")
        try:
            await self._admin("/load_lora_adapter", {"lora_name": name, "lora_path": str(path), "load_inplace": True})
        except openai.APIStatusError as e:
            if e.status_code == 404:
                raise ModelNotAvailable(f"the model server could not load the adapter in {path}: {_error_message(e)}") from e
            raise map_error(e, self.base_url) from e

    async def unload_adapter(self, name: str) -> None:
        import openai

        if name == self.base_model:
            raise InvalidInput(f"{name!r} is the base model, not an adapter")
        try:
            await self._admin("/unload_lora_adapter", {"lora_name": name})
        except openai.APIStatusError as e:
            raise map_error(e, self.base_url) from e

    async def aclose(self) -> None:
        await self._client.close()


def require_base_url(url: str | None) -> str:
    if not url:
        raise SettingsError("the openai generation backend needs generation.base_url (LOREBASE_GENERATION__BASE_URL), e.g. http://host:8001/v1")
    return url
