"""A small real corpus for the fine-tuning tests: a git repository made here with the git CLI, a
WebVTT lecture, and the demo GitHub export, ingested by the real service into a data home. It is
built once per session; each test gets its own copy of that home (database and index)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from tests.conftest import REPO_ROOT
from tests.ingest.gitrepo_helpers import TempRepo

OPS_PY = '''"""Small arithmetic helpers."""


def add_numbers(a: int, b: int) -> int:
    """Add two integers and return their sum.

    The report builder calls it for every row."""
    return a + b


class Ledger:
    """Keep a running balance of deposits and withdrawals."""

    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> int:
        """Add the amount to the balance and return the new balance."""
        self.balance += amount
        return self.balance
'''

README = """# Calc

A tiny calculator library used by the report builder.

## Install the tool

Run pip install calc inside a fresh virtual environment. The package needs Python 3.11 or newer and has no other dependencies.

## Design notes

Every helper is a pure function except the ledger, which keeps its balance in memory between calls.
"""

VTT = """WEBVTT

00:00:00.000 --> 00:00:08.000
Today we study the job scheduler of our course project and how it recovers from failures.

00:00:08.000 --> 00:00:19.000
A failed job is retried three times with exponential backoff, starting at thirty seconds between attempts.

00:00:19.000 --> 00:00:31.000
After the third failure the scheduler writes a dead letter record so that an operator can inspect the payload.
"""

ISSUES = REPO_ROOT / "datasets" / "github" / "lorebase-issues.json"


@dataclass
class Corpus:
    home: Path
    repo: Path
    lectures: Path
    vtt: Path
    settings: Settings


def corpus_settings(home: Path, tiny_llama: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "home": home,
        "models": {"generator": str(tiny_llama)},
        "generation": {"backend": "transformers", "max_new_tokens": 16, "max_model_len": 2048},
        "finetune": {"max_length": 1024, "context_k": 3, "batch_size": 2, "grad_accum": 1, "logging_steps": 1,
                     "gate_max_examples": 4, "gate_max_new_tokens": 8},
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return load_settings(**base)


def ingest(settings: Settings, specs: list[str]) -> None:
    svc = Services.build(settings)
    try:
        report = svc.ingest.ingest(specs)
        assert report.ok, report.errors
    finally:
        svc.store.close()


@pytest.fixture(scope="session")
def corpus_template(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Corpus:
    root = tmp_path_factory.mktemp("ft-corpus")
    repo = TempRepo(root / "calc")
    repo.write("calc/ops.py", OPS_PY)
    repo.commit("Add arithmetic helpers\n\nThe report builder needed one tested place to add totals, so the helpers live in one module.",
                date="2024-03-01T10:00:00+00:00")
    repo.write("README.md", README)
    repo.commit("Document installation", date="2024-03-02T10:00:00+00:00")
    lectures = root / "lectures"
    lectures.mkdir()
    vtt = lectures / "scheduler.vtt"
    vtt.write_text(VTT, encoding="utf-8")
    settings = corpus_settings(root / "home", tiny_llama)
    ingest(settings, [str(repo.path), str(lectures), str(ISSUES)])
    return Corpus(root / "home", repo.path, lectures, vtt, settings)


@pytest.fixture
def corpus(corpus_template: Corpus, tmp_path: Path, tiny_llama: Path) -> Iterator[Corpus]:
    """A private copy of the ingested home (and of the lecture folder, which some tests change)."""
    home = tmp_path / "home"
    shutil.copytree(corpus_template.home, home)
    lectures = tmp_path / "lectures"
    shutil.copytree(corpus_template.lectures, lectures)
    yield Corpus(home, corpus_template.repo, lectures, lectures / "scheduler.vtt", corpus_settings(home, tiny_llama))


@pytest.fixture
def services(corpus: Corpus) -> Iterator[Services]:
    svc = Services.build(corpus.settings)
    yield svc
    svc.store.close()
