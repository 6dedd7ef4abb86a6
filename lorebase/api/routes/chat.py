"""POST /v1/chat/completions: OpenAI's chat API over lorebase's answer, summary and chat modes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from lorebase.api import protocol as p
from lorebase.api.deps import resolve_model, services
from lorebase.api.errors import error_body, responses, status_of
from lorebase.api.metrics import Metrics
from lorebase.errors import LorebaseError, NotFound
from lorebase.generation.answer import AnswerEvent
from lorebase.generation.backend import GenerationRequest, Usage
from lorebase.services import Services
from lorebase.verdict import Verdict

router = APIRouter()
log = logging.getLogger(__name__)


@router.post("/v1/chat/completions", response_model=None, responses=responses(404, 429, 502, 503))
async def chat_completions(req: p.ChatCompletionRequest, request: Request) -> p.ChatCompletion | EventSourceResponse:
    svc = services(request)
    adapter = await resolve_model(svc, req.model)
    events = _events(svc, req, adapter)
    model_name = req.model
    # Events are awaited up to the first text, so errors before any text (bad filter, prompt too
    # long, engine down or busy) are ordinary HTTP errors rather than a stream that fails at once.
    head = await _head(events)
    if req.stream:
        return EventSourceResponse(_sse(request.app.state.metrics, head, events, model_name, req), ping=15, send_timeout=30)
    text_parts: list[str] = []
    final = head[-1]
    async for ev in _chain(head, events):
        if ev.type == "delta":
            text_parts.append(ev.text)
        final = ev
    usage = final.usage or Usage(0, 0)
    _count_tokens(request.app.state.metrics, usage)
    text = final.answer or "".join(text_parts)
    return p.ChatCompletion(
        model=model_name,
        choices=[p.Choice(message=p.ResponseMessage(content=text), finish_reason=final.finish_reason or "stop")],
        usage=_usage(usage),
        sources=final.sources,
        grounding=final.verdict,
    )


async def _head(events: AsyncIterator[AnswerEvent]) -> list[AnswerEvent]:
    """The events up to and including the first that is not `sources` (a delta, or the final one)."""
    head: list[AnswerEvent] = []
    async for ev in events:
        head.append(ev)
        if ev.type != "sources":
            break
    return head


async def _chain(head: list[AnswerEvent], rest: AsyncIterator[AnswerEvent]) -> AsyncIterator[AnswerEvent]:
    for ev in head:
        yield ev
    async for ev in rest:
        yield ev


async def _events(svc: Services, req: p.ChatCompletionRequest, adapter: str | None) -> AsyncIterator[AnswerEvent]:
    assert svc.answers is not None and svc.generator is not None and svc.summaries is not None
    question = req.messages[-1].text()
    if req.mode == "answer":
        history = [{"role": m.role, "content": m.text()} for m in req.messages[:-1] if m.role in ("user", "assistant")]
        async for ev in svc.answers.stream(question, history=history, top_k=req.top_k, filters=req.filters, model=adapter,
                                           max_tokens=req.token_limit, temperature=req.temperature):
            yield ev
    elif req.mode == "summary":
        if req.source_ids:
            target = svc.summaries.target(source_ids=req.source_ids)
        else:  # summarise the sources retrieval finds for the message
            hits = await asyncio.to_thread(svc.search.retrieve, question, req.top_k, req.filters)
            if not hits:
                raise NotFound("retrieval found no sources to summarise for this message")
            target = svc.summaries.target(source_ids=list(dict.fromkeys(h.source.id for h in hits)))
        summary = await svc.summaries.summarize(target, model=adapter)
        yield AnswerEvent("sources", sources=summary.sources)
        yield AnswerEvent("delta", text=summary.text)
        yield AnswerEvent("final", sources=summary.sources, answer=summary.text, finish_reason="stop",
                          verdict=summary.verdict)
    else:  # plain chat with the model, no retrieval
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in req.messages
                    if m.role in ("system", "developer", "user", "assistant")]
        gen = GenerationRequest(messages=messages, max_tokens=req.token_limit or svc.settings.generation.max_new_tokens,
                                temperature=req.temperature if req.temperature is not None else svc.settings.generation.temperature,
                                top_p=req.top_p or 1.0, stop=[req.stop] if isinstance(req.stop, str) else list(req.stop or []),
                                seed=req.seed, model=adapter,
                                json_schema=_schema(req.response_format))
        parts: list[str] = []
        usage, finish = Usage(0, 0), "stop"
        yield AnswerEvent("sources")
        async for d in svc.generator.stream(gen):
            if d.text:
                parts.append(d.text)
                yield AnswerEvent("delta", text=d.text)
            finish = d.finish_reason or finish
            usage = d.usage or usage
        yield AnswerEvent("final", answer="".join(parts), usage=usage, finish_reason=finish,
                          verdict=Verdict(mode="chat", supported=False, abstained=False, reason="plain chat is not checked"))


def _schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    return spec.get("schema") or None


async def _sse(metrics: Metrics, head: list[AnswerEvent], events: AsyncIterator[AnswerEvent], model: str,
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
            elif ev.type == "final":
                usage = ev.usage or Usage(0, 0)
                include = bool(req.stream_options and req.stream_options.include_usage)
                yield chunk(choices=[p.ChunkChoice(delta=p.DeltaMessage(), finish_reason=ev.finish_reason or "stop")],
                            usage=_usage(usage) if include else None, sources=ev.sources,
                            grounding=ev.verdict)
                _count_tokens(metrics, usage)
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
