"""RAFT-style examples and LoRA training runs on the tiny Llama: the adapter, its registry row,
what a crash leaves behind (nothing), and the target-rows LM head's loss against trl's."""

from __future__ import annotations

import asyncio
import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import func, select
from transformers import AutoTokenizer, TrainerCallback
from trl import SFTTrainer

from lorebase.eval.answers import check_answer
from lorebase.finetune.adapter_training import build_training_examples, train_adapter
from lorebase.finetune.qa_generation import QAGenerator
from lorebase.finetune.retrieval import retriever
from lorebase.finetune.training import TargetRowsSFTTrainer, TrainRun, make_trainer
from lorebase.generation import grounding
from lorebase.generation.backend import ChatTokenizer
from lorebase.generation.prompts import ABSTAIN_TEXT, answer_messages
from lorebase.services import Services
from lorebase.settings.tuning import FinetuneSettings
from lorebase.store.models import AdapterVersion


def make_pairs(services: Services) -> None:
    gen = QAGenerator(services.settings, services.store, embed=services.search.embedder.embed,
                      retrieve=retriever(services.search))
    asyncio.run(gen.generate())


@pytest.mark.slow
def test_examples_are_the_serving_prompt_with_gold_among_distractors(services: Services, tiny_llama: Path) -> None:
    make_pairs(services)
    settings = services.settings
    lines: list[str] = []
    examples, builder = build_training_examples(settings, services.store, retriever(services.search), 40,
                                                embed=services.search.embedder.embed, report=lines.append)
    assert examples and builder.stats.built == len(examples)
    # 40 examples take more than 25 pairs: how far the building got is reported as it goes
    assert lines and lines[0].startswith("building training examples: 25 of ") and lines[0].endswith(" examples built")
    read = [int(line.split(": ")[1].split()[0]) for line in lines]
    built = [int(line.split(", ")[1].split()[0]) for line in lines]
    assert read == [25 * (i + 1) for i in range(len(lines))] and built == sorted(built)
    tok = ChatTokenizer(tiny_llama)
    hf = AutoTokenizer.from_pretrained(tiny_llama)
    budget = int(settings.answer.evidence_tokens_per_source * 3.5)
    withheld = answered = 0
    for ex in examples:
        assert ex.prompt == answer_messages(ex.question, ex.evidence), "training prompt = serving prompt"
        assert [e.label for e in ex.evidence] == [f"S{i}" for i in range(1, len(ex.evidence) + 1)]
        assert len(ex.evidence) <= settings.finetune.context_k
        assert tok.count(ex.prompt) + tok.count_text(ex.target) <= settings.finetune.max_length
        # Evidence lines, not whole chunks: each source is what the answer service would show of it.
        assert all(len(e.text) <= budget + 200 for e in ex.evidence), [len(e.text) for e in ex.evidence]
        if ex.abstain:
            withheld += 1
            assert ex.target == ABSTAIN_TEXT and ex.gold_labels == []
            continue
        answered += 1
        cited = set(grounding.CITATION.findall(ex.target))
        assert cited and cited <= {e.label for e in ex.evidence}
        assert len(grounding.split_sentences(ex.target)) <= 3
        # The target passes the served check sentence by sentence, against the evidence it cites
        # (header lines not included), and cites a gold source.
        checked = check_answer(ex.target, ex.evidence, settings.answer.support_threshold)
        assert checked.verified and set(checked.cited) & set(ex.gold_labels), ex.target
        for e in ex.evidence:  # no header-line copying: a label in the target is one the evidence text says too
            assert e.citation.label not in ex.target or any(e.citation.label in x.text for x in ex.evidence), ex.target
        # trl masks the prompt by its rendering with the generation prompt: it must be a prefix of
        # prompt + completion, and the same text the server renders.
        prompt_text = hf.apply_chat_template(ex.prompt, tokenize=False, add_generation_prompt=True)
        full_text = hf.apply_chat_template(ex.prompt + ex.completion, tokenize=False)
        assert prompt_text == tok.render(ex.prompt) and full_text.startswith(prompt_text)
        assert full_text[len(prompt_text):].startswith(ex.target)
    assert withheld and answered
    # Abstention is taught, but never more than its share: answerable pairs often fail the target
    # check, and an adapter trained on half abstentions abstains on answerable questions.
    assert withheld <= settings.finetune.max_abstention_share * len(examples) + 1e-9
    assert builder.stats.withheld == withheld
    records = [e.record() for e in examples]
    assert all(r["pair_id"] and "prompt" in r and "completion" in r for r in records)
    # Targets that could not pass the check were counted, not silently kept.
    stats = builder.stats.as_dict()
    assert stats["built"] == len(examples) and isinstance(stats["sentences_dropped"], dict)


@pytest.mark.slow
def test_two_step_training_run_makes_an_adapter_and_a_candidate_row(services: Services) -> None:
    make_pairs(services)
    outcome = train_adapter(services.settings, services.store, retriever(services.search), name="t1",
                            max_examples=8, max_steps=2, progress=False)
    folder = services.settings.adapters_dir / "t1"
    assert outcome.adapter.path == str(folder) and outcome.steps == 2
    for name in ("adapter_config.json", "adapter_model.safetensors", "loss_curve.json", "data.jsonl", "run.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "trainer").exists()
    curve = json.loads((folder / "loss_curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [1, 2] and all(p["loss"] > 0 for p in curve["points"])
    data = (folder / "data.jsonl").read_bytes()
    with services.store.session() as s:
        row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == "t1"))
        assert row is not None
        assert row.status == "candidate" and row.data_hash == hashlib.sha256(data).hexdigest()
        assert row.config["lora_r"] == 16 and row.config["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert row.metrics["train"]["steps"] == 2
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["r"] == 16 and set(cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert [json.loads(x)["pair_id"] for x in data.decode().splitlines()], "every example names its pair"


class Boom(TrainerCallback):
    def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")


@pytest.mark.slow
def test_a_crash_mid_training_leaves_the_registry_and_adapters_folder_unchanged(services: Services) -> None:
    make_pairs(services)
    with pytest.raises(RuntimeError, match="power cut"):
        train_adapter(services.settings, services.store, retriever(services.search), name="crash",
                      max_examples=4, max_steps=2, callbacks=[Boom()], progress=False)
    with services.store.session() as s:
        assert s.scalar(select(func.count()).select_from(AdapterVersion)) == 0
    assert list(services.settings.adapters_dir.iterdir()) == [], "no adapter folder, no partial folder"


ROWS = [  # prompts and answers of different lengths, so the batch has padding and targets at different offsets
    {"prompt": [{"role": "user", "content": "Which lecture explains gradient descent?" + " Context line." * n}],
     "completion": [{"role": "assistant", "content": "The lecture at 03:15 explains it [S1]." + " Then backpropagation." * m}]}
    for n, m in ((0, 0), (6, 2), (2, 5), (9, 1))
]


@pytest.mark.slow
def test_target_rows_head_gives_trls_completion_loss_gradients_and_metrics(tiny_llama: Path, tmp_path: Path) -> None:
    run = TrainRun(FinetuneSettings(lora_dropout=0.0, batch_size=4), tiny_llama, tmp_path / "out", max_steps=1,
                   progress=False, target_rows_head=True)
    trainer = make_trainer(run, ROWS)
    assert isinstance(trainer, TargetRowsSFTTrainer)
    model = trainer.model
    torch.manual_seed(1)
    with torch.no_grad():  # a non-zero adapter, so gradients reach lora_A too and the adapter shapes the loss
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    model.train()
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    targets = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < targets < batch["labels"].numel() // 2, "completion-only labels: most rows are masked prompt"
    head_rows: list[int] = []
    model.get_output_embeddings().register_forward_hook(lambda mod, args, out: head_rows.append(args[0].shape[0]))

    def loss_and_grads(compute: Any, num_items: Any) -> tuple[float, dict[str, torch.Tensor], list[float]]:
        model.zero_grad()
        loss = compute(model, dict(batch), num_items_in_batch=num_items)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        logged = [trainer._metrics["train"][k][-1] for k in ("entropy", "mean_token_accuracy")]
        return float(loss.detach()), grads, logged

    # num_items_in_batch: None (this batch's targets) and a gradient-accumulated step's count.
    for num_items in (None, torch.tensor(2 * targets + 3)):
        ours, our_grads, our_metrics = loss_and_grads(trainer.compute_loss, num_items)
        assert head_rows[-1] == targets, "the LM head ran on the target rows only"
        rows_before = len(head_rows)
        theirs, their_grads, their_metrics = loss_and_grads(partial(SFTTrainer.compute_loss, trainer), num_items)
        assert len(head_rows) == rows_before, "trl's path does not go through our head call"
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)
        assert our_grads.keys() == their_grads.keys() and any("lora_A" in n for n in our_grads)
        for name, grad in our_grads.items():
            assert grad.abs().sum() > 0, name
            torch.testing.assert_close(grad, their_grads[name], rtol=1e-4, atol=1e-7, msg=name)
        assert our_metrics == pytest.approx(their_metrics, rel=1e-5, abs=1e-6)
    # The last pair was divided by the accumulated step's count (2 * targets + 3), not by this batch's.
    assert ours < loss_and_grads(trainer.compute_loss, None)[0] / 2


class _Builder:
    """Builds every pair: ids below 100 answerable, from 100 up unanswerable; odd answerable ids fail
    the target check (as many real answerable pairs do), so abstention would be a third of the data."""

    def __init__(self) -> None:
        from lorebase.finetune.sft_examples import BuildStats

        self.stats = BuildStats()

    def build(self, pair: Any) -> Any:
        from lorebase.finetune.sft_examples import SFTExample

        if pair < 100 and pair % 2:
            self.stats.skip("target fails the check")
            return None
        abstain = pair >= 100
        self.stats.built += 1
        self.stats.withheld += abstain
        return SFTExample(pair, "q", [], [{"role": "assistant", "content": "a"}], "a", [] if abstain else ["S1"],
                          abstain, [], [], "c", None)


@pytest.mark.parametrize(("share", "want"), [(0.2, 1000), (0.2, 30), (0.0, 1000), (0.5, 1000)])
def test_abstention_examples_stay_within_their_share(share: float, want: int) -> None:
    from lorebase.finetune.adapter_training import _capped

    pairs = [i for k in range(40) for i in (2 * k, 2 * k + 1, 100 + k)]  # categories taken in turn, as `balanced` does
    builder = _Builder()
    examples = _capped(builder, pairs, want, share)  # type: ignore[arg-type]
    abstaining = sum(e.abstain for e in examples)
    answerable = len(examples) - abstaining
    assert abstaining <= share * len(examples) + 1e-9
    assert answerable == min(40, want - abstaining)  # every answerable example that built is kept, up to `want`
    assert len(examples) <= want
    # the counts stay true: what was left out is said, with its reason
    assert builder.stats.built == len(examples) and builder.stats.withheld == abstaining
    dropped = sum(n for r, n in builder.stats.skipped.items() if "max_abstention_share" in r)
    if want > len(pairs):  # every pair was read: each unanswerable one is kept or counted as left out
        assert abstaining + dropped == 40
        assert abstaining == int(share * 40 / (1 - share))  # of the 40 answerable examples built
