"""The gate's decision rule on hand-made metric values, and the answer metrics on hand-written answers."""

from __future__ import annotations

import numpy as np

from lorebase.citations import Citation
from lorebase.finetune.gate import decide, score
from lorebase.finetune.sft_examples import SFTExample
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence

BASE = {"rouge_l": 0.30, "semantic_similarity": 0.60, "citation_f1": 0.50, "abstention_accuracy": 0.70, "faithfulness": 0.80}


def test_promotes_when_main_metric_improves_and_nothing_falls_too_far() -> None:
    cand = {**BASE, "rouge_l": 0.35, "faithfulness": 0.79}  # faithfulness -0.01, within 0.02
    d = decide(cand, BASE, main="rouge_l", tolerance=0.02)
    assert d.passed and d.deltas["rouge_l"] == 0.05 and d.deltas["faithfulness"] == -0.01


def test_rejects_when_another_metric_falls_beyond_tolerance() -> None:
    cand = {**BASE, "rouge_l": 0.40, "abstention_accuracy": 0.60}
    d = decide(cand, BASE, main="rouge_l", tolerance=0.02)
    assert not d.passed
    assert any("abstention_accuracy fell by 0.1000" in r for r in d.reasons)


def test_rejects_when_main_metric_does_not_improve_enough() -> None:
    assert not decide(dict(BASE), BASE, main="rouge_l", tolerance=0.02).passed  # equal is not better
    better = {**BASE, "rouge_l": 0.31}
    assert decide(better, BASE, main="rouge_l", tolerance=0.02, min_gain=0.0).passed
    assert not decide(better, BASE, main="rouge_l", tolerance=0.02, min_gain=0.05).passed


def test_other_main_metric_and_missing_values() -> None:
    cand = {**BASE, "citation_f1": 0.7, "rouge_l": 0.25}
    assert decide(cand, BASE, main="citation_f1", tolerance=0.1).passed
    assert not decide(cand, BASE, main="citation_f1", tolerance=0.02).passed  # rouge_l fell 0.05
    # A metric one side could not measure is not compared; a missing main metric fails the gate.
    assert decide({**BASE, "rouge_l": 0.4, "faithfulness": None}, BASE, main="rouge_l", tolerance=0.02).passed
    assert not decide({**BASE, "rouge_l": None}, BASE, main="rouge_l", tolerance=0.02).passed


def _example(pair_id: int, reference: str, gold: list[str], abstain: bool) -> SFTExample:
    evs = [
        Evidence(Citation(id="S1", source_id="a", kind="doc", title="t", path="a.md", start_line=1, end_line=2),
                 "Retries happen three times with exponential backoff."),
        Evidence(Citation(id="S2", source_id="b", kind="doc", title="t", path="b.md", start_line=1, end_line=2),
                 "The dashboard shows the queue length."),
    ]
    return SFTExample(pair_id, "q?", [], [{"role": "assistant", "content": ""}], reference, gold, abstain, evs, [1, 2], "c", "doc")


def fake_embed(texts: list[str]) -> np.ndarray:
    """Bag-of-letters vectors: identical texts get cosine 1."""
    out = np.zeros((len(texts), 26), dtype=np.float32)
    for i, t in enumerate(texts):
        for ch in t.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def test_scores_of_hand_written_answers() -> None:
    examples = [
        _example(1, "Retries happen three times with exponential backoff.", ["S1"], False),
        _example(2, ABSTAIN_TEXT, [], True),
        _example(3, "The dashboard shows the queue length.", ["S2"], False),
    ]
    answers = [
        "Retries happen three times with exponential backoff [S1].",  # right, right citation
        ABSTAIN_TEXT,  # right to abstain
        "The dashboard shows the queue length [S1].",  # right words, wrong citation
    ]
    s = score("m", examples, answers, fake_embed, threshold=0.6)
    assert s.means["rouge_l"] == 1.0 and s.means["semantic_similarity"] == 1.0
    assert s.means["citation_f1"] == 0.5
    assert s.means["abstention_accuracy"] == 1.0
    # The proxy: answer 1 fully supported by S1; answer 3 cites S1, which lacks its words.
    assert s.counts["faithfulness"] == 2 and 0.0 < s.means["faithfulness"] < 1.0  # type: ignore[operator]

    wrong = ["Nothing here.", "Retries happen three times [S1].", ABSTAIN_TEXT]
    w = score("m", examples, wrong, fake_embed, threshold=0.6)
    # Right only on example 1 (did not abstain); answered the unanswerable, abstained on an answerable.
    assert w.means["abstention_accuracy"] == 0.3333
    assert w.means["citation_f1"] == 0.0 and w.means["rouge_l"] < 0.2  # type: ignore[operator]
