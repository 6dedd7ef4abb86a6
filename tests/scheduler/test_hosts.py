"""Jobs across hosts, on a real PostgreSQL server: job locks are advisory locks that every process
sharing the database sees, and of two `lorebase scheduler run` processes (each with its own data
home, as on two hosts) exactly one runs the jobs; SIGKILL it and the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from lorebase.scheduler.changes import probe, save_listing
from lorebase.scheduler.jobs import JobContext
from lorebase.scheduler.pipeline import JobRunner
from lorebase.scheduler.tracked import TrackedSources
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import Store
from lorebase.store.locks import JobLock, is_busy, lock_path
from lorebase.store.models import JobRun, SyncCursor
from tests.conftest import REPO_ROOT
from tests.scheduler.conftest import Corpus, no_services, scheduler_settings

HOLDER = """
import sys, time
from lorebase.store.locks import JobLock
from lorebase.settings import load_settings
lock = JobLock(load_settings(home=sys.argv[1], database_url=sys.argv[2]), "sync:calc")
assert lock.acquire()
print("holding", flush=True)
time.sleep(120)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _sync_runs(store: Store, job: str) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(JobRun.status).where(JobRun.job == job).order_by(JobRun.id)))


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _prepared(corpus: Corpus, settings: Settings, store: Store) -> None:
    """Both sources ingested already (cursor at the head, listing saved): a sync needs no models."""
    with store.session() as s:
        s.add(SyncCursor(name="git:calc:main", value=corpus.repo.head()))
    save_listing(store, probe(settings.scheduler.sources[1], settings, store))


def test_job_locks_span_hosts_and_die_with_their_holder(tmp_path: Path, corpus: Corpus, postgres_url: str) -> None:
    host_a = scheduler_settings(tmp_path / "a", corpus.sources(), database_url=postgres_url)
    host_b = scheduler_settings(tmp_path / "b", corpus.sources(), database_url=postgres_url)
    store = Store(postgres_url)
    _prepared(corpus, host_b, store)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(host_a.home), postgres_url], stdout=subprocess.PIPE,
                              text=True, cwd=REPO_ROOT, env=_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert is_busy(host_b, "sync:calc") and not is_busy(host_b, "sync:lectures")
        assert not JobLock(host_b, "sync:calc").acquire()
        summary = JobRunner(JobContext(host_b, store, no_services)).run("sync:calc")
        assert [(s.job, s.status) for s in summary.steps] == [("sync:calc", "skipped")]
        assert not lock_path(host_b, "sync:calc").exists()  # an advisory lock, not a file in the home
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    _wait_for(lambda: not is_busy(host_b, "sync:calc"), "PostgreSQL to end the killed holder's session")
    summary = JobRunner(JobContext(host_b, store, no_services)).run("sync:calc")
    assert [(s.job, s.status) for s in summary.steps] == [("sync:calc", "ok")]
    with JobLock(host_b, "qa") as got:  # taken on host b, seen taken from host a
        assert got and is_busy(host_a, "qa") and not JobLock(host_a, "qa").acquire()
    assert not is_busy(host_a, "qa")
    store.close()


def _host(root: Path, corpus: Corpus, db_url: str) -> Path:
    root.mkdir(parents=True)
    calc = corpus.sources(interval_s=3600.0)[0]  # due at once when first scheduled, then in an hour
    (root / "lorebase.yaml").write_text(yaml.safe_dump({
        "home": str(root / "home"), "database_url": db_url,
        "scheduler": {"sources": [calc], "backoff_s": 0.01, "eval_cron": None, "poll_s": 1.0, "standby_poll_s": 0.5,
                      "retrain_min_pairs": 1_000_000},
    }))
    return root


def _scheduler(root: Path) -> subprocess.Popen[bytes]:
    out = open(root / "out.log", "wb")  # noqa: SIM115 - the child writes to it
    return subprocess.Popen([sys.executable, "-m", "lorebase", "scheduler", "run"], cwd=root, env=_env(),
                            stdout=out, stderr=subprocess.STDOUT)


def _said(root: Path, text: str) -> bool:
    return text in (root / "out.log").read_text(errors="replace")


@pytest.mark.slow
def test_two_schedulers_on_one_database_run_a_sync_once_and_the_survivor_takes_over(
    tmp_path: Path, corpus: Corpus, postgres_url: str
) -> None:
    a, b = _host(tmp_path / "host-a", corpus, postgres_url), _host(tmp_path / "host-b", corpus, postgres_url)
    settings = scheduler_settings(a / "home", corpus.sources(), database_url=postgres_url)
    store = Store(postgres_url)
    _prepared(corpus, settings, store)
    procs = {"a": _scheduler(a)}
    try:
        _wait_for(lambda: _said(a, "scheduler running for"), "the first scheduler to start")
        procs["b"] = _scheduler(b)
        _wait_for(lambda: _said(b, "standing by: a scheduler runs for this database already"), "the second to stand by")
        _wait_for(lambda: _sync_runs(store, "sync:calc") == ["ok"], "the scheduled sync")
        time.sleep(3)  # several polls of both: the sync stays one run
        assert _sync_runs(store, "sync:calc") == ["ok"]
        assert not _said(b, "scheduler running for")

        procs["a"].send_signal(signal.SIGKILL)  # the running scheduler's host dies
        procs["a"].wait()
        _wait_for(lambda: _said(b, "scheduler running for"), "the standby to take over")
        as_hosts = scheduler_settings(b / "home", corpus.sources()[:1], database_url=postgres_url)  # what they track
        TrackedSources(as_hosts, store).add(TrackedSourceSettings(name="lectures", spec=str(corpus.lectures),
                                                                  interval_s=3600.0))
        _wait_for(lambda: _sync_runs(store, "sync:lectures") == ["ok"], "the new leader to sync a newly tracked source")
        assert _sync_runs(store, "sync:calc") == ["ok"], "calc's next run is an hour away: not run again"
        procs["b"].send_signal(signal.SIGTERM)
        assert procs["b"].wait(timeout=60) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        store.close()
