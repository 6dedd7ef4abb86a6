"""LoRA preference tuning (DPO) with trl's DPOTrainer, on the pairs of ``finetune/preference.py``.

The same LoRA adapter, precision and batch settings as supervised training (``settings.finetune``), with
the preference's own: ``preference_beta`` (how far the tuned model may move from its base),
``preference_learning_rate`` and ``preference_sft_weight`` (a negative log-likelihood term on the chosen
answer beside the DPO loss, which keeps the chosen answers likely rather than only less unlikely than the
rejected ones). The reference model is the base with the adapter switched off, so no second copy is
loaded. Prompts are not truncated: they are served prompts, whose length the answer service already bounds.

Imports torch, transformers, peft and trl: import this module only to train.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import DPOConfig, DPOTrainer

from lorebase.finetune.training import (
    LossCurve,
    TrainResult,
    TrainRun,
    _precision,
    base_model,
    lora_config,
    train_and_save,
    trainer_arguments,
)


def dpo_config(run: TrainRun, pairs: int, on_gpu: bool, bf16: bool) -> DPOConfig:
    """trl's arguments, from settings.finetune and the run."""
    ft = run.finetune
    sft = ft.preference_sft_weight
    return DPOConfig(
        **trainer_arguments(run, pairs, on_gpu, bf16, ft.preference_learning_rate),
        max_length=None,
        beta=ft.preference_beta,
        loss_type=["sigmoid", "sft"] if sft > 0 else ["sigmoid"],
        loss_weights=[1.0, sft] if sft > 0 else None,
    )


def make_trainer(config: TrainRun, rows: Sequence[dict[str, Any]],
                 callbacks: Sequence[TrainerCallback] = ()) -> DPOTrainer:
    """The DPOTrainer for ``rows`` (prompt, chosen, rejected), with the LoRA adapter in place, not yet trained."""
    bf16, _ = _precision(config.finetune.precision)
    model, tokenizer = base_model(config)
    data = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    return DPOTrainer(
        model=model,
        ref_model=None,  # the base model is the adapter switched off
        args=dpo_config(config, len(rows), torch.cuda.is_available(), bf16),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(config.finetune, int(model.config.num_hidden_layers)),
        callbacks=list(callbacks),
    )


def main(config: TrainRun, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a LoRA adapter on preference ``rows`` and save it to ``config.output_dir``."""
    if not rows:
        raise ValueError("no preference pairs to train on")
    curve = LossCurve()
    return train_and_save(config, make_trainer(config, rows, [curve, *callbacks]), curve, objective="dpo")
