"""The job runner without models: retries with backoff, permanent failures, locks held by another
process, rows left "running" by a killed one, and the decisions that chain the steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lorebase.errors import InvalidInput, NotFound
from lorebase.scheduler import history
from lorebase.scheduler.changes import LISTING_CURSOR, listing_of
from lorebase.scheduler.jobs import JobContext, pending_adapter, remove_leftovers, retrain_check
from lorebase.scheduler.pipeline import JobRunner
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.locks import JobLock, is_busy, lock_path
from lorebase.store.models import AdapterVersion, JobRun, QAPair, SyncCursor, utcnow
from tests.scheduler.conftest import Corpus, no_services, scheduler_settings


def _rows(store: Store, job: str) -> list[JobRun]:
    with store.session() as s:
        rows = list(s.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))
        s.expunge_all()
    return rows


def _ctx(tmp_path: Path, sources: list[dict[str, object]], **scheduler: object) -> JobContext:
    settings = scheduler_settings(tmp_path / "home", sources, scheduler=scheduler)
    settings.ensure_home()
    return JobContext(settings, Store(settings.db_url), no_services)


def test_a_failing_step_records_each_attempt_and_retries_with_backoff(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, [], max_attempts=4, backoff_s=0.05, backoff_max_s=0.08)
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        time.sleep(s)

    calls = []

    def flaky() -> dict[str, int]:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"flaky {len(calls)}")
        return {"done": len(calls)}

    out = JobRunner(ctx, sleep=sleep).step("probe", flaky)
    assert out.status == "ok" and out.attempts == 3 and out.counts == {"done": 3}
    assert waits == [0.05, 0.08], "doubling from backoff_s, capped at backoff_max_s"
    rows = _rows(ctx.store, "probe")
    assert [(r.attempt, r.status, r.error) for r in rows] == [
        (1, "failed", "RuntimeError: flaky 1"), (2, "failed", "RuntimeError: flaky 2"), (3, "ok", None)]
    assert rows[2].counts == {"done": 3}
    gap = rows[1].started_at - rows[0].finished_at
    assert gap >= timedelta(seconds=0.05), "the second attempt waited for the backoff"


def test_a_permanent_error_is_recorded_once_and_not_retried(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, [], max_attempts=5)

    def bad() -> dict[str, int]:
        raise InvalidInput("the test split has no usable QA pairs")

    out = JobRunner(ctx, sleep=lambda s: None).step("evaluate", bad)
    assert out.status == "failed" and out.attempts == 1
    assert [(r.status, r.error) for r in _rows(ctx.store, "evaluate")] == [("failed", "the test split has no usable QA pairs")]


def test_a_source_that_cannot_be_fetched_fails_after_every_attempt_and_others_go_on(tmp_path: Path, corpus: Corpus) -> None:
    sources = [{"name": "gone", "spec": f"file://{tmp_path}/no-such-repo.git", "interval_s": 60}, corpus.sources()[1]]
    ctx = _ctx(tmp_path, sources, max_attempts=3, backoff_s=0.01)
    with ctx.store.session() as s:  # the lecture folder is unchanged since its last ingest
        s.add(SyncCursor(name=LISTING_CURSOR + "lectures", value=json.dumps(listing_of(corpus.lectures))))
    summary = JobRunner(ctx, sleep=lambda s: None).run("sync")
    assert not summary.ok
    rows = _rows(ctx.store, "sync:gone")
    assert [(r.attempt, r.status) for r in rows] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert all("git clone failed" in (r.error or "") for r in rows), rows[0].error
    assert _rows(ctx.store, "ingest:gone") == []
    assert [(r.status, r.counts["changed"]) for r in _rows(ctx.store, "sync:lectures")] == [("ok", False)]


def test_unknown_jobs_are_not_found(light_ctx: JobContext) -> None:
    with pytest.raises(NotFound, match="jobs: sync, qa, retrain, eval, tune_embedder, sync:calc, sync:lectures"):
        JobRunner(light_ctx).run("nope")
    with pytest.raises(NotFound, match="no tracked source named 'nope'"):
        JobRunner(light_ctx).run("sync:nope")


HOLDER = """
import sys, time
from lorebase.scheduler import history
from lorebase.scheduler.changes import LISTING_CURSOR, listing_of
from lorebase.store.locks import JobLock
from lorebase.settings import load_settings
from lorebase.store import Store
settings = load_settings(home=sys.argv[1])
lock = JobLock(settings, "sync:calc")
assert lock.acquire()
history.start(Store(settings.db_url), "ingest:calc")  # then the process dies mid-ingest
print("holding", flush=True)
time.sleep(120)
"""


def test_a_lock_held_by_another_process_skips_the_job_and_a_killed_holder_leaves_rows_marked_interrupted(
    light_ctx: JobContext, corpus: Corpus
) -> None:
    settings = light_ctx.settings
    with light_ctx.store.session() as s:  # calc unchanged since its last ingest: the run needs no services
        s.add(SyncCursor(name="git:calc:main", value=corpus.repo.head()))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(settings.home)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert is_busy(settings, "sync:calc") and lock_path(settings, "sync:calc").read_text().strip() == str(holder.pid)
        summary = JobRunner(light_ctx).run("sync:calc")
        assert [(s.job, s.status) for s in summary.steps] == [("sync:calc", "skipped")]
        assert [r.status for r in _rows(light_ctx.store, "ingest:calc")] == ["running"], "a live holder's row is left alone"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert not is_busy(settings, "sync:calc"), "the kernel dropped the dead process's lock"
    summary = JobRunner(light_ctx).run("sync:calc")
    assert [(s.job, s.status) for s in summary.steps] == [("sync:calc", "ok")]
    row = _rows(light_ctx.store, "ingest:calc")[0]
    assert row.status == "interrupted" and row.finished_at is not None and row.error == history.INTERRUPTED
    skipped = _rows(light_ctx.store, "sync:calc")[0]
    assert skipped.status == "skipped" and "another process" in (skipped.error or "")


def test_locks_exclude_each_other_and_wait_when_asked(home_settings: Settings) -> None:
    first = JobLock(home_settings, "qa")
    assert first.acquire()
    assert not JobLock(home_settings, "qa").acquire()
    assert JobLock(home_settings, "retrain").acquire(), "other kinds are independent"
    first.release()
    assert JobLock(home_settings, "qa").acquire()


def _pair(store: Store, *, method: str = "template", validated: bool = True, retired: bool = False) -> None:
    with store.session() as s:
        s.add(QAPair(question="q?", answer="a [S1]", method=method, validated=validated, split="train", question_hash="h",
                     retired_at=utcnow() if retired else None))


def test_retraining_is_due_once_enough_validated_pairs_are_newer_than_the_last_training(light_ctx: JobContext) -> None:
    ctx = light_ctx.__class__(
        light_ctx.settings.model_copy(update={"scheduler": light_ctx.settings.scheduler.model_copy(update={"retrain_min_pairs": 3})}),
        light_ctx.store, no_services)
    store = ctx.store
    _pair(store)
    _pair(store, validated=False)
    _pair(store, retired=True)
    check = retrain_check(ctx)
    assert (check.new_pairs, check.due, check.since) == (1, False, None)
    _pair(store, method="feedback")
    _pair(store, method="feedback")
    check = retrain_check(ctx)
    assert (check.new_pairs, check.feedback_pairs, check.due) == (3, 2, True)

    run_id = history.start(store, "retrain")
    history.finish(store, run_id, "ok", {"adapter": "auto-1"})
    check = retrain_check(ctx)
    assert check.new_pairs == 0 and check.since is not None, "pairs made before the training began are in it"
    _pair(store)
    assert retrain_check(ctx).new_pairs == 1


def test_an_adapter_left_half_way_is_taken_up_where_it_stopped(light_ctx: JobContext, tmp_path: Path) -> None:
    store = light_ctx.store
    assert pending_adapter(light_ctx) is None
    run_id = history.start(store, "retrain")
    history.finish(store, run_id, "ok", {"adapter": "auto-1"})
    with store.session() as s:
        s.add(AdapterVersion(name="auto-1", path=str(tmp_path), base_model="m", data_hash="d", status="candidate"))
    pending = pending_adapter(light_ctx)
    assert pending is not None and (pending.adapter, pending.next_step) == ("auto-1", "evaluate")

    history.finish(store, history.start(store, "evaluate"), "interrupted")  # killed mid-gate: taken up again
    assert pending_adapter(light_ctx) is not None
    with store.session() as s:
        row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == "auto-1"))
        assert row is not None
        row.metrics = {"gate": {"decision": {"passed": True, "reasons": []}}}
    pending = pending_adapter(light_ctx)
    assert pending is not None and pending.next_step == "promote"

    history.finish(store, history.start(store, "promote"), "failed", error="boom")  # failed for good: left alone
    assert pending_adapter(light_ctx) is None


def test_qa_runs_only_after_an_ingest_changed_something(light_ctx: JobContext) -> None:
    runner = JobRunner(light_ctx)
    store = light_ctx.store
    assert not runner._qa_due()
    history.finish(store, history.start(store, "ingest:calc"), "ok", {"added": 0, "updated": 0, "removed": 0})
    assert not runner._qa_due()
    history.finish(store, history.start(store, "ingest:calc"), "ok", {"added": 1})
    assert runner._qa_due()
    history.finish(store, history.start(store, "qa"), "failed", error="x")
    assert runner._qa_due(), "a failed QA run does not count"
    history.finish(store, history.start(store, "qa"), "ok", {})
    assert not runner._qa_due()
    history.finish(store, history.start(store, "ingest:lectures"), "ok", {"removed": 2})
    assert runner._qa_due()


def test_what_a_killed_training_leaves_is_removed_and_nothing_else(light_ctx: JobContext, tmp_path: Path) -> None:
    root = light_ctx.settings.adapters_dir
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f".partial-auto-1-{dead.pid}", f".partial-auto-2-{os.getppid()}", "auto-orphan", "auto-kept", "lora-by-hand"):
        (root / name).mkdir(parents=True)
    with light_ctx.store.session() as s:
        s.add(AdapterVersion(name="auto-kept", path=str(root / "auto-kept"), base_model="m", data_hash="d"))
    assert remove_leftovers(light_ctx) == 2
    assert sorted(p.name for p in root.iterdir()) == [f".partial-auto-2-{os.getppid()}", "auto-kept", "lora-by-hand"]
