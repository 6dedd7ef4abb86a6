"""GET /v1/sources/{id}: a cited source as the viewer shows it (the JSON twin of /sources/{id})."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request

from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.source_view import SourceViewer, parse_lines, parse_times

router = APIRouter()


@router.get("/v1/sources/{source_id}", responses=responses(404))
async def source(request: Request, source_id: str, lines: str | None = None, t: str | None = None,
                 commit: str | None = None, context: int = Query(30, ge=-1, le=100_000)) -> dict[str, Any]:
    """`lines=10-42` (files) or `t=70-85` (transcripts) mark the cited span; `context` lines are
    shown around cited lines (0: only them, -1: the whole file)."""
    span_lines, span_times = parse_lines(lines), parse_times(t)
    viewer = SourceViewer(services(request).store)
    view = await asyncio.to_thread(viewer.view, source_id, lines=span_lines, times=span_times, commit=commit,
                                   context=None if context < 0 else context)
    return {"object": "source", **asdict(view)}
