"""GET /healthz and GET /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select

from lorebase.api.deps import services
from lorebase.store.models import Chunk, Source

router = APIRouter()
metrics_router = APIRouter()  # behind the API key, unlike /healthz


@router.get("/healthz", response_model=None, responses={503: {"description": "The database is unavailable: {status: error, database}."}})
async def healthz(request: Request) -> dict[str, Any] | JSONResponse:
    """Readiness: 200 ``ok`` once the generator has answered; 503 ``starting`` (with Retry-After and
    what is still ``loading``) before; 200 ``degraded`` when the generator failed (search and
    ingest still serve; ``failed`` says why)."""
    svc = services(request)
    try:
        with svc.store.session() as s:
            sources = s.scalar(select(func.count(Source.id))) or 0
            chunks = s.scalar(select(func.count(Chunk.id))) or 0
    except Exception as e:  # the database is the one thing we cannot serve without
        return JSONResponse({"status": "error", "database": f"unavailable: {type(e).__name__}"}, status_code=503)
    ready = svc.readiness
    status = ready.status
    generator = "up" if ready.is_ready("generator") else ("starting" if status == "starting" else "down")
    body: dict[str, Any] = {"status": status, "database": "ok", "generator": generator, "sources": sources, "chunks": chunks,
                            "indexed_vectors": svc.indexer.dense.count}
    if loading := ready.loading():
        body["loading"] = loading
    if failed := ready.failed():
        body["failed"] = failed
    engines = getattr(svc.generator, "engines", None)
    if callable(engines):  # which engine serves what (vLLM: the base engine, a merged promoted adapter)
        body["engines"] = engines()
        if "starting" in body["engines"]:  # the adapter is served through LoRA meanwhile: ok, but say so
            adapter = body["engines"]["starting"]["adapter"]
            body.setdefault("loading", {})["merged engine"] = f"starting an engine on {adapter}'s merged weights"
    if status == "starting":
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    return body


@metrics_router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    svc = services(request)
    queue = getattr(svc.generator, "queue", None)
    if queue is not None:
        m.queue_depth.set(queue.waiting)
        m.in_flight.set(queue.running)
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
