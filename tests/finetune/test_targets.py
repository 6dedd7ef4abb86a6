"""Training targets checked themselves (no model needed): a sentence that copies a source's header
line, or that its cited evidence does not support, never reaches a target; mechanical fixes are
made and counted. And the public dev sets' questions are kept out of training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorebase.citations import Citation
from lorebase.errors import InvalidInput
from lorebase.eval.answers import check_answer
from lorebase.finetune.public_guard import PublicGuard
from lorebase.finetune.sft_examples import BuildStats, checked_target
from lorebase.generation.prompts import Evidence
from lorebase.settings import load_settings


def _evidence() -> list[Evidence]:
    return [
        Evidence(Citation(id="S1", source_id="c", kind="code", title="ops.py", path="calc/ops.py", start_line=4, end_line=8,
                          commit="abc1234def"),
                 'def add_numbers(a: int, b: int) -> int:\n    """Add two integers and return their sum."""\n    return a + b'),
        Evidence(Citation(id="S2", source_id="l", kind="transcript", title="Scheduler", start_time=8.0, end_time=19.0),
                 "A failed job is retried three times with exponential backoff, starting at thirty seconds between attempts."),
    ]


def test_a_supported_answer_is_kept_answer_first_with_its_citation() -> None:
    stats = BuildStats()
    t = checked_target("`add_numbers` adds two integers and returns their sum [S1].", _evidence(), 0.6, stats)
    assert t == "`add_numbers` adds two integers and returns their sum [S1]."
    assert check_answer(t, _evidence(), 0.6).verified
    assert stats.sentences_dropped == {} and stats.fixed == {}


def test_header_copying_and_unsupported_sentences_are_dropped_and_counted() -> None:
    stats = BuildStats()
    answer = ("`add_numbers` is defined in calc/ops.py:4-8@abc1234 [S1]. "  # the header line, not the evidence
              "A failed job is never retried [S2]. "  # the evidence says the opposite
              "A failed job is retried three times with exponential backoff [S2].")
    t = checked_target(answer, _evidence(), 0.6, stats)
    assert t == "A failed job is retried three times with exponential backoff [S2]."
    assert stats.sentences_dropped == {"copies a source's header line": 1,
                                       "fails the support check against its cited evidence": 1}
    assert checked_target("`add_numbers` is defined in calc/ops.py:4-8@abc1234 [S1].", _evidence(), 0.6) is None


def test_place_lead_and_wrong_citation_are_fixed_and_counted() -> None:
    stats = BuildStats()
    # "At 00:08," is the citation's job; the evidence text has no time in it.
    t = checked_target("At 00:08, a failed job is retried three times with exponential backoff [S2].", _evidence(), 0.6, stats)
    assert t == "A failed job is retried three times with exponential backoff [S2]."
    moved = checked_target("A failed job is retried three times with exponential backoff [S1].", _evidence(), 0.6, stats)
    assert moved == "A failed job is retried three times with exponential backoff [S2]."
    assert stats.fixed == {"place lead removed (the citation says where)": 1,
                           "citation moved to the source that supports the sentence": 1}
    # Every kept sentence passes the served check.
    for target in (t, moved):
        assert check_answer(target, _evidence(), 0.6).cited == ["S2"]


def test_public_dev_set_questions_are_recognised_and_a_run_that_would_train_on_one_stops(tmp_path: Path) -> None:
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"id": "q1", "question": "What does get_encodings_from_content return?"}) + "\n\n", encoding="utf-8")
    guard = PublicGuard(load_settings(home=tmp_path / "home", finetune={"public_dev_sets": [str(dev), str(tmp_path / "missing.jsonl")]}))
    assert guard.describe() == {"dev_sets": [str(dev)], "questions": 1}
    assert not guard.allowed("  what does GET_ENCODINGS_FROM_CONTENT   return? ")  # case and spacing ignored
    assert guard.allowed("What does add_numbers return?")
    with pytest.raises(InvalidInput, match="public dev-set question"):
        guard.check(["What does add_numbers return?", "What does get_encodings_from_content return?"])


def test_the_shipped_dev_sets_are_guarded_by_default(tmp_path: Path) -> None:
    guard = PublicGuard(load_settings(home=tmp_path / "home"))
    names = {Path(p).name for p in guard.describe()["dev_sets"]}  # type: ignore[union-attr]
    assert names == {"sweqa-dev.jsonl", "qmsum-dev.jsonl", "unanswerable-dev.jsonl"}
    first = json.loads(next(line for line in Path(sorted(guard.paths)[0]).read_text().splitlines() if line.strip()))
    assert not guard.allowed(first["question"])
