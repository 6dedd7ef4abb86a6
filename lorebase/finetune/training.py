"""LoRA supervised fine-tuning with trl's SFTTrainer and peft, in the shape of a TRL script: the
configuration is settings.finetune (TrainRun adds the run's own paths), and a short ``main(config, ...)``.

Examples are conversational prompt-completion rows (``{"prompt": [messages], "completion":
[assistant message]}``): trl renders the prompt with the tokenizer's chat template and the
generation prompt, and computes the loss on the completion tokens only (``completion_only_loss``).
On CPU, TargetRowsSFTTrainer projects only those tokens' rows through the LM head (see its docstring).
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
import torch.nn.functional as F
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
    # LM head on target rows only (TargetRowsSFTTrainer); None: on CPU, where trl's fused head scores every
    # row; False: trl's own loss (the benchmark's baseline).
    target_rows_head: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """What an adapter's record keeps of how it was trained."""
        return {**self.finetune.model_dump(mode="json"), "model_dir": str(self.model_dir),
                "output_dir": str(self.output_dir), "max_steps": self.max_steps, "retain_heap": self.retain_heap,
                "target_rows_head": self.target_rows_head}


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


def trainer_arguments(run: TrainRun, examples: int, on_gpu: bool, bf16: bool, learning_rate: float) -> dict[str, Any]:
    """The Trainer arguments every objective shares (supervised, preference), from settings.finetune and the run."""
    ft = run.finetune
    steps_per_epoch = math.ceil(examples / (ft.batch_size * ft.grad_accum))
    total = run.max_steps if run.max_steps > 0 else steps_per_epoch * ft.epochs
    return {
        "output_dir": str(run.output_dir / "trainer"),
        "use_cpu": not on_gpu,
        "bf16": bf16,
        "fp16": False,
        "num_train_epochs": ft.epochs,
        "max_steps": run.max_steps,
        "per_device_train_batch_size": ft.batch_size,
        "gradient_accumulation_steps": ft.grad_accum,
        "learning_rate": learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": max(0, round(ft.warmup_ratio * total)),
        "gradient_checkpointing": ft.gradient_checkpointing,
        "logging_steps": ft.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "seed": ft.seed,
        "disable_tqdm": not run.progress,
        "dataloader_num_workers": 0,
    }


def sft_config(run: TrainRun, examples: int, on_gpu: bool, bf16: bool) -> SFTConfig:
    """trl's arguments, straight from settings.finetune and the run."""
    ft = run.finetune
    return SFTConfig(
        **trainer_arguments(run, examples, on_gpu, bf16, ft.learning_rate),
        max_length=ft.max_length,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if ft.group_by_length else "random",  # evidence prompts vary: little padding
    )


class TargetRowsSFTTrainer(SFTTrainer):
    """trl's SFTTrainer whose training loss sends only the rows that have a target token through the LM head.

    trl's fused LM head scores only those rows where Triton runs (CUDA, XPU); on CPU it scores every
    position, the masked prompt included (~87 % of the rows of an evidence prompt), and folds entropy and
    top-1 over the whole vocabulary for each: with Qwen2.5's 151,936-token tied head that is a large part
    of a CPU step. Here the model's own forward keeps just the target rows (transformers'
    ``logits_to_keep`` as a boolean mask, so inside accelerate's autocast and peft's forward) and the loss
    is trl's: summed negative log-likelihood of the target tokens over ``num_items_in_batch`` (the
    accumulated step's target count) or, without it, this batch's count. Anything else trl's loss can be
    (label smoothing, DFT, MoE aux loss, a custom loss, logits for metrics) goes to trl's own path.
    """

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        args: Any = self.args  # an SFTConfig
        plain = (not return_outputs and self.compute_loss_func is None and self.label_smoother is None
                 and args.loss_type == "nll" and not self.aux_loss_enabled and "shift_labels" not in inputs)
        if not plain:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        labels = inputs["labels"]
        valid = labels[:, 1:] != -100
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = valid  # row t predicts token t + 1
        targets = labels[:, 1:][valid]
        outputs = model(**{**{k: v for k, v in inputs.items() if k != "labels"}, "use_cache": False, "logits_to_keep": keep})
        logits = outputs.logits.float()  # (targets, vocabulary); the softmax in fp32 as in trl's head
        count = valid.sum() if num_items_in_batch is None else num_items_in_batch
        loss = F.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(count).clamp(min=1)
        if args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._record_metrics("train" if model.training else "eval", inputs, logits.detach(), targets)
        return loss

    def _record_metrics(self, mode: str, inputs: dict[str, Any], logits: torch.Tensor, targets: torch.Tensor) -> None:
        """trl's logged entropy, mean_token_accuracy and num_tokens, from the target rows' logits."""
        gather = self.accelerator.gather_for_metrics
        logp = torch.log_softmax(logits, dim=-1)
        num_valid = gather(torch.tensor(targets.numel(), device=logits.device)).sum()
        entropy_sum = gather(-(logp.exp() * logp).sum()).sum()
        num_correct = gather((logits.argmax(dim=-1) == targets).sum()).sum()  # argmax: the first maximum, as trl's
        self._metrics[mode]["entropy"].append((entropy_sum / num_valid).item() if num_valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((num_correct / num_valid).item() if num_valid > 0 else 0.0)
        if mode == "train":
            tokens = inputs["attention_mask"].sum() if "attention_mask" in inputs else torch.tensor(inputs["position_ids"].size(1))
            self._total_train_tokens += gather(tokens).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def base_model(config: TrainRun) -> tuple[Any, Any]:
    """The base model (float32; precision is the trainer's autocast) and its tokenizer, with a pad token."""
    tokenizer = AutoTokenizer.from_pretrained(config.model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(config.model_dir, dtype=torch.float32), tokenizer


def make_trainer(config: TrainRun, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> SFTTrainer:
    """The SFTTrainer for ``rows`` (prompt-completion), with the LoRA adapter in place, not yet trained."""
    on_gpu = torch.cuda.is_available()
    bf16, _ = _precision(config.finetune.precision)
    model, tokenizer = base_model(config)
    peft_config = lora_config(config.finetune, int(model.config.num_hidden_layers))
    args = sft_config(config, len(rows), on_gpu, bf16)
    target_rows = config.target_rows_head if config.target_rows_head is not None else not on_gpu
    trainer_class = TargetRowsSFTTrainer if target_rows else SFTTrainer
    return trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )


def train_and_save(config: TrainRun, trainer: Any, curve: LossCurve, **record: Any) -> TrainResult:
    """Run ``trainer`` (its model a PeftModel), save the adapter alone to ``config.output_dir`` with its loss
    curve (plus ``record``), and say how it went."""
    on_gpu = torch.cuda.is_available()
    _, precision = _precision(config.finetune.precision)
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
        examples=len(trainer.train_dataset),
        seconds=round(seconds, 2),
        final_loss=curve.points[-1]["loss"] if curve.points else float(out.training_loss),
        loss_curve=curve.points,
        device="cuda" if on_gpu else "cpu",
        precision=precision,
        trainable_parameters=int(trainable),
    )
    (config.output_dir / "loss_curve.json").write_text(json.dumps({
        "points": curve.points, "train_loss": float(out.training_loss), "steps": result.steps,
        "seconds": result.seconds, "examples": result.examples, **record,
    }, indent=2) + "\n", encoding="utf-8")
    return result


def main(config: TrainRun, rows: Sequence[dict[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Train a LoRA adapter on ``rows`` (prompt-completion) and save it to ``config.output_dir``."""
    curve = LossCurve()
    return train_and_save(config, make_trainer(config, rows, [curve, *callbacks]), curve)
