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
    svc = services(request)
    try:
        with svc.store.session() as s:
            sources = s.scalar(select(func.count(Source.id))) or 0
            chunks = s.scalar(select(func.count(Chunk.id))) or 0
    except Exception as e:  # the database is the one thing we cannot serve without
        return JSONResponse({"status": "error", "database": f"unavailable: {type(e).__name__}"}, status_code=503)
    generator = "up" if svc.generator is not None else "down"
    return {"status": "ok" if generator == "up" else "degraded", "database": "ok", "generator": generator,
            "sources": sources, "chunks": chunks, "indexed_vectors": svc.indexer.dense.count}


@metrics_router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    m = request.app.state.metrics
    svc = services(request)
    queue = getattr(svc.generator, "queue", None)
    if queue is not None:
        m.queue_depth.set(queue.waiting)
        m.in_flight.set(queue.running)
    return Response(m.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
