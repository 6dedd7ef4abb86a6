"""LoRA supervised fine-tuning with trl's SFTTrainer and peft, in the shape of a TRL script:
dataclasses for the configuration and a short ``main(config, ...)``.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

from datasets import Dataset
from lorebase.finetune.heap import retained_heap


@dataclass
class LoraArguments:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    layers: int | None = None  # LoRA on the last N layers only; None: all


@dataclass
class TrainConfig:
    model_dir: Path
    output_dir: Path  # the adapter is written here (and nothing else of the base model)
    lora: LoraArguments = field(default_factory=LoraArguments)
    max_length: int = 384
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8
    grad_accum: int = 2
    learning_rate: float = 3e-4
    warmup_ratio: float = 0.05
    precision: str = "auto"  # auto | float32 | bfloat16
    gradient_checkpointing: bool = False
    retain_heap: bool = True  # CPU: reuse freed memory instead of re-mapping it every step (finetune/heap.py)
    group_by_length: bool = True  # batches of similar length: evidence prompts vary, padding is waste
    seed: int = 0
    logging_steps: int = 5
    progress: bool = True

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model_dir"], d["output_dir"] = str(self.model_dir), str(self.output_dir)
        return d


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


def lora_config(args: LoraArguments, num_layers: int) -> LoraConfig:
    layers = None
    if args.layers is not None and args.layers < num_layers:
        layers = list(range(num_layers - args.layers, num_layers))
    return LoraConfig(
        r=args.r,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=list(args.target_modules),
        layers_to_transform=layers,
        bias="none",
        task_type="CAUSAL_LM",
    )


def main(config: TrainConfig, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a LoRA adapter on ``rows`` (prompt-completion) and save it to ``config.output_dir``."""
    on_gpu = torch.cuda.is_available()
    bf16, precision = _precision(config.precision)
    tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(config.model_dir, dtype=torch.float32)
    peft_config = lora_config(config.lora, int(model.config.num_hidden_layers))

    steps_per_epoch = math.ceil(len(rows) / (config.batch_size * config.grad_accum))
    args = SFTConfig(
        output_dir=str(config.output_dir / "trainer"),
        use_cpu=not on_gpu,
        bf16=bf16,
        fp16=False,
        max_length=config.max_length,
        completion_only_loss=True,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(0, round(config.warmup_ratio * (config.max_steps if config.max_steps > 0 else steps_per_epoch * config.epochs))),
        gradient_checkpointing=config.gradient_checkpointing,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        disable_tqdm=not config.progress,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
    )
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
