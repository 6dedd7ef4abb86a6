"""Summaries run in the background of a server, with their progress, for `POST /v1/summaries/jobs`.

A one-hour lecture takes minutes on a small CPU: longer than a client should hold one HTTP request
open. A job runs the summary as a task of the server's event loop and records its progress (calls
done of those known so far) and, at the end, the summary or the error. Jobs live in memory: the
newest ``keep`` finished ones are kept; a restart forgets them (a client then starts again).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from lorebase.errors import LorebaseError, NotFound, Overloaded
from lorebase.generation.summarize import Summary, SummaryProgress, SummaryService
from lorebase.generation.summary_targets import SummaryTarget

log = logging.getLogger(__name__)


@dataclass
class SummaryJob:
    id: str
    title: str
    model: str | None
    status: str = "running"  # running, succeeded, failed
    progress: SummaryProgress = field(default_factory=lambda: SummaryProgress("map", 0, 0))
    result: Summary | None = None
    error: str | None = None
    error_code: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None


class SummaryJobs:
    def __init__(self, max_running: int = 4, keep: int = 100) -> None:
        self.max_running = max_running
        self.keep = keep
        self._jobs: OrderedDict[str, SummaryJob] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ids = itertools.count(1)

    def start(self, service: SummaryService, target: SummaryTarget, model: str | None, shown_model: str | None = None) -> SummaryJob:
        running = sum(1 for j in self._jobs.values() if j.status == "running")
        if running >= self.max_running:
            raise Overloaded(f"{running} summary jobs are running (the limit); try again when one ends")
        job = SummaryJob(f"sumjob_{int(time.time())}_{next(self._ids)}", target.title, shown_model or model)

        def progress(p: SummaryProgress) -> None:
            job.progress = p

        async def run() -> None:
            try:
                job.result = await service.summarize(target, model=model, progress=progress)
                job.status = "succeeded"
            except asyncio.CancelledError:
                job.status, job.error, job.error_code = "failed", "the server stopped before the summary was done", "cancelled"
                raise
            except LorebaseError as e:
                job.status, job.error, job.error_code = "failed", str(e), e.code
            except Exception:
                log.exception("summary job %s failed", job.id)
                job.status, job.error, job.error_code = "failed", "internal error; see the server log", "internal_error"
            finally:
                job.finished_at = time.time()
                self._tasks.pop(job.id, None)
                self._prune()

        self._jobs[job.id] = job
        self._tasks[job.id] = asyncio.create_task(run(), name=job.id)
        return job

    def get(self, job_id: str) -> SummaryJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no summary job {job_id!r} (jobs are kept in memory until the server restarts)")
        return job

    def _prune(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status != "running"]
        for job_id in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[job_id]

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def job_record(job: SummaryJob) -> dict[str, Any]:
    """The job as the API shows it."""
    p = job.progress
    record: dict[str, Any] = {
        "object": "summary.job", "id": job.id, "status": job.status, "title": job.title, "model": job.model,
        "progress": {"stage": p.stage, "done": p.done, "total": p.total}, "created_at": int(job.created_at),
        "finished_at": int(job.finished_at) if job.finished_at else None,
    }
    if job.result is not None:
        s = job.result
        record["result"] = {"title": s.title, "summary": s.text, "sources": [c.model_dump() for c in s.sources],
                            "input_chars": s.input_chars, "output_chars": len(s.text), "model": job.model or s.model}
    if job.error is not None:
        record["error"] = {"message": job.error, "code": job.error_code}
    return record
