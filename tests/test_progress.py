"""Progress of long work without a terminal: a log line every interval, with the count and rate."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from lorebase import progress
from lorebase.progress import Progress
from lorebase.services import Services
from lorebase.settings import Settings
from tests.ingest.gitrepo_helpers import TempRepo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_it_logs_the_count_every_interval_and_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with Progress("embedding", "chunks", total=3000, log=log, every_s=30, clock=clock) as p:
            p.update(500)  # at once: too soon for a line
            clock.now += 31
            p.update(1000)  # 1,500 done after 31 s
            clock.now += 10
            p.update(1000)  # 10 s after the last line: quiet
            clock.now += 9
    assert [r.getMessage() for r in caplog.records] == [
        "embedding: 1,500 of 3,000 chunks (48.4/s)",
        "embedding: 2,500 of 3,000 chunks (50.0/s)",  # closing, since it had spoken: where it stopped
    ]
    assert p.done == 2500


def test_short_work_says_nothing_and_a_terminal_gets_a_bar_not_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        with Progress("flask", "sources", log=log, clock=clock) as p:
            p.update(3)
            clock.now += 5
        with Progress("embedding", "chunks", total=10, bar=True, log=log, clock=clock) as bar:
            clock.now += 100
            bar.update(10)
    assert caplog.records == [] and p.done == 3 and bar.done == 10


def test_an_ingest_without_a_terminal_logs_its_sources_and_its_embedding(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real ingest and index sync, as `lorebase ingest` runs them with output piped: the lines come
    from the services, not from a bar nobody sees."""
    monkeypatch.setattr(progress, "EVERY_S", 0.0)  # a line at every step, so a tiny corpus shows them
    repo = TempRepo(tmp_path / "calc")
    repo.write("calc/ops.py", "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n")
    repo.write("README.md", "# calc\n\nAdds and multiplies.\n")
    repo.commit("Add calc")
    svc = Services.build(settings, progress=False)
    try:
        with caplog.at_level(logging.INFO):
            report = svc.ingest.ingest([str(repo.path)])
            svc.indexer.sync()
    finally:
        svc.store.close()
    assert report.failed == 0 and report.chunks_added > 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(re.fullmatch(r".+: \d+ sources \(.+/s\)", m) for m in lines), lines
    embedded = [m for m in lines if m.startswith("embedding: ")]
    assert embedded and embedded[-1].startswith(f"embedding: {report.chunks_added} of {report.chunks_added} chunks"), embedded
