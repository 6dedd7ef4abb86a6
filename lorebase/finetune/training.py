"""LoRA supervised fine-tuning with trl's SFTTrainer and peft, in the shape of a TRL script: the
configuration is settings.finetune (TrainRun adds the run's own paths), and a short ``main(config, ...)``.

Examples are conversational prompt-completion rows (``{"prompt": [messages], "completion":
[assistant message]}``): trl renders the prompt with the tokenizer's chat template and the
generation prompt, and computes the loss on the completion tokens only (``completion_only_loss``).
``assistant_only_loss`` would need ``{% generation %}`` markers that SmolLM2's ChatML template
does not have; the prompt-completion format needs none.

Imports torch, transformers, peft and trl: import this module only to train.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

from lorebase.finetune.heap import retained_heap
from lorebase.settings import FinetuneSettings


@dataclass
class TrainRun:
    """One training run: the hyperparameters are settings.finetune itself (read, never copied into a
    parallel config); the rest is the run's own."""

    finetune: FinetuneSettings
    model_dir: Path
    output_dir: Path  # the adapter is written here (and nothing else of the base model)
    max_steps: int = -1  # > 0 overrides finetune.epochs
    retain_heap: bool = True  # CPU: reuse freed memory instead of re-mapping it every step (finetune/heap.py)
    progress: bool = True

    def as_dict(self) -> dict[str, Any]:
        """What an adapter's record keeps of how it was trained."""
        return {**self.finetune.model_dump(mode="json"), "model_dir": str(self.model_dir),
                "output_dir": str(self.output_dir), "max_steps": self.max_steps, "retain_heap": self.retain_heap}


@dataclass
class TrainResult:
    output_dir: Path
    steps: int
    examples: int
    seconds: float
    final_loss: float | None
    loss_curve: list[dict[str, float]]
    device: str
    precision: str
    trainable_parameters: int


class LossCurve(TrainerCallback):
    """Keeps each logged training loss (step, epoch, loss, learning rate) for loss_curve.json."""

    def __init__(self) -> None:
        self.points: list[dict[str, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.points.append({
                "step": int(state.global_step),
                "epoch": round(float(state.epoch or 0.0), 4),
                "loss": float(logs["loss"]),
                **({"learning_rate": float(logs["learning_rate"])} if "learning_rate" in logs else {}),
            })


def _precision(setting: str) -> tuple[bool, str]:
    """(bf16?, name). auto: bf16 only on a GPU that has it; CPU bf16 autocast is opt-in (faster here, quality unmeasured)."""
    if setting == "bfloat16":
        return True, "bfloat16"
    if setting == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return True, "bfloat16"
    return False, "float32"


def lora_config(ft: FinetuneSettings, num_layers: int) -> LoraConfig:
    layers = None
    if ft.lora_layers is not None and ft.lora_layers < num_layers:
        layers = list(range(num_layers - ft.lora_layers, num_layers))
    return LoraConfig(
        r=ft.lora_r,
        lora_alpha=ft.lora_alpha,
        lora_dropout=ft.lora_dropout,
        target_modules=list(ft.target_modules),
        layers_to_transform=layers,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_config(run: TrainRun, examples: int, on_gpu: bool, bf16: bool) -> SFTConfig:
    """trl's arguments, straight from settings.finetune and the run."""
    ft = run.finetune
    steps_per_epoch = math.ceil(examples / (ft.batch_size * ft.grad_accum))
    total = run.max_steps if run.max_steps > 0 else steps_per_epoch * ft.epochs
    return SFTConfig(
        output_dir=str(run.output_dir / "trainer"),
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=False,
        max_length=ft.max_length,
        completion_only_loss=True,
        num_train_epochs=ft.epochs,
        max_steps=run.max_steps,
        per_device_train_batch_size=ft.batch_size,
        gradient_accumulation_steps=ft.grad_accum,
        learning_rate=ft.learning_rate,
        lr_scheduler_type="cosine",
        train_sampling_strategy="group_by_length" if ft.group_by_length else "random",  # evidence prompts vary: little padding
        warmup_steps=max(0, round(ft.warmup_ratio * total)),
        gradient_checkpointing=ft.gradient_checkpointing,
        logging_steps=ft.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=ft.seed,
        disable_tqdm=not run.progress,
        dataloader_num_workers=0,
    )


def main(config: TrainRun, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a LoRA adapter on ``rows`` (prompt-completion) and save it to ``config.output_dir``."""
    on_gpu = torch.cuda.is_available()
    bf16, precision = _precision(config.finetune.precision)
    tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(config.model_dir, dtype=torch.float32)
    peft_config = lora_config(config.finetune, int(model.config.num_hidden_layers))
    args = sft_config(config, len(rows), on_gpu, bf16)
    curve = LossCurve()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[curve, *callbacks],
    )
    tuned: Any = trainer.model  # the PeftModel trl wrapped
    trainable = sum(int(p.numel()) for p in tuned.parameters() if p.requires_grad)
    started = time.monotonic()
    with retained_heap(config.retain_heap and not on_gpu):
        out = trainer.train()
    seconds = time.monotonic() - started
    config.output_dir.mkdir(parents=True, exist_ok=True)
    tuned.save_pretrained(str(config.output_dir))  # the adapter only
    result = TrainResult(
        output_dir=config.output_dir,
        steps=int(out.global_step),
        examples=len(trainer.train_dataset),  # type: ignore[arg-type]
        seconds=round(seconds, 2),
        final_loss=curve.points[-1]["loss"] if curve.points else float(out.training_loss),
        loss_curve=curve.points,
        device="cuda" if on_gpu else "cpu",
        precision=precision,
        trainable_parameters=int(trainable),
    )
    (config.output_dir / "loss_curve.json").write_text(json.dumps({
        "points": curve.points, "train_loss": float(out.training_loss), "steps": result.steps,
        "seconds": result.seconds, "examples": result.examples,
    }, indent=2) + "\n", encoding="utf-8")
    return result
