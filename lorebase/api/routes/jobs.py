"""The scheduler's jobs and tracked sources (lorebase.scheduler; docs/scheduler.md).

- ``GET /v1/jobs``: every runnable job (``sync``, ``sync:<source>``, ``qa``, ``retrain``, ``eval``)
  with its schedule, next run, pause state, whether it runs now, and its latest run.
- ``POST /v1/jobs/{id}/run``: start it now in the background (202); 409 while it runs already.
- ``POST /v1/jobs/{id}/pause`` and ``/resume``: a scheduled job (``sync:<source>``, ``eval``).
- ``GET /v1/jobs/runs?job=&status=&limit=``: the run history, newest first, one row per attempt of
  each step (``job=sync`` matches ``sync:<source>`` too).
- ``GET /v1/jobs/sources``: tracked sources (from settings and from this API).
- ``POST /v1/jobs/sources``: track one more, ``{"name", "spec", "branch"?, "interval_s" | "cron"}``
  (201); local paths only inside ``ingest.api_roots``, as for ``POST /v1/ingest``.
- ``DELETE /v1/jobs/sources/{name}``: stop tracking one added here (its ingested sources stay).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.api.routes.native import confined_spec
from lorebase.errors import InvalidInput
from lorebase.scheduler import history
from lorebase.scheduler.changes import forget_listing
from lorebase.scheduler.service import SchedulerService
from lorebase.scheduler.tracked import TrackedSources
from lorebase.scheduler.triggers import source_trigger
from lorebase.settings import TrackedSourceSettings

router = APIRouter()


def scheduler(request: Request) -> SchedulerService:
    return request.app.state.scheduler


@router.get("/v1/jobs")
async def list_jobs(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": await asyncio.to_thread(scheduler(request).jobs)}


@router.get("/v1/jobs/runs")
async def job_runs(request: Request, job: str | None = None, status: str | None = None, limit: int = 50) -> dict[str, Any]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be from 1 to 500")
    rows = await asyncio.to_thread(history.runs, services(request).store, job, limit, status)
    return {"object": "list", "data": rows}


@router.get("/v1/jobs/sources")
async def list_sources(request: Request) -> dict[str, Any]:
    svc = services(request)
    found = await asyncio.to_thread(TrackedSources(svc.settings, svc.store).all)
    return {"object": "list", "data": [t.as_dict() for t in found]}


@router.post("/v1/jobs/sources", status_code=201, responses=responses(409))
async def add_source(source: TrackedSourceSettings, request: Request) -> dict[str, Any]:
    svc = services(request)
    source = source.model_copy(update={"spec": confined_spec(svc, source.spec)})
    source_trigger(source, svc.settings.scheduler.timezone)  # a schedule APScheduler refuses is a 400 now
    tracked = await asyncio.to_thread(TrackedSources(svc.settings, svc.store).add, source)
    sched = scheduler(request)
    if sched.mode == "running":
        await asyncio.to_thread(sched.reconcile)
    return tracked.as_dict()


@router.delete("/v1/jobs/sources/{name}", responses=responses(404))
async def remove_source(name: str, request: Request) -> dict[str, Any]:
    svc = services(request)
    await asyncio.to_thread(TrackedSources(svc.settings, svc.store).remove, name)
    await asyncio.to_thread(forget_listing, svc.store, name)
    sched = scheduler(request)
    if sched.mode == "running":
        await asyncio.to_thread(sched.reconcile)
    return {"object": "tracked_source.deleted", "name": name, "deleted": True}


@router.post("/v1/jobs/{job_id}/run", status_code=202, responses=responses(404, 409))
async def run_job(job_id: str, request: Request) -> dict[str, Any]:
    return await asyncio.to_thread(scheduler(request).run_now, job_id)


@router.post("/v1/jobs/{job_id}/pause", responses=responses(404))
async def pause_job(job_id: str, request: Request) -> dict[str, Any]:
    paused = await asyncio.to_thread(scheduler(request).pause, job_id)
    return {"object": "job.paused", "jobs": paused}


@router.post("/v1/jobs/{job_id}/resume", responses=responses(404))
async def resume_job(job_id: str, request: Request) -> dict[str, Any]:
    resumed = await asyncio.to_thread(scheduler(request).resume, job_id)
    return {"object": "job.resumed", "jobs": resumed}
