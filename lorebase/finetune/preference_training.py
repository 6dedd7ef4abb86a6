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

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import DPOConfig, DPOTrainer

from lorebase.finetune.heap import retained_heap
from lorebase.finetune.training import LossCurve, TrainResult, TrainRun, _precision, lora_config


def dpo_config(run: TrainRun, pairs: int, on_gpu: bool, bf16: bool) -> DPOConfig:
    """trl's arguments, from settings.finetune and the run."""
    ft = run.finetune
    steps_per_epoch = math.ceil(pairs / (ft.batch_size * ft.grad_accum))
    total = run.max_steps if run.max_steps > 0 else steps_per_epoch * ft.epochs
    sft = ft.preference_sft_weight
    return DPOConfig(
        output_dir=str(run.output_dir / "trainer"),
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=False,
        max_length=None,
        beta=ft.preference_beta,
        loss_type=["sigmoid", "sft"] if sft > 0 else ["sigmoid"],
        loss_weights=[1.0, sft] if sft > 0 else None,
        num_train_epochs=ft.epochs,
        max_steps=run.max_steps,
        per_device_train_batch_size=ft.batch_size,
        gradient_accumulation_steps=ft.grad_accum,
        learning_rate=ft.preference_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(0, round(ft.warmup_ratio * total)),
        gradient_checkpointing=ft.gradient_checkpointing,
        logging_steps=ft.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=ft.seed,
        disable_tqdm=not run.progress,
        dataloader_num_workers=0,
    )


def make_trainer(config: TrainRun, rows: Sequence[dict[str, Any]],
                 callbacks: Sequence[TrainerCallback] = ()) -> DPOTrainer:
    """The DPOTrainer for ``rows`` (prompt, chosen, rejected), with the LoRA adapter in place, not yet trained."""
    on_gpu = torch.cuda.is_available()
    bf16, _ = _precision(config.finetune.precision)
    tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(config.model_dir, dtype=torch.float32)
    data = Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows])
    return DPOTrainer(
        model=model,
        ref_model=None,  # the base model is the adapter switched off
        args=dpo_config(config, len(rows), on_gpu, bf16),
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora_config(config.finetune, int(model.config.num_hidden_layers)),
        callbacks=list(callbacks),
    )


def main(config: TrainRun, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a LoRA adapter on preference ``rows`` and save it to ``config.output_dir``."""
    if not rows:
        raise ValueError("no preference pairs to train on")
    on_gpu = torch.cuda.is_available()
    _, precision = _precision(config.finetune.precision)
    curve = LossCurve()
    trainer = make_trainer(config, rows, [curve, *callbacks])
    tuned: Any = trainer.model
    trainable = sum(int(p.numel()) for p in tuned.parameters() if p.requires_grad)
    started = time.monotonic()
    with retained_heap(config.retain_heap and not on_gpu):
        out = trainer.train()
    seconds = time.monotonic() - started
    config.output_dir.mkdir(parents=True, exist_ok=True)
    tuned.save_pretrained(str(config.output_dir))
    result = TrainResult(
        output_dir=config.output_dir, steps=int(out.global_step), examples=len(rows), seconds=round(seconds, 2),
        final_loss=curve.points[-1]["loss"] if curve.points else float(out.training_loss), loss_curve=curve.points,
        device="cuda" if on_gpu else "cpu", precision=precision, trainable_parameters=int(trainable),
    )
    (config.output_dir / "loss_curve.json").write_text(json.dumps({
        "points": curve.points, "train_loss": float(out.training_loss), "steps": result.steps,
        "seconds": result.seconds, "pairs": result.examples, "objective": "dpo",
        "logs": [h for h in trainer.state.log_history if "loss" in h],
    }, indent=2) + "\n", encoding="utf-8")
    return result
