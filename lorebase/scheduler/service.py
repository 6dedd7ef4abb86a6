"""The scheduler: APScheduler 3 (a BackgroundScheduler) with its jobs persisted in the lorebase
database (SQLAlchemyJobStore, table ``apscheduler_jobs``, created by our migrations).

Jobs stored: ``sync:<source>`` for each tracked source (its interval or cron), ``eval`` (the
evaluation on scheduler.eval_cron), and one-off ``retrain`` / ``now:<job>`` runs. Every stored job
names the same module-level function, :func:`run_scheduled`, by reference with the job's name as its
only argument, so the store holds no live object and a restarted process picks the jobs up again.

Defaults for every job: one instance at a time (``max_instances=1``), missed runs coalesced into
one (``coalesce``), and a run at most ``scheduler.misfire_grace_s`` late still starts.

One process per database runs the scheduler (``lorebase serve`` with scheduler.enabled, or
``lorebase scheduler run``): the scheduler lock enforces it, a file in the data home with SQLite
and an advisory lock with PostgreSQL, across hosts (``start_when_free`` stands by for it). Other
processes (``lorebase jobs pause``) open it in control mode: they change the stored jobs without running any, and the running
scheduler picks the change up within ``scheduler.poll_s``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lorebase.errors import Conflict, InvalidInput, NotFound
from lorebase.scheduler import history
from lorebase.scheduler.jobs import JobContext
from lorebase.scheduler.pipeline import FIXED_JOBS, JobRunner, RunSummary, brief, lock_of
from lorebase.scheduler.tracked import TrackedSources
from lorebase.scheduler.triggers import schedule_text, source_trigger, trigger_for, trigger_key
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.db import is_postgres
from lorebase.store.locks import JobLock, is_busy

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.base import BaseTrigger

    from lorebase.services import Services

log = logging.getLogger(__name__)

WORKERS = 4  # jobs running at once in one process (syncs of different sources, a retrain, the evaluation)
JOB_TABLE = "apscheduler_jobs"
SCHEDULER_LOCK = "scheduler"

_active: SchedulerService | None = None  # the service running jobs in this process
_active_lock = threading.Lock()


def run_scheduled(name: str) -> None:
    """What every stored job calls: the job ``name`` on this process's running scheduler service."""
    service = _active
    if service is None:
        log.error("job %s is due, but no scheduler service runs in this process", name)
        return
    service.execute(name)


class _Stopping(BaseException):
    """The scheduler is shutting down: a step waiting to retry stops waiting."""


def _is_scheduled_id(job_id: str) -> bool:
    """Ids reconcile() owns (the others are one-off runs)."""
    return job_id in ("eval", "tune_embedder") or job_id.startswith("sync:")


class SchedulerService:
    """``context`` builds the JobContext jobs run with (needed only where jobs run)."""

    def __init__(self, settings: Settings, store: Store, context: Callable[[], JobContext] | None = None) -> None:
        self.settings = settings
        self.store = store
        self._context = context
        self.scheduler: BackgroundScheduler | None = None
        self.mode = "stopped"  # stopped | running | control
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock: JobLock | None = None
        self._open = threading.Lock()

    # --- starting and stopping ---------------------------------------------------------------------

    def _make_scheduler(self) -> BackgroundScheduler:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        cfg = self.settings.scheduler
        options: dict[str, Any] = {
            # Our engine: its SQLite pragmas (WAL, busy timeout) serve the job store too.
            "jobstores": {"default": SQLAlchemyJobStore(engine=self.store.engine, tablename=JOB_TABLE)},
            "executors": {"default": ThreadPoolExecutor(WORKERS)},
            "job_defaults": {"max_instances": 1, "coalesce": True, "misfire_grace_time": cfg.misfire_grace_s},
        }
        if cfg.timezone:
            options["timezone"] = cfg.timezone
        return BackgroundScheduler(**options)

    def start(self) -> None:
        """Run the jobs in this process (worker threads)."""
        global _active
        if self._context is None:
            raise InvalidInput("this scheduler service has no job context: it can only be opened in control mode")
        with self._open:
            if self.mode != "stopped":
                raise InvalidInput(f"the scheduler is {self.mode} already")
            lock = JobLock(self.settings, SCHEDULER_LOCK)
            if not lock.acquire():
                target = "this database" if is_postgres(self.settings.db_url) else str(self.settings.home)
                raise Conflict(f"a scheduler runs for {target} already (it holds the {lock.where}); "
                               "one process runs the jobs of a database at a time")
            with _active_lock:
                if _active is not None:
                    lock.release()
                    raise Conflict("a scheduler service runs in this process already")
                _active = self
            self._lock = lock
            self._stop.clear()
            sched = self._make_scheduler()
            sched.start(paused=True)
            self.scheduler, self.mode = sched, "running"
            try:
                self.reconcile()
            except BaseException:
                self._shutdown_locked(wait=False)
                raise
            sched.resume()
            self._poller = threading.Thread(target=self._poll, name="lorebase-scheduler-poll", daemon=True)
            self._poller.start()
        log.info("scheduler running: %s", ", ".join(j.id for j in sched.get_jobs()) or "no jobs")

    def start_when_free(self, stop: threading.Event, poll_s: float, on_wait: Callable[[str], None] | None = None) -> bool:
        """Stand by until no other scheduler holds the scheduler lock, then start here; False when
        ``stop`` was set first. With PostgreSQL the lock spans hosts, so of several `lorebase
        scheduler run` processes exactly one runs the jobs, and another takes over within
        ``poll_s`` when it dies (SIGKILL and power loss included: its session, and lock, end)."""
        told = False
        while not stop.is_set():
            try:
                self.start()
                return True
            except Conflict as e:
                if not told and on_wait is not None:
                    on_wait(str(e))
                told = True
            stop.wait(poll_s)
        return False

    def open_control(self) -> None:
        """Read and change the stored jobs without running any (the CLI, a server not running jobs)."""
        with self._open:
            if self.mode != "stopped":
                return
            sched = self._make_scheduler()
            sched.start(paused=True)
            self.scheduler, self.mode = sched, "control"
            self.reconcile()

    def shutdown(self, wait: bool = False) -> None:
        """Stop; a running job goes on to its end unless ``wait`` is False and the process exits
        (a job cut short is safe: the next run redoes it)."""
        with self._open:
            self._shutdown_locked(wait)

    def _shutdown_locked(self, wait: bool) -> None:
        global _active
        self._stop.set()
        if self.scheduler is not None:
            if self.mode == "running":
                self.scheduler.pause()  # no new submissions while the executors wind down
            self.scheduler.shutdown(wait=wait)
            self.scheduler = None
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None
        with _active_lock:
            if _active is self:
                _active = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.mode = "stopped"

    def _sched(self) -> BackgroundScheduler:
        if self.scheduler is None:
            self.open_control()
        assert self.scheduler is not None
        return self.scheduler

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.scheduler.poll_s):
            try:
                self.reconcile()
                if self.scheduler is not None:
                    self.scheduler.wakeup()  # jobs paused, resumed or added by other processes
            except Exception:
                log.exception("scheduler: could not refresh the jobs")

    # --- the stored jobs ---------------------------------------------------------------------------

    def _job_options(self) -> dict[str, Any]:
        return {"max_instances": 1, "coalesce": True, "misfire_grace_time": self.settings.scheduler.misfire_grace_s}

    def reconcile(self) -> list[str]:
        """Make the stored schedules those of the tracked sources, eval_cron and embedder_cron: add, change (a
        paused job stays paused) and remove. Returns the scheduled ids."""
        sched = self.scheduler
        if sched is None:  # shut down meanwhile
            return []
        cfg = self.settings.scheduler
        wanted: dict[str, BaseTrigger] = {}
        for tracked in TrackedSources(self.settings, self.store).all():
            try:
                wanted[tracked.job_id] = source_trigger(tracked.source, cfg.timezone)
            except InvalidInput as e:
                log.error("tracked source %s is not scheduled: %s", tracked.name, e)
        if cfg.eval_cron:
            try:
                wanted["eval"] = trigger_for(cfg.eval_cron, None, cfg.timezone)
            except InvalidInput as e:
                log.error("the evaluation is not scheduled: %s", e)
        if cfg.embedder_cron:
            try:
                wanted["tune_embedder"] = trigger_for(cfg.embedder_cron, None, cfg.timezone)
            except InvalidInput as e:
                log.error("embedder tuning is not scheduled: %s", e)
        options = self._job_options()
        existing = {j.id: j for j in sched.get_jobs()}
        for job_id, trigger in wanted.items():
            job = existing.get(job_id)
            if job is None:
                # A newly tracked source is synced at once; the evaluation waits for its hour.
                first = {"next_run_time": datetime.now(sched.timezone)} if job_id.startswith("sync:") else {}
                sched.add_job(run_scheduled, trigger, args=[job_id], id=job_id, name=job_id, replace_existing=True,
                              **options, **first)
                continue
            changes: dict[str, Any] = {k: v for k, v in options.items() if getattr(job, k) != v}
            if trigger_key(job.trigger) != trigger_key(trigger):
                changes["trigger"] = trigger
                if job.next_run_time is not None:  # paused stays paused
                    changes["next_run_time"] = trigger.get_next_fire_time(None, datetime.now(sched.timezone))
            if changes:
                job.modify(**changes)
        for job_id in existing:
            if _is_scheduled_id(job_id) and job_id not in wanted:
                sched.remove_job(job_id)
        return sorted(wanted)

    def jobs(self) -> list[dict[str, Any]]:
        """Every runnable job: its schedule (if any), next run, pause state, whether it runs now,
        and its latest run."""
        sched = self._sched()
        stored = {j.id: j for j in sched.get_jobs()}
        names = list(FIXED_JOBS) + [t.job_id for t in TrackedSources(self.settings, self.store).all()]
        last = history.latest_by_job(self.store, names)
        out = []
        for name in names:
            job = stored.get(name)
            out.append({
                "id": name,
                "schedule": schedule_text(job.trigger) if job is not None else None,
                "next_run_time": job.next_run_time if job is not None else None,
                "paused": job is not None and job.next_run_time is None,
                "queued": [j.id for j in stored.values() if j.args and j.args[0] == name and j.id != name],
                "running": is_busy(self.settings, lock_of(name)) if name != "sync" else None,
                "options": {k: getattr(job, k) for k in ("max_instances", "coalesce", "misfire_grace_time")} if job else None,
                "last_run": last.get(name),
            })
        return out

    def job(self, job_id: str) -> Job:
        job = self._sched().get_job(job_id)
        if job is None:
            raise NotFound(f"no scheduled job {job_id!r}; scheduled: {', '.join(j.id for j in self._sched().get_jobs()) or 'none'}")
        return job

    def pause(self, job_id: str | None = None) -> list[str]:
        """Pause one scheduled job, or every one: it keeps its schedule and runs again when resumed."""
        sched = self._sched()
        ids = [job_id] if job_id else sorted(j.id for j in sched.get_jobs() if _is_scheduled_id(j.id))
        for i in ids:
            self.job(i)
            sched.pause_job(i)
        return ids

    def resume(self, job_id: str | None = None) -> list[str]:
        sched = self._sched()
        ids = [job_id] if job_id else sorted(j.id for j in sched.get_jobs() if _is_scheduled_id(j.id))
        for i in ids:
            self.job(i)
            sched.resume_job(i)
        return ids

    # --- running -----------------------------------------------------------------------------------

    def run_now(self, name: str) -> dict[str, Any]:
        """Start job ``name`` now, in the background of this process (the API's "run")."""
        if name not in self._runnable():
            raise NotFound(f"no job named {name!r}; jobs: {', '.join(self._runnable())}")
        if name != "sync" and is_busy(self.settings, lock_of(name)):
            raise Conflict(f"{name} is running now; `GET /v1/jobs/runs` shows its progress")
        if self.mode == "running":
            self._add_once(f"now:{name}", name)
            where = "scheduler"
        else:
            if self._context is None:
                raise InvalidInput("jobs cannot run here: run `lorebase jobs run NAME` instead")
            threading.Thread(target=self.execute, args=(name,), name=f"lorebase-job-{name}", daemon=True).start()
            where = "thread"
        return {"object": "job.run", "job": name, "status": "started", "via": where}

    def enqueue(self, name: str) -> None:
        """Queue a one-off run of ``name`` (the retrain chain after a sync found it due)."""
        self._add_once(name, name)

    def _add_once(self, job_id: str, name: str) -> None:
        sched = self._sched()
        sched.add_job(run_scheduled, "date", run_date=datetime.now(sched.timezone), args=[name], id=job_id, name=job_id,
                      replace_existing=True, **self._job_options())

    def _runnable(self) -> list[str]:
        return list(FIXED_JOBS) + [t.job_id for t in TrackedSources(self.settings, self.store).all()]

    def execute(self, name: str) -> RunSummary | None:
        """Run job ``name`` in the calling (worker) thread; failures are in its JobRun rows and the log."""
        assert self._context is not None
        try:
            ctx = self._context()
            runner = JobRunner(ctx, enqueue=self.enqueue if self.mode == "running" else None, sleep=self._sleep)
            summary = runner.run(name)
        except _Stopping:
            log.info("job %s stopped: the scheduler is shutting down", name)
            return None
        except Exception:
            log.exception("job %s failed", name)
            return None
        for step in summary.steps:
            if step.status == "failed":
                log.error("job %s: step %s failed after %d attempts: %s", name, step.job, step.attempts, step.error)
        log.info("job %s done: %s", name, "; ".join(f"{s.job} {s.status} ({brief(s.counts)})" for s in summary.steps) or
                 "; ".join(summary.notes) or "nothing to do")
        return summary

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopping


# --- inside `lorebase serve` ----------------------------------------------------------------------------


async def start_in_server(settings: Settings, services: Services) -> SchedulerService:
    """The server's scheduler service: running jobs when scheduler.enabled (else control only,
    opened when the API first asks), with the server's services and its generator."""
    ctx = JobContext.of(services, loop=asyncio.get_running_loop())
    service = SchedulerService(settings, services.store, context=lambda: ctx)
    if settings.scheduler.enabled:
        try:
            await asyncio.to_thread(service.start)
        except Conflict as e:  # `lorebase scheduler run` has it: this server only controls
            log.error("the scheduler does not run in this server: %s", e)
    return service


async def stop_in_server(service: SchedulerService) -> None:
    await asyncio.to_thread(service.shutdown, False)


# --- on its own (`lorebase scheduler run`) ---------------------------------------------------------------


def lazy_context(settings: Settings, store: Store, *, progress: bool = False) -> Callable[[], JobContext]:
    """Jobs on ``store``, with the services (embedder, index) built when a step first needs them."""
    built: list[Services] = []
    lock = threading.Lock()

    def services() -> Services:
        with lock:
            if not built:
                from lorebase.services import Services

                built.append(Services.build(settings, progress=progress))
            return built[0]

    ctx = JobContext(settings, store, services, progress=progress)
    return lambda: ctx
