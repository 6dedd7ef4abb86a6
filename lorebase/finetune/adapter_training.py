"""One fine-tuning run: the train split's pairs become RAG-style examples, a LoRA adapter is trained
on them, and the registry gains a ``candidate`` AdapterVersion.

Crash safety: training writes into ``adapters/.partial-<name>``, which is renamed to
``adapters/<name>`` only once the adapter, its loss curve, its data snapshot and its run record are
all written; the AdapterVersion row is added after that. Any failure on the way removes the
partial folder (and the renamed one, if the row could not be written), so the registry and the
adapters folder never hold a half-made adapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.finetune.abstention import Retrieve
from lorebase.finetune.export import load_pairs
from lorebase.finetune.public_guard import PublicGuard
from lorebase.finetune.registry import Adapter, Registry
from lorebase.finetune.sft_examples import Embed, ExampleBuilder, SFTExample, balanced
from lorebase.generation.backend import ChatTokenizer
from lorebase.offline_models import generator_path
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import AdapterVersion, QAPair

PARTIAL_PREFIX = ".partial-"
REPORT_EVERY = 25  # pairs read between two progress lines while examples are built
Report = Callable[[str], None]


@dataclass
class TrainOutcome:
    adapter: Adapter
    examples: int
    withheld: int
    skipped: dict[str, int]
    seconds: float
    steps: int
    final_loss: float | None
    targets: dict[str, Any] = field(default_factory=dict)  # BuildStats: built, skipped, sentences dropped, fixes


def example_builder(settings: Settings, store: Store, retrieve: Retrieve, tokenizer: ChatTokenizer, seed: int,
                    embed: Embed | None = None) -> ExampleBuilder:
    ft = settings.finetune
    return ExampleBuilder(
        store, retrieve, tokenizer.count, tokenizer.count_text,
        k=ft.context_k, withhold_share=ft.withhold_gold_share, max_length=ft.max_length,
        max_answer_tokens=ft.max_answer_tokens, threshold=settings.answer.support_threshold, seed=seed,
        # the answer service's evidence budget per source (~3.5 characters a token)
        evidence_chars=int(settings.answer.evidence_tokens_per_source * 3.5), embed=embed,
    )


def build_training_examples(settings: Settings, store: Store, retrieve: Retrieve, max_examples: int | None = None,
                            embed: Embed | None = None, report: Report | None = None) -> tuple[list[SFTExample], ExampleBuilder]:
    """The training examples (and the builder, with its counts). Building one means retrieving its
    distractors and checking its target, about 2 s a pair on 2 cores, so ``report`` hears how far
    it got every ``REPORT_EVERY`` pairs."""
    pairs = load_pairs(store, split="train")
    if not pairs:
        raise InvalidInput("there are no validated train-split QA pairs: run `lorebase qa generate` first")
    ft = settings.finetune
    guard = PublicGuard(settings)
    public = [p for p in pairs if not guard.allowed(p.question)]
    pairs = [p for p in pairs if guard.allowed(p.question)]
    want = max_examples or ft.max_examples
    chosen = balanced(pairs, len(pairs), ft.seed)  # every pair, categories taken in turn: read until `want` are built
    builder = example_builder(settings, store, retrieve, ChatTokenizer(generator_path(settings)), ft.seed, embed)
    if public:
        builder.stats.skipped["a public dev-set question (never trained on)"] = len(public)
    examples = _capped(builder, chosen, want, ft.max_abstention_share, report)
    if not examples:
        raise InvalidInput(f"no training example could be built from {len(chosen)} pairs: {builder.stats.skipped}")
    guard.check(e.question for e in examples)
    return examples, builder


def _capped(builder: ExampleBuilder, pairs: Sequence[QAPair], want: int, share: float,
            report: Report | None = None) -> list[SFTExample]:
    """Up to ``want`` examples from ``pairs``, in order, of which at most ``share`` teach abstention.

    Abstention examples always build while many answerable ones fail the target check, so pairs
    are read in order keeping abstention ones while under ``share`` of ``want``, and at the end the
    latest ones beyond ``share`` of what was built are dropped."""
    built: list[SFTExample] = []
    abstaining = over = 0
    for n, p in enumerate(pairs):
        if len(built) >= want:
            break
        if report is not None and n and n % REPORT_EVERY == 0:
            report(f"building training examples: {n} of {len(pairs)} pairs read, {len(built)} examples built")
        ex = builder.build(p)
        if ex is None:
            continue
        if ex.abstain and abstaining >= share * want:
            over += 1
            continue
        abstaining += ex.abstain
        built.append(ex)
    allowed = int(share * (len(built) - abstaining) / (1 - share))
    kept: list[SFTExample] = []
    for ex in built:
        if ex.abstain:
            if allowed <= 0:
                over += 1
                continue
            allowed -= 1
        kept.append(ex)
    if over:
        reason = f"an abstention example beyond finetune.max_abstention_share ({share:g})"
        builder.stats.skipped[reason] = builder.stats.skipped.get(reason, 0) + over
        builder.stats.built -= over
        builder.stats.withheld -= over
    return kept


def snapshot(examples: Sequence[SFTExample]) -> tuple[bytes, str]:
    """The exact training data as JSONL, and its SHA-256: what AdapterVersion.data_hash names."""
    data = "".join(json.dumps(e.record(), ensure_ascii=False, sort_keys=True) + "\n" for e in examples).encode("utf-8")
    return data, hashlib.sha256(data).hexdigest()


def train_config(settings: Settings, output_dir: Path, *, max_steps: int = -1, progress: bool = True) -> Any:
    from lorebase.finetune.training import TrainRun

    return TrainRun(settings.finetune, generator_path(settings), output_dir, max_steps=max_steps, progress=progress)


def train_adapter(
    settings: Settings,
    store: Store,
    retrieve: Retrieve,
    *,
    name: str | None = None,
    max_examples: int | None = None,
    max_steps: int = -1,
    callbacks: Sequence[Any] = (),
    progress: bool = True,
    embed: Embed | None = None,
    report: Report | None = None,
) -> TrainOutcome:
    from lorebase.finetune import training

    examples, builder = build_training_examples(settings, store, retrieve, max_examples, embed, report)
    data, data_hash = snapshot(examples)
    name = name or f"lora-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{data_hash[:8]}"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name.startswith("."):
        raise InvalidInput(f"adapter name {name!r}: use letters, digits, '-', '_' and '.', not starting with '.'")
    registry = Registry(store)
    if any(a.name == name for a in registry.list()):
        raise InvalidInput(f"an adapter named {name!r} exists already")
    settings.adapters_dir.mkdir(parents=True, exist_ok=True)
    final = settings.adapters_dir / name
    if final.exists():
        raise InvalidInput(f"{final} exists already")
    partial = settings.adapters_dir / f"{PARTIAL_PREFIX}{name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        (partial / "data.jsonl").write_bytes(data)
        config = train_config(settings, partial, max_steps=max_steps, progress=progress)
        result = training.main(config, [e.row() for e in examples], callbacks)
        shutil.rmtree(partial / "trainer", ignore_errors=True)
        record = {
            "name": name,
            "data_hash": data_hash,
            "examples": len(examples),
            "withheld_gold": builder.stats.withheld,
            "skipped": builder.stats.skipped,
            "targets": builder.stats.as_dict(),
            "config": {**config.as_dict(), "output_dir": str(final)},
            "result": {k: v for k, v in asdict(result).items() if k not in ("output_dir", "loss_curve")},
            "finished_at": datetime.now(UTC).isoformat(),
        }
        (partial / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        with store.session() as s:
            s.add(AdapterVersion(
                name=name,
                path=str(final),
                base_model=settings.generation.model_name or Path(config.model_dir).name,
                data_hash=data_hash,
                config={**config.as_dict(), "output_dir": str(final), "examples": len(examples),
                        "withheld_gold": builder.stats.withheld, "skipped": builder.stats.skipped,
                        "sentences_dropped": builder.stats.sentences_dropped, "fixed": builder.stats.fixed},
                metrics={"train": {"seconds": result.seconds, "steps": result.steps, "final_loss": result.final_loss,
                                   "examples": result.examples, "device": result.device, "precision": result.precision,
                                   "trainable_parameters": result.trainable_parameters}},
                status="candidate",
            ))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return TrainOutcome(registry.get(name), len(examples), builder.stats.withheld, builder.stats.skipped,
                        result.seconds, result.steps, result.final_loss, builder.stats.as_dict())
