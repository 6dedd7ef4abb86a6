"""lorebase's own endpoints: search, summaries, feedback, ingest runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from lorebase.api import protocol as p
from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.errors import IngestBusy, InvalidInput, NotFound
from lorebase.generation.summary_jobs import SummaryJobs, job_record
from lorebase.ingest.resolve import confine_to_roots
from lorebase.ingest.url_hosts import check_url_host, denied_hosts
from lorebase.server_binding import is_loopback
from lorebase.services import Services
from lorebase.settings import SourceSpec
from lorebase.store.models import IngestRun

router = APIRouter()


@router.post("/v1/search")
async def search(req: p.SearchRequest, request: Request) -> p.SearchResponse:
    svc = services(request)
    cites = await asyncio.to_thread(svc.search.search, req.query, req.top_k, req.filters, req.mode)
    return p.SearchResponse(data=cites)


@router.post("/v1/summaries", responses=responses(404, 429, 502, 503))
async def summaries(req: p.SummaryRequest, request: Request) -> p.SummaryResponse:
    conv = services(request).conversation
    summaries = conv.engine().summaries
    adapter = await conv.resolve_model(req.model)
    target = summaries.target(source_ids=req.source_ids, lecture=req.lecture, commit_range=req.commit_range,
                              number=req.number, repo=req.repo)
    s = await summaries.summarize(target, model=adapter)
    return p.SummaryResponse(title=s.title, summary=s.text, sources=s.sources, input_chars=s.input_chars,
                             output_chars=len(s.text), model=req.model or s.model)


@router.post("/v1/summaries/jobs", status_code=202, responses=responses(404, 429, 503))
async def start_summary_job(req: p.SummaryRequest, request: Request) -> dict[str, Any]:
    """The same summary in the background; poll `GET /v1/summaries/jobs/{id}` for its progress and result."""
    conv = services(request).conversation
    summaries = conv.engine().summaries
    adapter = await conv.resolve_model(req.model)
    target = summaries.target(source_ids=req.source_ids, lecture=req.lecture, commit_range=req.commit_range,
                              number=req.number, repo=req.repo)
    jobs: SummaryJobs = request.app.state.summary_jobs
    return job_record(jobs.start(summaries, target, adapter, shown_model=req.model))


@router.get("/v1/summaries/jobs/{job_id}", responses=responses(404))
async def summary_job(job_id: str, request: Request) -> dict[str, Any]:
    jobs: SummaryJobs = request.app.state.summary_jobs
    return job_record(jobs.get(job_id))


@router.post("/v1/feedback", status_code=201)
async def feedback(req: p.FeedbackRequest, request: Request) -> dict[str, Any]:
    svc = services(request)
    base = svc.generator.base_model if svc.generator is not None else None
    model = req.model or base or "unknown"
    adapter = None if model == base else model
    fid = svc.feedback.record(rating=req.score, question=req.question, answer=req.answer, sources=req.sources,
                              model=model, adapter=adapter, comment=req.comment, channel="api",
                              external_id=req.completion_id, verdict=req.grounding)
    return {"object": "feedback", "id": fid, "rating": req.score}


@router.get("/v1/feedback/stats")
async def feedback_stats(request: Request, days: int = 30) -> dict[str, Any]:
    if not 1 <= days <= 3650:
        raise InvalidInput("days must be from 1 to 3650")
    return services(request).feedback.stats(days)


# --- ingest ---------------------------------------------------------------------------------------


class IngestRequest(BaseModel):
    sources: list[SourceSpec] = Field(min_length=1, max_length=100)


def confined_spec(svc: Services, spec: str) -> str:
    """Through the API, local paths (and file:// URLs) must lie inside `ingest.api_roots`, and URLs
    must not point at hosts `ingest.url_hosts_denied` covers: the API must not become a way to read
    the server's files or reach what only the server can reach. Returns the spec to ingest (a local
    one as its real absolute path)."""
    ingest = svc.settings.ingest
    spec = confine_to_roots(spec, ingest.api_roots)
    denied = denied_hosts(svc.settings, bound_to_loopback=is_loopback(svc.settings.server.host))
    check_url_host(spec, denied, ingest.url_hosts_allowed)
    return spec


def _run_record(run: IngestRun) -> dict[str, Any]:
    return {k: getattr(run, k) for k in ("id", "status", "inputs", "added", "updated", "unchanged", "removed", "skipped",
                                          "failed", "chunks_added", "chunks_removed", "errors", "started_at", "finished_at",
                                          "last_seen_at")}


@router.post("/v1/ingest", status_code=202, responses=responses(409))
async def start_ingest(req: IngestRequest, request: Request) -> dict[str, Any]:
    svc = services(request)
    specs = [confined_spec(svc, spec) for spec in req.sources]
    lock: threading.Lock = request.app.state.ingest_lock
    if not lock.acquire(blocking=False):
        raise IngestBusy("an ingest run is already in progress; try again when it ends")
    run_id = svc.ingest.open_run(specs)

    def work() -> None:
        try:
            svc.ingest.ingest(specs, run_id=run_id)
        finally:
            lock.release()

    threading.Thread(target=work, name=f"ingest-{run_id}", daemon=True).start()
    return {"object": "ingest.run", "id": run_id, "status": "running"}


@router.get("/v1/ingest/runs")
async def ingest_runs(request: Request, limit: int = 20) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be from 1 to 500")
    with services(request).store.session() as s:
        runs = list(s.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(limit)))
        return {"object": "list", "data": [_run_record(r) for r in runs]}


@router.get("/v1/ingest/runs/{run_id}", responses=responses(404))
async def ingest_run(run_id: p.RowId, request: Request) -> dict[str, Any]:
    with services(request).store.session() as s:
        run = s.get(IngestRun, run_id)
        if run is None:
            raise NotFound(f"no ingest run {run_id}")
        return _run_record(run)
