"""Preference pairs from the model's own answers, and a DPO run on the tiny Llama that moves the model the
way the pairs say: the chosen answer gains likelihood against the rejected one, relative to the base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lorebase.finetune.preference import PairStats, imitation_rows, preference_pairs, target

PROMPT = [{"role": "system", "content": "Answer from the sources."}, {"role": "user", "content": "Question: who?\n[S1] a"}]
OTHER_PROMPT = [{"role": "user", "content": "Question: who?\n[S1] b"}]


def rec(question: str, *, p: int = 0, good: bool, mode: str = "generated", answer: str = "Ann did it [S1].",
        written: str = "Bob did it [S2].", cited_gold: int = 1, messages: Any = PROMPT, kind: str = "code") -> dict[str, Any]:
    return {"question": question, "pass": p, "kind": kind, "mode": mode, "answer": answer, "written": written,
            "verified": good, "cites_gold": good, "cited_gold": cited_gold if good else 0, "messages": messages}


def test_a_pair_needs_a_good_and_a_bad_answer_to_the_same_prompt() -> None:
    records = [
        rec("q1", p=0, good=False, written="Bob did it [S2]."),
        rec("q1", p=1, good=True, answer="Ann did it [S1]."),
        rec("q1", p=2, good=False, written="Carl did it [S3]."),
        rec("q2", p=0, good=True), rec("q2", p=1, good=True),  # nothing to prefer
        rec("q3", p=0, good=False), rec("q3", p=1, good=False),  # nothing good
        rec("q4", p=0, good=True), rec("q4", p=1, good=False, messages=OTHER_PROMPT),  # two prompts: no pair
        rec("q5", p=0, good=False, kind="unanswerable"), rec("q5", p=1, good=True, kind="unanswerable"),
        rec("q6", p=0, good=True), rec("q6", p=1, good=False, written="  "),  # a bad answer that wrote nothing
    ]
    stats = PairStats()
    rows = preference_pairs(records, stats)
    assert [r["question"] for r in rows] == ["q1"]
    [row] = rows
    assert row["prompt"] == PROMPT
    assert row["chosen"] == [{"role": "assistant", "content": "Ann did it [S1]."}]
    # the rejected answer is what the served (first) pass wrote when it failed
    assert row["rejected"] == [{"role": "assistant", "content": "Bob did it [S2]."}]
    assert stats.pairs == 1 and stats.all_good == 3 and stats.all_bad == 2 and stats.prompts == 6
    assert stats.chosen_generated == 1


def test_the_chosen_answer_is_the_models_own_words_then_the_one_citing_more_gold() -> None:
    quoted = "The sources say:\n> Ann: the fix landed in May [S1]\n> Bob: it was reviewed [S2]"
    records = [
        rec("q", p=0, good=False),
        rec("q", p=1, good=True, mode="extractive", answer=quoted, cited_gold=2),
        rec("q", p=2, good=True, answer="The fix landed in May [S1].", cited_gold=1),
        rec("q", p=3, good=True, answer="The fix landed in May [S1] and was reviewed [S2].", cited_gold=2),
    ]
    [row] = preference_pairs(records)
    assert row["chosen"][0]["content"] == "The fix landed in May [S1] and was reviewed [S2]."
    # a quoted answer is trained as its lines, without the quote marks and speaker labels
    assert target(records[1]) == "the fix landed in May [S1] it was reviewed [S2]"
    # the top source's quote the service appends to an answer that skipped it is not the model's
    appended = rec("q", good=True, answer="The fix landed in May [S2].\n\nThe top source says:\n> Ann: reviewed [S1]")
    assert target(appended) == "The fix landed in May [S2]."
    [only_quote] = preference_pairs(records[:2])
    assert only_quote["chosen"][0]["content"] == "the fix landed in May [S1] it was reviewed [S2]"


def test_text_the_check_turned_down_is_rejected_even_where_the_quoted_fallback_held_up() -> None:
    quoted = "The sources say:\n> Ann: the fix landed in May [S1]"
    records = [
        rec("q", p=0, good=True, answer="The fix landed in May [S1]."),
        rec("q", p=1, good=True, mode="extractive", answer=quoted, written="The fix landed in June [S1]."),
        rec("r", p=0, good=True, mode="extractive", answer=quoted, written="It landed in June [S1]."),
        rec("s", p=0, good=True, mode="extractive", answer=quoted, written=""),  # the model wrote nothing
    ]
    stats = PairStats()
    rows = preference_pairs(records, stats)
    assert [(r["question"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [
        ("q", "The fix landed in May [S1].", "The fix landed in June [S1]."),
        # with no answer in the model's own words, the quote is preferred to what the model wrote
        ("r", "the fix landed in May [S1]", "It landed in June [S1]."),
    ]
    assert stats.pairs == 2 and stats.all_good == 1 and stats.chosen_generated == 1


def test_imitation_keeps_one_good_answer_per_question_from_the_earliest_pass() -> None:
    records = [rec("q", p=1, good=True, answer="late [S1]."), rec("q", p=0, good=True, answer="first [S1]."),
               rec("r", p=0, good=False)]
    assert imitation_rows(records) == [{"prompt": PROMPT, "completion": [{"role": "assistant", "content": "first [S1]."}]}]


PAIRS = [
    {"prompt": [{"role": "user", "content": "Which lecture explains gradient descent?" + " Context line." * n}],
     "chosen": [{"role": "assistant", "content": "The lecture at 03:15 explains it [S1]."}],
     "rejected": [{"role": "assistant", "content": "Fix the parser crash when a file is empty [S2]." + " Closes." * m}]}
    for n, m in ((0, 0), (4, 1), (2, 3), (6, 0))
]


def _logps(model: Any, tok: Any, row: dict[str, Any], key: str) -> float:
    import torch

    prompt = tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(row["prompt"] + row[key], tokenize=False)
    ids = tok(full, return_tensors="pt", add_special_tokens=False).input_ids
    start = len(tok(prompt, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    tokens = ids[0, 1:]
    return float(logp[start - 1:].gather(1, tokens[start - 1:, None]).sum())


@pytest.mark.slow
def test_dpo_moves_the_model_toward_the_chosen_answers(tiny_llama: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lorebase.finetune.preference_training import main
    from lorebase.finetune.training import TrainRun
    from lorebase.settings.tuning import FinetuneSettings

    ft = FinetuneSettings(lora_dropout=0.0, batch_size=2, grad_accum=1, preference_learning_rate=5e-3,
                          preference_sft_weight=0.5, logging_steps=1)
    out = tmp_path / "dpo"
    result = main(TrainRun(ft, tiny_llama, out, max_steps=6, progress=False), PAIRS)
    assert result.steps == 6 and result.examples == 4
    assert (out / "adapter_model.safetensors").is_file()
    curve = json.loads((out / "loss_curve.json").read_text())
    assert curve["objective"] == "dpo" and len(curve["points"]) == 6

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    margins_before = [_logps(base, tok, r, "chosen") - _logps(base, tok, r, "rejected") for r in PAIRS]
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32), out)
    margins_after = [_logps(tuned, tok, r, "chosen") - _logps(tuned, tok, r, "rejected") for r in PAIRS]
    # every pair's chosen answer gained on its rejected one, and the chosen ones did not become less likely
    assert all(a > b for a, b in zip(margins_after, margins_before, strict=True)), (margins_before, margins_after)
    assert sum(_logps(tuned, tok, r, "chosen") for r in PAIRS) > sum(_logps(base, tok, r, "chosen") for r in PAIRS)
