"""GET /v1/eval/runs and /v1/eval/runs/{id}: evaluation runs, as JSON or as their HTML report."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.api.protocol import RowId
from lorebase.errors import InvalidInput, NotFound
from lorebase.eval.report_html import render_index
from lorebase.eval.runs import get_run, list_runs, load_report, report_paths

router = APIRouter()
Format = Annotated[
    Literal["json", "html"] | None, Query(alias="format", description="json (default) or html; Accept: text/html also asks for html")
]

# The reports are self-contained; this keeps a browser from loading anything else with them.
_HTML_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                 "X-Content-Type-Options": "nosniff"}


def _wants_html(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        return fmt == "html"
    return "text/html" in request.headers.get("accept", "")


_OR_HTML: dict[int | str, dict[str, Any]] = {200: {"content": {"text/html": {}}, "description": "JSON, or the HTML report when asked for"}}


@router.get("/v1/eval/runs", response_model=None, responses=_OR_HTML)
async def eval_runs(request: Request, limit: int = 50, fmt: Format = None) -> dict[str, Any] | HTMLResponse:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be from 1 to 500")
    runs = await asyncio.to_thread(list_runs, services(request).store, limit)
    if _wants_html(request, fmt):
        return HTMLResponse(render_index(runs), headers=_HTML_HEADERS)
    return {"object": "list", "data": runs}


@router.get("/v1/eval/runs/{run_id}", response_model=None, responses={**_OR_HTML, **responses(404)})
async def eval_run(run_id: RowId, request: Request, fmt: Format = None) -> dict[str, Any] | HTMLResponse:
    svc = services(request)
    if _wants_html(request, fmt):
        record = await asyncio.to_thread(get_run, svc.store, run_id)
        _, html_path = report_paths(svc.settings, run_id)
        if not html_path.is_file():
            raise NotFound(f"eval run {run_id} has no HTML report (status: {record['status']})")
        return HTMLResponse(await asyncio.to_thread(html_path.read_text, encoding="utf-8"), headers=_HTML_HEADERS)
    return await asyncio.to_thread(load_report, svc.settings, svc.store, run_id)
