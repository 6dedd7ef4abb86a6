"""Seconds per optimizer step of LoRA training variants, side by side, and what they project for
1,000 examples: the numbers behind the CPU defaults of `finetune.*`.

Needs a data home with validated QA pairs (`lorebase ingest ...` then `lorebase qa generate`). The
same training examples (the served evidence-line prompt) are built once; each variant then trains a
few steps, in turns (variant A, B, C, then A, B, C again), so load on a shared machine hits every
variant alike. The first step of each run is left out of the timing (allocator and thread-pool
warm-up). The loss after the same steps, from the same seed, shows whether a variant (bf16
autocast) changes what is learned. 1,000-example times are projections from the measured steps.
Peak RSS is the process's high-water mark during each run (reset before it through /proc/self/clear_refs).
"full logits (trl)" is trl's own loss, whose fused LM head scores every position on CPU; the defaults
send only the target rows through the head (training.TargetRowsSFTTrainer).

    LOREBASE_HOME=... .venv/bin/python bench/bench_train_speed.py --steps 4 --rounds 2
    LOREBASE_HOME=... .venv/bin/python bench/bench_train_speed.py --generator small --variants defaults "bf16 autocast"
    ... --variants defaults "full logits (trl)" "bf16 autocast" "bf16 autocast, full logits (trl)"
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from transformers import TrainerCallback  # noqa: E402

from lorebase.finetune import training  # noqa: E402
from lorebase.finetune.adapter_training import build_training_examples, train_config  # noqa: E402
from lorebase.finetune.retrieval import retriever  # noqa: E402
from lorebase.generation.backend import ChatTokenizer  # noqa: E402
from lorebase.offline_models import generator_path  # noqa: E402
from lorebase.services import Services  # noqa: E402
from lorebase.settings import load_settings  # noqa: E402

# name -> changes to the TrainRun built from the settings (`finetune.` keys reach into settings.finetune).
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "glibc heap not retained": {"retain_heap": False},
    "bf16 autocast": {"finetune.precision": "bfloat16"},
    "full logits (trl)": {"target_rows_head": False},
    "bf16 autocast, full logits (trl)": {"finetune.precision": "bfloat16", "target_rows_head": False},
    "no length grouping": {"finetune.group_by_length": False},
    "max_length 192": {"finetune.max_length": 192},
    "last 4 layers": {"finetune.lora_layers": 4},
    "q,v only": {"finetune.target_modules": ["q_proj", "v_proj"]},
}


class StepClock(TrainerCallback):
    """Notes the wall and process CPU time at the start of the first optimizer step and at the end of each."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.cpu_marks: list[float] = []

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self.marks:
            self.marks.append(time.perf_counter())
            self.cpu_marks.append(time.process_time())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.marks.append(time.perf_counter())
        self.cpu_marks.append(time.process_time())

    @staticmethod
    def _gaps(marks: list[float]) -> list[float]:
        gaps = [b - a for a, b in zip(marks, marks[1:], strict=False)]
        return gaps[1:] if len(gaps) > 1 else gaps  # drop the warm-up step

    def step_seconds(self) -> list[float]:
        return self._gaps(self.marks)

    def cpu_seconds(self) -> list[float]:
        """CPU seconds (all threads) per step: what a step costs, less swayed than wall time by other users."""
        return self._gaps(self.cpu_marks)


def reset_peak_rss() -> None:
    gc.collect()  # the previous run's model and trainer
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM restarts from the current RSS
    except OSError:
        pass


def peak_rss_gb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def apply(config: Any, changes: dict[str, Any]) -> Any:
    ft = config.finetune.model_copy(update={k.removeprefix("finetune."): v for k, v in changes.items() if k.startswith("finetune.")})
    return replace(config, finetune=ft, **{k: v for k, v in changes.items() if not k.startswith("finetune.")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is not timed)")
    ap.add_argument("--rounds", type=int, default=2, help="times each variant runs, in turns")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, help="also write the markdown table here")
    ap.add_argument("--generator", help="models.generator for this run: a profile (tiny, small, base) or a model folder")
    args = ap.parse_args()

    settings = load_settings(**({"models": {"generator": args.generator}} if args.generator else {}))
    svc = Services.build(settings)
    ft = settings.finetune
    per_step = ft.batch_size * ft.grad_accum
    examples, builder = build_training_examples(settings, svc.store, retriever(svc.search), per_step * args.steps,
                                                embed=svc.search.embedder.embed)
    print(f"targets: {builder.stats.as_dict()}", file=sys.stderr)
    rows = [e.row() for e in examples]
    tokenizer = ChatTokenizer(generator_path(settings))
    lengths = sorted(tokenizer.count(e.prompt) + tokenizer.count_text(e.target) for e in examples)
    print(f"{len(rows)} examples, {per_step} per optimizer step", file=sys.stderr)
    timings: dict[str, list[float]] = {v: [] for v in args.variants}
    cpu: dict[str, list[float]] = {v: [] for v in args.variants}
    losses: dict[str, list[float]] = {v: [] for v in args.variants}
    loads: list[float] = []
    peaks: dict[str, list[float]] = {v: [] for v in args.variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name in args.variants:
                config = apply(train_config(settings, Path(tmp) / f"{r}-{len(timings[name])}",
                                            max_steps=args.steps, progress=False), VARIANTS[name])
                clock = StepClock()
                reset_peak_rss()
                result = training.main(config, rows, [clock])
                if (peak := peak_rss_gb()) is not None:
                    peaks[name].append(peak)
                timings[name].extend(clock.step_seconds())
                cpu[name].extend(clock.cpu_seconds())
                if result.final_loss is not None:
                    losses[name].append(result.final_loss)
                loads.append(os.getloadavg()[0])
                print(f"round {r + 1} {name}: {statistics.median(clock.step_seconds()):.1f} s/step, "
                      f"{statistics.median(clock.cpu_seconds()):.1f} CPU s/step, "
                      f"load {os.getloadavg()[0]:.2f}, peak RSS {peaks[name][-1] if peaks[name] else 0:.1f} GB", file=sys.stderr)
    base = statistics.median(timings[args.variants[0]])
    cpu_base = statistics.median(cpu[args.variants[0]])
    lines = [
        f"Machine: {cpu_name('?')}, {os.cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}; generator "
        f"`{generator_path(settings).name}`; load (1 min) {min(loads):.1f}–{max(loads):.1f}; {per_step} examples per optimizer step "
        f"(batch {ft.batch_size} x {ft.grad_accum}), {args.rounds} rounds x {args.steps - 1} timed steps per variant; "
        f"example length (prompt + target tokens) median {statistics.median(lengths):.0f}, max {lengths[-1]} "
        f"(max_length {ft.max_length}); LoRA on the last {ft.lora_layers or 'all'} layers.",
        "",
        f"| variant | s/step (median) | vs {args.variants[0]} | CPU s/step | vs {args.variants[0]} | s per example "
        "| projected min for 1,000 examples | loss after the run | peak RSS (GB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in args.variants:
        med = statistics.median(timings[name])
        loss = f"{statistics.median(losses[name]):.3f}" if losses[name] else "—"
        peak = f"{max(peaks[name]):.1f}" if peaks[name] else "—"
        cpu_med = statistics.median(cpu[name])
        lines.append(f"| {name} | {med:.1f} | {med / base:.2f}x | {cpu_med:.1f} | {cpu_med / cpu_base:.2f}x | {med / per_step:.2f} "
                     f"| {1000 / per_step * med / 60:.1f} | {loss} | {peak} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    svc.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
