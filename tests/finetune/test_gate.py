"""The gate's decision rule on hand-made metric values (gain, regression beyond noise), the answer
benchmark's metrics on hand-written answers, and the paired bootstrap that measures the noise."""

from __future__ import annotations

import numpy as np

from lorebase.citations import Citation
from lorebase.eval.answers import check_answer, paired_bootstrap
from lorebase.finetune.gate import decide, score
from lorebase.finetune.sft_examples import SFTExample
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence

BASE = {"verified_and_cites_gold": 0.30, "rougeL": 0.25, "abstention": 0.70, "false_abstention": 0.10, "similarity": 0.6}
MAIN = "verified_and_cites_gold"


def test_promotes_on_the_minimum_gain_when_nothing_else_gets_worse_beyond_tolerance() -> None:
    cand = {**BASE, MAIN: 0.40, "rougeL": 0.24, "similarity": 0.2}  # rougeL -0.01 within 0.02; similarity is not gated
    d = decide(cand, BASE, main=MAIN, tolerance=0.02, min_gain=0.10)
    assert d.passed, d.reasons
    assert d.deltas[MAIN] == 0.10 and d.deltas["rougeL"] == -0.01


def test_rejects_too_small_a_gain_and_a_regression_beyond_tolerance_and_noise() -> None:
    assert not decide({**BASE, MAIN: 0.39}, BASE, main=MAIN, tolerance=0.02, min_gain=0.10).passed
    worse = {**BASE, MAIN: 0.60, "false_abstention": 0.20}  # false abstention is worse higher
    d = decide(worse, BASE, main=MAIN, tolerance=0.02, min_gain=0.10)
    assert not d.passed and any("false_abstention got worse by 0.1000" in r for r in d.reasons)
    # The same fall inside the measured noise (a 95% interval of width 0.3) is not a regression.
    noisy = decide(worse, BASE, main=MAIN, tolerance=0.02, min_gain=0.10, intervals={"false_abstention": (-0.05, 0.25)})
    assert noisy.passed and noisy.noise["false_abstention"] == 0.15
    fell = {**BASE, MAIN: 0.60, "abstention": 0.50}
    assert not decide(fell, BASE, main=MAIN, tolerance=0.02, min_gain=0.10).passed


def test_missing_main_metric_fails_and_a_negative_min_gain_tolerates_a_fall() -> None:
    assert not decide({**BASE, MAIN: None}, BASE, main=MAIN, tolerance=0.02).passed
    assert decide({**BASE, MAIN: 0.25}, BASE, main=MAIN, tolerance=0.02, min_gain=-0.1).passed
    assert not decide({**BASE, MAIN: 0.15}, BASE, main=MAIN, tolerance=0.02, min_gain=-0.1).passed
    # A lower-is-better main metric gains when it falls.
    assert decide({**BASE, "false_abstention": 0.0}, BASE, main="false_abstention", tolerance=0.02, min_gain=0.1).passed


def _evidence() -> list[Evidence]:
    return [
        Evidence(Citation(id="S1", source_id="a", kind="doc", title="t", path="a.md", start_line=1, end_line=2),
                 "Failed jobs are retried three times with exponential backoff."),
        Evidence(Citation(id="S2", source_id="b", kind="doc", title="t", path="b.md", start_line=1, end_line=2),
                 "The dashboard shows the queue length of every worker."),
    ]


def _example(pair_id: int, reference: str, gold: list[str], abstain: bool) -> SFTExample:
    return SFTExample(pair_id, "q?", [], [{"role": "assistant", "content": ""}], reference, gold, abstain, _evidence(),
                      [1, 2], "c", "doc")


def fake_embed(texts: list[str]) -> np.ndarray:
    """Bag-of-letters vectors: identical texts get cosine 1."""
    out = np.zeros((len(texts), 26), dtype=np.float32)
    for i, t in enumerate(texts):
        for ch in t.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def test_the_served_check_decides_verified_and_which_sources_count_as_cited() -> None:
    ev = _evidence()
    good = check_answer("Failed jobs are retried three times with exponential backoff [S1].", ev, 0.6)
    assert good.verified and good.cited == ["S1"] and not good.abstained
    # A negation the source does not make fails the check; nothing the model wrote survives.
    bad = check_answer("Failed jobs are never retried with exponential backoff [S1].", ev, 0.6)
    assert not bad.verified and bad.cited == []
    # Cited wrongly, but one other source supports it: the served checker moves the citation there.
    moved = check_answer("The dashboard shows the queue length of every worker [S1].", ev, 0.6)
    assert moved.verified and moved.cited == ["S2"]
    assert check_answer(ABSTAIN_TEXT, ev, 0.6).abstained


def test_answer_benchmark_metrics_of_hand_written_answers() -> None:
    examples = [
        _example(1, "Failed jobs are retried three times with exponential backoff.", ["S1"], False),
        _example(2, ABSTAIN_TEXT, [], True),
        _example(3, "The dashboard shows the queue length of every worker.", ["S1"], False),  # gold is S1 here
    ]
    answers = [
        "Failed jobs are retried three times with exponential backoff [S1].",  # verified, cites gold
        ABSTAIN_TEXT,  # right to abstain
        "The dashboard shows the queue length of every worker [S2].",  # verified, but not the gold source
    ]
    s = score("m", examples, answers, fake_embed, threshold=0.6)
    assert s.means["verified"] == 1.0 and s.means["cites_gold"] == 0.5 and s.means["verified_and_cites_gold"] == 0.5
    assert s.means["rougeL"] == 1.0 and s.means["similarity"] == 1.0
    assert s.means["abstention"] == 1.0 and s.means["false_abstention"] == 0.0
    assert "faithfulness" not in s.means  # no judge

    wrong = [ABSTAIN_TEXT, "Failed jobs are retried three times [S1].", "Nothing useful."]
    w = score("m", examples, wrong, fake_embed, threshold=0.6)
    # Abstained on an answerable one, answered the unanswerable one, wrote nothing checkable on the third.
    assert w.means["false_abstention"] == 0.5 and w.means["abstention"] == 0.0
    assert w.means["verified_and_cites_gold"] == 0.0 and w.means["rougeL"] < 0.2  # type: ignore[operator]


def test_paired_bootstrap_interval_covers_a_real_difference_and_is_zero_without_one() -> None:
    def rec(ok: bool) -> dict[str, object]:
        return {"kind": "code", "verified": ok, "cites_gold": ok, "mode": "generated", "rougeL": 1.0 if ok else 0.0,
                "abstained": False, "prompt_tokens": 0, "ttft_s": None, "latency_s": 0.0}

    base = [rec(i % 4 == 0) for i in range(40)]  # 0.25
    tuned = [rec(i % 2 == 0) for i in range(40)]  # 0.50
    iv = paired_bootstrap(base, tuned, ["verified_and_cites_gold", "abstention"], samples=400, seed=1)
    lo, hi = iv["verified_and_cites_gold"]  # type: ignore[misc]
    assert 0.0 < lo < 0.25 < hi < 0.5
    assert iv["abstention"] is None  # no unanswerable examples: undefined, not zero
    same = paired_bootstrap(base, base, ["verified_and_cites_gold"], samples=200)
    assert same["verified_and_cites_gold"] == (0.0, 0.0)
