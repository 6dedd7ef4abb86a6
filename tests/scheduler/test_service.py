"""The APScheduler side: jobs persisted in the lorebase database with their safety options, kept
in step with the tracked sources, paused and resumed, and fired by a running scheduler."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from lorebase.errors import Conflict, NotFound
from lorebase.scheduler.jobs import JobContext
from lorebase.scheduler.service import SchedulerService, run_scheduled
from lorebase.scheduler.tracked import TrackedSources
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import (
    Store,
    chainlit_tables,  # noqa: F401  # its tables belong to the schema too
)
from lorebase.store.base import Base
from lorebase.store.models import JobRun, SyncCursor
from tests.scheduler.conftest import Corpus, no_services, scheduler_settings


@pytest.fixture
def settings(tmp_path: Path, corpus: Corpus) -> Settings:
    s = scheduler_settings(tmp_path / "home", corpus.sources(interval_s=600),
                           scheduler={"eval_cron": "30 2 * * *", "misfire_grace_s": 123})
    s.ensure_home()
    return s


@pytest.fixture
def control(settings: Settings) -> Iterator[SchedulerService]:
    store = Store(settings.db_url)
    service = SchedulerService(settings, store)
    service.open_control()
    yield service
    service.shutdown()
    store.close()


def _stored(settings: Settings) -> dict[str, dict[str, Any]]:
    """The jobs as they are in the database (APScheduler pickles each job's state into a row)."""
    store = Store(settings.db_url)
    try:
        with store.engine.connect() as c:
            rows = c.execute(text("SELECT id, job_state FROM apscheduler_jobs")).all()
    finally:
        store.close()
    return {job_id: pickle.loads(state) for job_id, state in rows}


def test_jobs_are_stored_with_one_instance_coalescing_and_the_misfire_grace(control: SchedulerService, settings: Settings) -> None:
    jobs = _stored(settings)
    assert sorted(jobs) == ["eval", "sync:calc", "sync:lectures"]
    for job_id, job in jobs.items():
        assert (job["max_instances"], job["coalesce"], job["misfire_grace_time"]) == (1, True, 123)
        assert job["func"] == "lorebase.scheduler.service:run_scheduled" and job["args"] == (job_id,)
    assert jobs["sync:calc"]["trigger"].interval == timedelta(seconds=600)
    assert (jobs["eval"]["next_run_time"].hour, jobs["eval"]["next_run_time"].minute) == (2, 30)
    first = jobs["sync:calc"]["next_run_time"]
    assert first <= datetime.now(first.tzinfo), "a newly tracked source is due at once, not an interval later"

    # Changed settings reach jobs stored by an earlier process.
    changed = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update={"misfire_grace_s": 77})})
    store = Store(settings.db_url)
    later = SchedulerService(changed, store)
    later.open_control()
    later.shutdown()
    store.close()
    assert {j["misfire_grace_time"] for j in _stored(settings).values()} == {77}


def test_the_job_table_is_the_migrations_own(control: SchedulerService) -> None:
    with control.store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"the APScheduler table and the models disagree: {diff}"


def test_pause_and_resume_keep_the_schedule_and_a_refresh_keeps_a_pause(control: SchedulerService, settings: Settings) -> None:
    assert control.pause("sync:calc") == ["sync:calc"]
    assert _stored(settings)["sync:calc"]["next_run_time"] is None
    assert {j["id"]: j["paused"] for j in control.jobs()} == {"sync": False, "qa": False, "retrain": False, "eval": False, "tune_embedder": False,
                                                           "sync:calc": True, "sync:lectures": False}

    # A new interval for a paused job: the schedule changes, the pause stays.
    faster = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(
        update={"sources": [settings.scheduler.sources[0].model_copy(update={"interval_s": 60.0}), settings.scheduler.sources[1]]})})
    refreshed = SchedulerService(faster, control.store)
    refreshed.open_control()
    job = refreshed.job("sync:calc")
    assert job.next_run_time is None and job.trigger.interval == timedelta(seconds=60)
    before = datetime.now(job.trigger.timezone)
    assert refreshed.resume("sync:calc") == ["sync:calc"]
    nxt = refreshed.job("sync:calc").next_run_time
    assert before < nxt <= before + timedelta(seconds=61)
    refreshed.shutdown()

    assert sorted(control.pause()) == ["eval", "sync:calc", "sync:lectures"]
    assert all(j["next_run_time"] is None for j in _stored(settings).values())
    control.resume()
    assert all(j["next_run_time"] is not None for j in _stored(settings).values())
    with pytest.raises(NotFound):
        control.pause("sync:nope")


def test_sources_added_and_removed_gain_and_lose_their_jobs(control: SchedulerService, settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    tracked = TrackedSources(settings, control.store)
    tracked.add(TrackedSourceSettings(name="more", spec=str(folder), cron="*/15 * * * *"))
    control.reconcile()
    assert "sync:more" in _stored(settings)
    assert [j["schedule"] for j in control.jobs() if j["id"] == "sync:more"] == ["cron */15 * * * *"]
    tracked.remove("more")
    control.reconcile()
    assert "sync:more" not in _stored(settings)


def test_a_running_scheduler_fires_stored_jobs_and_one_off_runs(tmp_path: Path, corpus: Corpus) -> None:
    settings = scheduler_settings(tmp_path / "home", corpus.sources(interval_s=1.0), scheduler={"poll_s": 1.0})
    settings.ensure_home()
    store = Store(settings.db_url)
    with store.session() as s:  # both sources unchanged since their last ingest: no step needs the services
        s.add(SyncCursor(name="git:calc:main", value=corpus.repo.head()))
    from lorebase.scheduler.changes import probe, save_listing

    save_listing(store, probe(settings.scheduler.sources[1], settings, store))
    ctx = JobContext(settings, store, no_services)
    service = SchedulerService(settings, store, context=lambda: ctx)
    service.start()
    try:
        with pytest.raises(Conflict, match="runs for .* already"):
            SchedulerService(settings, store, context=lambda: ctx).start()

        def sync_rows() -> list[tuple[str, str]]:
            with store.session() as s:
                return [(r.job, r.status) for r in s.scalars(select(JobRun).where(JobRun.job.startswith("sync:")))]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {("sync:calc", "ok"), ("sync:lectures", "ok")} <= set(sync_rows()):
            time.sleep(0.2)
        assert {("sync:calc", "ok"), ("sync:lectures", "ok")} <= set(sync_rows()), sync_rows()
        assert service.run_now("qa")["via"] == "scheduler"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with store.session() as s:
                if s.scalar(select(JobRun).where(JobRun.job == "qa")) is not None:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the one-off qa run did not start")
    finally:
        service.shutdown(wait=True)
    assert service.mode == "stopped"
    run_scheduled("sync:calc")  # no scheduler runs in this process now: logged, nothing run
    store.close()


def test_embedder_tuning_is_scheduled_only_when_its_cron_is_set(settings: Settings) -> None:
    weekly = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update={"embedder_cron": "0 4 * * sun"})})
    store = Store(settings.db_url)
    try:
        on = SchedulerService(weekly, store)
        on.open_control()
        on.shutdown()
        job = _stored(settings)["tune_embedder"]
        assert job["args"] == ("tune_embedder",) and job["next_run_time"].weekday() == 6 and job["next_run_time"].hour == 4
        off = SchedulerService(settings, store)  # embedder_cron unset again: the job goes
        off.open_control()
        off.shutdown()
        assert "tune_embedder" not in _stored(settings)
    finally:
        store.close()
