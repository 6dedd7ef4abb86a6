"""The job runner: runs a job's steps in order, each attempt a JobRun, under the job's lock, with
retries and backoff; and the chain that follows a sync.

Jobs (``lorebase jobs run NAME``, the API, the scheduler):

- ``sync:<source>``: 1. ``sync:<source>`` (what changed) 2. ``ingest:<source>`` (just that), then
  3. ``qa`` when an ingest changed something since the last QA run, and 4. the retraining check:
  enough new validated pairs (feedback corrections included) since the last training start
  5. ``retrain`` 6. ``evaluate`` (the gate) 7. ``promote`` (by the gate's decision). Under the
  scheduler, 5-7 are queued as the ``retrain`` job instead of run in the sync's thread.
- ``sync``: the same over every tracked source.
- ``qa``: step 3 alone. ``retrain``: 5-7 (or the rest of them for an adapter left half-way).
- ``eval``: the scheduled evaluation.
- ``tune_embedder``: tune the embedder on the QA pairs, gate it on held-out sources, and on a pass
  re-embed and swap the index (opt-in: scheduled only when scheduler.embedder_cron is set).

Locks (lorebase.store.locks): ``sync:<source>`` covers that source's sync and ingest, ``qa``,
``retrain`` (retrain, evaluate, promote), ``eval`` and ``tune_embedder``. A job whose lock another process holds is
recorded as ``skipped``. The holder of a lock marks rows its predecessor left ``running`` as
``interrupted``. Every step is safe to redo: readers resume from their saved cursors and the store
compares content hashes, QA generation skips sources with current pairs, and an adapter is
registered only once wholly written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from lorebase.errors import Conflict, InvalidInput, LorebaseError, ModelNotAvailable, NotFound, SettingsError
from lorebase.scheduler import history, jobs
from lorebase.scheduler.jobs import JobContext
from lorebase.scheduler.tracked import TrackedSources
from lorebase.settings import TrackedSourceSettings
from lorebase.store.locks import JobLock
from lorebase.store.models import JobRun

log = logging.getLogger(__name__)
T = TypeVar("T")

FIXED_JOBS = ("sync", "qa", "retrain", "eval", "tune_embedder")
RETRAIN_STEPS = ("retrain", "evaluate", "promote")
# Retrying cannot cure these: bad input or settings, a missing model, something not there.
PERMANENT = (InvalidInput, SettingsError, NotFound, ModelNotAvailable, Conflict)


def is_transient(e: BaseException) -> bool:
    return isinstance(e, Exception) and not isinstance(e, PERMANENT)


def describe(e: BaseException) -> str:
    return str(e) if isinstance(e, LorebaseError) else f"{type(e).__name__}: {e}"


@dataclass
class StepOutcome:
    job: str
    status: str  # ok | failed | skipped
    counts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    run_id: int | None = None
    attempts: int = 0
    seconds: float = 0.0
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "status": self.status, "counts": self.counts, "error": self.error, "run_id": self.run_id,
                "attempts": self.attempts, "seconds": round(self.seconds, 3)}


@dataclass
class RunSummary:
    job: str
    steps: list[StepOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retrain: dict[str, Any] | None = None  # the retraining check, when one was made

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "ok": self.ok, "steps": [s.as_dict() for s in self.steps], "notes": self.notes,
                "retrain": self.retrain}


def lock_of(job: str) -> str:
    """The lock a job name runs under (a step's name or a runnable job's)."""
    head, _, source = job.partition(":")
    if head in ("sync", "ingest") and source:
        return f"sync:{source}"
    if head in RETRAIN_STEPS:
        return "retrain"
    return head


def steps_under(lock: str) -> list[str]:
    head, _, source = lock.partition(":")
    if head == "sync" and source:
        return [f"sync:{source}", f"ingest:{source}"]
    if head == "retrain":
        return list(RETRAIN_STEPS)
    return [lock]


class JobRunner:
    """Runs jobs in the calling thread. ``enqueue`` (the scheduler's) queues the retrain chain as
    its own job; without it, a due retraining runs right after the sync that found it due."""

    def __init__(
        self,
        ctx: JobContext,
        *,
        enqueue: Callable[[str], None] | None = None,
        say: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.store = ctx.store
        self.enqueue = enqueue
        self.say = say or log.info
        self.sleep = sleep

    # --- entry point ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(FIXED_JOBS) + [t.job_id for t in TrackedSources(self.settings, self.store).all()]

    def run(self, name: str) -> RunSummary:
        summary = RunSummary(name)
        tracked = TrackedSources(self.settings, self.store)
        if name == "sync":
            sources = [t.source for t in tracked.all()]
            if not sources:
                summary.notes.append("no tracked sources: add them in settings (scheduler.sources) or through the API")
            self._sync(sources, summary)
        elif name.startswith("sync:"):
            self._sync([tracked.get(name.removeprefix("sync:")).source], summary)
        elif name == "qa":
            self._qa(summary)
        elif name == "retrain":
            self._retrain_chain(summary)
        elif name in ("eval", "tune_embedder"):
            work = {"eval": jobs.run_eval, "tune_embedder": jobs.tune_embedder}[name]
            with JobLock(self.settings, name) as got:
                if not got:
                    summary.steps.append(self._skip(name))
                else:
                    history.mark_interrupted(self.store, [name])
                    summary.steps.append(self.step(name, lambda: work(self.ctx)))
        else:
            raise NotFound(f"no job named {name!r}; jobs: {', '.join(self.names())}")
        return summary

    # --- one step, retried ---------------------------------------------------------------------------

    def step(self, job: str, fn: Callable[[], T], counts: Callable[[T], dict[str, Any]] | None = None) -> StepOutcome:
        """Run ``fn`` as the step ``job``: a JobRun per attempt, transient failures retried with
        exponential backoff (scheduler.backoff_s, doubled each time, at most backoff_max_s)."""
        cfg = self.settings.scheduler
        outcome = StepOutcome(job, "failed")
        started = time.monotonic()

        def before_sleep(state: RetryCallState) -> None:
            wait = state.next_action.sleep if state.next_action else 0.0
            self.say(f"{job}: attempt {state.attempt_number} failed ({outcome.error}); retrying in {wait:.1f} s")

        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_attempts),
            wait=wait_exponential(multiplier=cfg.backoff_s, max=cfg.backoff_max_s),
            retry=retry_if_exception(is_transient),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        self.say(f"{job}: started")
        try:
            for attempt in retrying:
                with attempt:
                    outcome.attempts = attempt.retry_state.attempt_number
                    outcome.run_id = history.start(self.store, job, outcome.attempts)
                    try:
                        value = fn()
                    except BaseException as e:
                        outcome.error = describe(e)
                        if isinstance(e, Exception) and not isinstance(e, LorebaseError):
                            log.exception("%s failed", job)
                        history.finish(self.store, outcome.run_id, "failed" if isinstance(e, Exception) else "interrupted",
                                       error=outcome.error)
                        raise
                    outcome.counts = counts(value) if counts is not None else dict(value)  # type: ignore[call-overload]
                    outcome.value = value
                    history.finish(self.store, outcome.run_id, "ok", outcome.counts)
        except Exception:
            outcome.seconds = time.monotonic() - started
            self.say(f"{job}: failed after {outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}: {outcome.error}")
            return outcome
        outcome.status, outcome.error = "ok", None
        outcome.seconds = time.monotonic() - started
        self.say(f"{job}: ok in {outcome.seconds:.1f} s: {brief(outcome.counts)}")
        return outcome

    def _skip(self, job: str) -> StepOutcome:
        reason = f"another process is running {lock_of(job)} now"
        run_id = history.skipped(self.store, job, reason)
        self.say(f"{job}: skipped: {reason}")
        return StepOutcome(job, "skipped", error=reason, run_id=run_id)

    # --- the sync chain ------------------------------------------------------------------------------

    def _sync(self, sources: list[TrackedSourceSettings], summary: RunSummary) -> None:
        for source in sources:
            self._sync_one(source, summary)
        if self._qa_due():
            self._qa(summary)
        self._maybe_retrain(summary)

    def _sync_one(self, source: TrackedSourceSettings, summary: RunSummary) -> None:
        job = f"sync:{source.name}"
        lock = JobLock(self.settings, lock_of(job))
        if not lock.acquire():
            summary.steps.append(self._skip(job))
            return
        try:
            history.mark_interrupted(self.store, steps_under(lock.name))
            found = self.step(job, lambda: jobs.sync_source(self.ctx, source), counts=lambda ch: ch.as_counts())
            summary.steps.append(found)
            if found.status == "ok" and found.value.changed:
                change = found.value
                summary.steps.append(self.step(f"ingest:{source.name}", lambda: jobs.ingest_source(self.ctx, source, change)))
        finally:
            lock.release()

    def _qa_due(self) -> bool:
        """An ingest changed the store after the last QA run that went through began."""
        with self.store.session() as s:
            qa_start = s.scalar(select(JobRun.started_at).where(JobRun.job == "qa", JobRun.status == "ok")
                                .order_by(JobRun.id.desc()).limit(1))
            q = select(JobRun.counts).where(JobRun.job.startswith("ingest:"), JobRun.status == "ok")
            if qa_start is not None:
                q = q.where(JobRun.finished_at > qa_start)
            return any(jobs.changed_anything(c or {}) for c in s.scalars(q))

    def _qa(self, summary: RunSummary) -> None:
        # Waits for a QA run of another job to end: the sources this job ingested need their pairs.
        with JobLock(self.settings, "qa", blocking=True):
            history.mark_interrupted(self.store, ["qa"])
            summary.steps.append(self.step("qa", lambda: jobs.generate_qa(self.ctx)))

    def _maybe_retrain(self, summary: RunSummary) -> None:
        pending = jobs.pending_adapter(self.ctx)
        check = jobs.retrain_check(self.ctx)
        summary.retrain = check.as_dict()
        if pending is None and not check.due:
            summary.notes.append(f"retraining not due: {check.new_pairs} new validated pairs since the last training "
                                 f"(threshold scheduler.retrain_min_pairs = {check.threshold})")
            return
        why = f"adapter {pending.adapter} awaits its {pending.next_step} step" if pending else \
            f"{check.new_pairs} new validated pairs (threshold {check.threshold})"
        if self.enqueue is not None:
            self.enqueue("retrain")
            summary.notes.append(f"retrain queued: {why}")
            self.say(f"retrain queued: {why}")
            return
        summary.notes.append(f"retraining: {why}")
        self._retrain_chain(summary)

    # --- the retrain chain ---------------------------------------------------------------------------

    def _retrain_chain(self, summary: RunSummary) -> None:
        """Finish the scheduler's adapter left half-way, if any; otherwise train, evaluate, promote."""
        lock = JobLock(self.settings, "retrain")
        if not lock.acquire():
            summary.steps.append(self._skip("retrain"))
            return
        try:
            history.mark_interrupted(self.store, list(RETRAIN_STEPS))
            pending = jobs.pending_adapter(self.ctx)
            if pending is None:
                trained = self.step("retrain", lambda: jobs.train(self.ctx))
                summary.steps.append(trained)
                if trained.status != "ok":
                    return
                adapter, next_step = trained.counts["adapter"], "evaluate"
            else:
                adapter, next_step = pending.adapter, pending.next_step
                summary.notes.append(f"resuming {adapter} at its {next_step} step")
            if next_step == "evaluate":
                gated = self.step("evaluate", lambda: jobs.evaluate(self.ctx, adapter))
                summary.steps.append(gated)
                if gated.status != "ok":
                    return
            summary.steps.append(self.step("promote", lambda: jobs.promote(self.ctx, adapter)))
        finally:
            lock.release()


def brief(counts: dict[str, Any]) -> str:
    """The plain numbers and words of a counts dict, in one line."""
    parts = [f"{k} {v}" for k, v in counts.items() if isinstance(v, (int, float, str, bool)) and v not in ("", None)]
    return ", ".join(parts) or "done"
