"""The public dev sets are never trained on: the answer benchmark's questions (SWE-QA, QMSum,
unanswerable) must not reach a training example, or the benchmark would measure memory.

A pair can carry such a question only by way of a person: a feedback correction given while the
benchmark ran through the API, or a question written into the corpus. Such pairs are left out of
training (and counted), and the built examples are checked once more before a run starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import lorebase
from lorebase.errors import InvalidInput
from lorebase.finetune.qa_drafts import question_hash
from lorebase.settings import Settings

_CHECKOUT = Path(lorebase.__file__).resolve().parents[1]


def dev_set_paths(settings: Settings) -> list[Path]:
    """The configured dev sets that exist (a relative path is taken from the working folder, else
    from the source checkout); an installed package without the data sets has none."""
    out: list[Path] = []
    for p in settings.finetune.public_dev_sets:
        for cand in ([p] if p.is_absolute() else [p, _CHECKOUT / p]):
            if cand.is_file():
                out.append(cand)
                break
    return out


def public_questions(paths: Iterable[Path]) -> set[str]:
    """Hashes (case and spacing ignored) of every question in the JSONL files."""
    hashes: set[str] = set()
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                hashes.add(question_hash(str(json.loads(line)["question"])))
            except (ValueError, KeyError, TypeError) as e:
                raise InvalidInput(f"{path}:{n}: not a question object ({e})") from e
    return hashes


class PublicGuard:
    """Which questions may be trained on."""

    def __init__(self, settings: Settings) -> None:
        self.paths = dev_set_paths(settings)
        self.hashes = public_questions(self.paths)

    def allowed(self, question: str) -> bool:
        return question_hash(question) not in self.hashes

    def check(self, questions: Iterable[str]) -> None:
        """Raise if any question is from a public dev set (the last check before training)."""
        bad = [q for q in questions if not self.allowed(q)]
        if bad:
            raise InvalidInput(f"{len(bad)} training example(s) ask a public dev-set question, e.g. {bad[0]!r}: "
                               "the answer benchmark's questions are never trained on")

    def describe(self) -> dict[str, object]:
        return {"dev_sets": [str(p) for p in self.paths], "questions": len(self.hashes)}
