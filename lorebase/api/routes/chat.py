"""POST /v1/chat/completions: OpenAI's chat API over lorebase's conversation modes (answer, summary,
chat; see lorebase.generation.conversation). This route only translates to and from the service."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from lorebase.api import protocol as p
from lorebase.api.deps import services
from lorebase.api.errors import error_body, responses, status_of
from lorebase.api.metrics import Metrics
from lorebase.errors import LorebaseError
from lorebase.generation.backend import Usage
from lorebase.generation.conversation import ConversationEvent, ConversationRequest

router = APIRouter()
log = logging.getLogger(__name__)


@router.post("/v1/chat/completions", response_model=None, responses=responses(404, 429, 502, 503))
async def chat_completions(req: p.ChatCompletionRequest, request: Request) -> p.ChatCompletion | EventSourceResponse:
    events = services(request).conversation.stream(_conversation_request(req))
    # Events are awaited up to the first text, so errors before any text (not ready, unknown model,
    # bad filter, prompt too long, engine busy) are ordinary HTTP errors rather than a stream that fails at once.
    head = await _head(events)
    if req.stream:
        return EventSourceResponse(_sse(request.app.state.metrics, head, events, req.model, req), ping=15, send_timeout=30)
    result = None
    async for ev in _chain(head, events):
        result = ev.result or result
    assert result is not None
    _count_tokens(request.app.state.metrics, result.usage)
    return p.ChatCompletion(
        model=req.model,
        choices=[p.Choice(message=p.ResponseMessage(content=result.text), finish_reason=result.finish_reason)],
        usage=_usage(result.usage), sources=result.sources, grounding=result.verdict,
    )


def _conversation_request(req: p.ChatCompletionRequest) -> ConversationRequest:
    return ConversationRequest(
        messages=[{"role": m.role, "content": m.text()} for m in req.messages], mode=req.mode, model=req.model,
        top_k=req.top_k, filters=req.filters, max_tokens=req.token_limit, temperature=req.temperature, top_p=req.top_p,
        stop=[req.stop] if isinstance(req.stop, str) else list(req.stop or []), seed=req.seed,
        json_schema=_schema(req.response_format), source_ids=req.source_ids,
    )


async def _head(events: AsyncIterator[ConversationEvent]) -> list[ConversationEvent]:
    """The events up to and including the first piece of final text (or the final event)."""
    head: list[ConversationEvent] = []
    async for ev in events:
        head.append(ev)
        if ev.type in ("delta", "final"):
            break
    return head


async def _chain(head: list[ConversationEvent], rest: AsyncIterator[ConversationEvent]) -> AsyncIterator[ConversationEvent]:
    for ev in head:
        yield ev
    async for ev in rest:
        yield ev


def _schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return spec.get("schema") or None


async def _sse(metrics: Metrics, head: list[ConversationEvent], events: AsyncIterator[ConversationEvent], model: str,
               req: p.ChatCompletionRequest) -> AsyncIterator[dict[str, str]]:
    cid, created = p.completion_id(), int(time.time())

    def chunk(**kw: Any) -> dict[str, str]:
        body = p.ChatCompletionChunk(id=cid, created=created, model=model, **kw)
        return {"data": body.model_dump_json(exclude_none=True)}

    yield chunk(choices=[p.ChunkChoice(delta=p.DeltaMessage(role="assistant", content=""))])
    try:
        async for ev in _chain(head, events):
            if ev.type == "delta" and ev.text:
                yield chunk(choices=[p.ChunkChoice(delta=p.DeltaMessage(content=ev.text))])
            elif ev.result is not None:
                r = ev.result
                include = bool(req.stream_options and req.stream_options.include_usage)
                yield chunk(choices=[p.ChunkChoice(delta=p.DeltaMessage(), finish_reason=r.finish_reason)],
                            usage=_usage(r.usage) if include else None, sources=r.sources, grounding=r.verdict)
                _count_tokens(metrics, r.usage)
    except LorebaseError as e:  # mid-stream: an error chunk, then [DONE]
        _, type_ = status_of(e)
        yield {"data": json.dumps(error_body(str(e), type_, e.code))}
    except Exception:
        log.exception("error while streaming a completion")
        yield {"data": json.dumps(error_body("internal error while streaming; see the server log", "server_error", "internal_error"))}
    yield {"data": "[DONE]"}


def _usage(u: Usage) -> p.Usage:
    return p.Usage(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                   total_tokens=u.prompt_tokens + u.completion_tokens)


def _count_tokens(metrics: Metrics, u: Usage) -> None:
    metrics.tokens.labels("prompt").inc(u.prompt_tokens)
    metrics.tokens.labels("completion").inc(u.completion_tokens)
