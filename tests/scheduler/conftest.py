"""Real parts for the scheduler's tests: git repositories made with the git CLI, a folder of WebVTT
lectures, the demo GitHub export, and settings that track them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lorebase.scheduler.jobs import JobContext
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from tests.conftest import REPO_ROOT
from tests.ingest.gitrepo_helpers import TempRepo

ISSUES = REPO_ROOT / "datasets" / "github" / "lorebase-issues.json"

OPS_PY = '''"""Small arithmetic helpers."""


def add_numbers(a: int, b: int) -> int:
    """Add two integers and return their sum.

    The report builder calls it for every row."""
    return a + b
'''

README = """# Calc

A tiny calculator library used by the report builder.

## Install the tool

Run pip install calc inside a fresh virtual environment. The package needs Python 3.11 or newer.
"""

LEDGER_PY = '''"""A running balance."""


class Ledger:
    """Keep a running balance of deposits and withdrawals."""

    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> int:
        """Add the amount to the balance and return the new balance."""
        self.balance += amount
        return self.balance
'''


def vtt(*lines: str) -> str:
    """A WebVTT transcript with one ten-second cue per line."""
    cues = [f"00:00:{10 * i:02d}.000 --> 00:00:{10 * i + 9:02d}.000\n{line}\n" for i, line in enumerate(lines)]
    return "WEBVTT\n\n" + "\n".join(cues)


LECTURE_1 = vtt("Today we study the job scheduler of our course project and how it recovers from failures.",
                "A failed job is retried three times with exponential backoff, starting at thirty seconds between attempts.")
LECTURE_2 = vtt("Gradient descent walks downhill on the loss surface, one small step at a time.",
                "The learning rate decides how long each of those steps is, and too large a rate makes the loss diverge.")


@dataclass
class Corpus:
    root: Path
    repo: TempRepo
    lectures: Path

    def sources(self, interval_s: float = 3600.0) -> list[dict[str, Any]]:
        return [
            {"name": "calc", "spec": f"file://{self.repo.path}", "branch": "main", "interval_s": interval_s},
            {"name": "lectures", "spec": str(self.lectures), "interval_s": interval_s},
        ]


def make_corpus(root: Path) -> Corpus:
    repo = TempRepo(root / "calc")
    repo.write("calc/ops.py", OPS_PY)
    repo.commit("Add arithmetic helpers", date="2024-03-01T10:00:00+00:00")
    repo.write("README.md", README)
    repo.commit("Document installation", date="2024-03-02T10:00:00+00:00")
    lectures = root / "lectures"
    lectures.mkdir()
    (lectures / "scheduler.vtt").write_text(LECTURE_1, encoding="utf-8")
    return Corpus(root, repo, lectures)


def scheduler_settings(home: Path, sources: list[dict[str, Any]], **overrides: Any) -> Settings:
    """Settings for a test home; ``scheduler`` keys in overrides merge into the tracked sources."""
    scheduler: dict[str, Any] = {"sources": sources, "backoff_s": 0.01, "backoff_max_s": 0.05, "eval_cron": None,
                                 "retrain_min_pairs": 1_000_000}
    scheduler.update(overrides.pop("scheduler", {}))
    return load_settings(home=home, scheduler=scheduler, **overrides)


def no_services() -> Any:
    raise AssertionError("this step should not need the services (embedder, index)")


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def home_settings(tmp_path: Path, corpus: Corpus) -> Settings:
    s = scheduler_settings(tmp_path / "home", corpus.sources())
    s.ensure_home()
    return s


@pytest.fixture
def light_store(home_settings: Settings) -> Iterator[Store]:
    st = Store(home_settings.db_url)
    yield st
    st.close()


@pytest.fixture
def light_ctx(home_settings: Settings, light_store: Store) -> JobContext:
    """A job context whose steps may use the store but not the services."""
    return JobContext(home_settings, light_store, no_services)
