"""Progress of long work without a terminal: a log line every interval, with the count and rate."""

from __future__ import annotations

import logging

import pytest

from lorebase.progress import Progress


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
