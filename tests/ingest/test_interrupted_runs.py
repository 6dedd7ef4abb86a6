"""Ingest runs whose process dies: a real child process killed with SIGKILL mid-run leaves its row
"running"; the next start marks it "interrupted" at the time it was last seen, and never a run
whose process is still alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from lorebase.ingest.records import ChunkDraft, ReadContext, SourceDraft, Upsert
from lorebase.ingest.service import IngestService, run_lock_name
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.locks import lock_path
from lorebase.store.models import IngestRun, Source, SourceKind
from tests.conftest import REPO_ROOT

# The child: one source stored, then it stalls mid-run until killed.
CHILD = r"""
import sys, time
from pathlib import Path
from lorebase.ingest.records import ChunkDraft, SourceDraft, Upsert
from lorebase.ingest.service import IngestService
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import SourceKind

home = Path(sys.argv[1])

class Stalls:
    label = "a reader that stalls"

    def read(self, ctx):
        yield Upsert(SourceDraft(key="transcript:first", kind=SourceKind.transcript, title="First", text="stored",
                                 chunks=[ChunkDraft("stored")]))
        yield Upsert(SourceDraft(key="transcript:second", kind=SourceKind.transcript, title="Second", text="stored too",
                                 chunks=[ChunkDraft("stored too")]))
        (home / "stalled").write_text("yes")
        time.sleep(600)

settings = load_settings(home=home)
IngestService(settings, Store(settings.db_url), progress=False).run([Stalls()], inputs=["stalls"])
"""


def draft(key: str) -> SourceDraft:
    return SourceDraft(key=key, kind=SourceKind.transcript, title=key, text="t", chunks=[ChunkDraft("t")])


class Listed:
    label = "listed"

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def read(self, ctx: ReadContext) -> Iterator[Upsert]:
        for k in self.keys:
            yield Upsert(draft(k))


def run_row(store: Store, run_id: int) -> IngestRun:
    with store.session() as s:
        row = s.get(IngestRun, run_id)
        assert row is not None
        return row


def start_stalled_child(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(settings.home)], env=env)
    deadline = time.monotonic() + 120
    while not (settings.home / "stalled").exists():
        assert child.poll() is None, "the child ingest ended before it stalled"
        assert time.monotonic() < deadline, "the child ingest did not reach its stall"
        time.sleep(0.05)
    return child


def test_a_run_killed_with_sigkill_is_marked_interrupted_on_the_next_start(settings: Settings, store: Store) -> None:
    child = start_stalled_child(settings)
    try:
        with store.session() as s:
            [row] = list(s.scalars(select(IngestRun)))
        run_id = row.id
        assert row.status == "running" and row.last_seen_at is not None
        service = IngestService(settings, store, progress=False)
        assert service.mark_interrupted() == []  # alive: left alone
        assert run_row(store, run_id).status == "running"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert run_row(store, run_id).status == "running"  # the lie the issue reported, until the next start

    assert service.mark_interrupted() == [run_id]
    row = run_row(store, run_id)
    assert row.status == "interrupted"
    assert row.finished_at == row.last_seen_at and row.last_seen_at >= row.started_at
    assert "ended before it finished" in row.errors[-1]["reason"] and "last seen" in row.errors[-1]["reason"]
    assert not lock_path(settings, run_lock_name(run_id)).exists()  # no file left behind
    with store.session() as s:  # what the killed run stored before it stalled is kept, whole
        assert set(s.scalars(select(Source.key))) == {"transcript:first", "transcript:second"}
    assert service.mark_interrupted() == []  # once only

    report = service.run([Listed("transcript:third")], inputs=["listed"])  # the next run is not disturbed
    assert report.ok and run_row(store, report.run_id).status == "ok"
    assert run_row(store, run_id).status == "interrupted"


def test_the_next_run_marks_it_even_without_a_restart_of_this_process(settings: Settings, store: Store) -> None:
    child = start_stalled_child(settings)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    service = IngestService(settings, store, progress=False)
    report = service.run([Listed("transcript:later")], inputs=["listed"])  # open_run looks first
    assert report.ok
    with store.session() as s:
        statuses = sorted(s.scalars(select(IngestRun.status)))
    assert statuses == ["interrupted", "ok"]


def test_runs_of_this_process_are_never_marked_and_a_crash_is_recorded(settings: Settings, store: Store) -> None:
    service = IngestService(settings, store, progress=False)
    run_id = service.open_run(["held"])
    assert service.mark_interrupted() == [] and IngestService(settings, store).mark_interrupted() == []
    assert service.run([Listed("transcript:x")], inputs=["held"], run_id=run_id).ok
    assert not lock_path(settings, run_lock_name(run_id)).exists()

    class Broken:
        label = "broken"

        def read(self, ctx: ReadContext) -> Iterator[Upsert]:
            yield Upsert(draft("transcript:y"))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        service.run([Broken()], inputs=["broken"])
    with store.session() as s:
        last = s.scalar(select(IngestRun).order_by(IngestRun.id.desc()).limit(1))
    assert last is not None and last.id != run_id
    assert last.status == "interrupted" and last.finished_at is not None and "KeyboardInterrupt" in last.errors[-1]["reason"]
