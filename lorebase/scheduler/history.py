"""JobRun rows: one per attempt of a step, with its start, end, outcome, counts and error.

Statuses: ``running``; ``ok``; ``failed`` (the error says why; a later attempt may follow);
``skipped`` (another process was running the same job); ``interrupted`` (its process ended before
it finished: found, and marked so, by the next holder of the job's lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from lorebase.store import Store
from lorebase.store.models import JobRun, utcnow

MAX_ERROR_CHARS = 4000
INTERRUPTED = "the process running it ended before it finished"


def start(store: Store, job: str, attempt: int = 1, counts: dict[str, Any] | None = None) -> int:
    with store.session() as s:
        row = JobRun(job=job, status="running", attempt=attempt, counts=counts or {}, started_at=utcnow())
        s.add(row)
        s.flush()
        return row.id


def finish(store: Store, run_id: int, status: str, counts: dict[str, Any] | None = None, error: str | None = None) -> None:
    with store.session() as s:
        row = s.get(JobRun, run_id)
        if row is None:  # deleted meanwhile: nothing to record on
            return
        row.status = status
        if counts is not None:
            row.counts = counts
        row.error = error[:MAX_ERROR_CHARS] if error else None
        row.finished_at = utcnow()


def skipped(store: Store, job: str, reason: str) -> int:
    with store.session() as s:
        now = utcnow()
        row = JobRun(job=job, status="skipped", attempt=1, counts={}, error=reason, started_at=now, finished_at=now)
        s.add(row)
        s.flush()
        return row.id


def mark_interrupted(store: Store, jobs: Sequence[str]) -> int:
    """Rows of these jobs still "running": their process is gone (the caller holds their lock)."""
    if not jobs:
        return 0
    with store.session() as s:
        result = s.execute(
            update(JobRun)
            .where(JobRun.status == "running", JobRun.job.in_(list(jobs)))
            .values(status="interrupted", error=INTERRUPTED, finished_at=utcnow())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _matches(job: str) -> Any:
    """``sync`` matches ``sync`` and every ``sync:<source>``."""
    return or_(JobRun.job == job, JobRun.job.startswith(job + ":", autoescape=True))


def record(row: JobRun) -> dict[str, Any]:
    seconds = None
    if row.finished_at is not None and row.started_at is not None:
        seconds = round((_naive(row.finished_at) - _naive(row.started_at)).total_seconds(), 3)
    return {
        "id": row.id, "job": row.job, "status": row.status, "attempt": row.attempt, "counts": dict(row.counts or {}),
        "error": row.error, "started_at": row.started_at, "finished_at": row.finished_at, "seconds": seconds,
    }  # fmt: skip


def _naive(t: datetime) -> datetime:
    # SQLite hands datetimes back without their (UTC) offset; others keep it.
    return t.replace(tzinfo=None)


def runs(store: Store, job: str | None = None, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
    """Newest first."""
    q = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if job:
        q = q.where(_matches(job))
    if status:
        q = q.where(JobRun.status == status)
    with store.session() as s:
        return [record(r) for r in s.scalars(q)]


def latest(store: Store, job: str, status: str | None = None) -> dict[str, Any] | None:
    found = runs(store, job, limit=1, status=status)
    return found[0] if found else None


def latest_by_job(store: Store, jobs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest row of each named job (exact names), for job listings."""
    out: dict[str, dict[str, Any]] = {}
    for job in jobs:
        with store.session() as s:
            row = s.scalar(select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(1))
            if row is not None:
                out[job] = record(row)
    return out
