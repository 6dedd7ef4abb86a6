"""Runs the gate for one candidate adapter and records the outcome in the registry.

Both models answer the same test-split examples (pairs from sources never trained on, built like
training examples with a different seed, so some withhold the gold chunk) through one generator:
the candidate as its adapter, the current model as the promoted adapter or the base model. Both
are scored with the answer benchmark's metrics, and a paired bootstrap over the examples gives the
noise of each difference. The full report (per-example records too) is written next to the
candidate's weights as ``gate-<time>.json``; the means, intervals and the decision go into
``AdapterVersion.metrics["gate"]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.eval.answers import GATE_METRICS, paired_bootstrap
from lorebase.finetune.abstention import Retrieve
from lorebase.finetune.adapter_training import example_builder
from lorebase.finetune.export import load_pairs
from lorebase.finetune.gate import Embed, GateDecision, Interval, Scored, answer_all, decide, ragas_faithfulness, score
from lorebase.finetune.registry import Adapter, Registry
from lorebase.finetune.sft_examples import balanced
from lorebase.generation.backend import ChatTokenizer, Generator
from lorebase.offline_models import generator_path
from lorebase.settings import Settings
from lorebase.store import Store

log = logging.getLogger(__name__)
BASE = "base"


@dataclass
class GateReport:
    candidate: str
    current: str  # the promoted adapter's name, or "base"
    examples: int
    faithfulness_method: str
    candidate_scores: Scored
    current_scores: Scored
    decision: GateDecision
    judge_failures: int = 0
    intervals: dict[str, Interval | None] | None = None  # 95% bootstrap interval of candidate - current

    def summary(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "current": self.current,
            "examples": self.examples,
            "faithfulness_method": self.faithfulness_method,
            "judge_failures": self.judge_failures,
            "metrics": {"candidate": self.candidate_scores.means, "current": self.current_scores.means},
            "ci95": self.intervals or {},
            "counts": self.candidate_scores.counts,
            "decision": self.decision.as_dict(),
            "at": datetime.now(UTC).isoformat(),
        }

    def full(self) -> dict[str, Any]:
        return {**self.summary(), "per_example": {
            "candidate": [{**r, "answer": a} for r, a in zip(self.candidate_scores.per_example, self.candidate_scores.answers, strict=True)],
            "current": [{**r, "answer": a} for r, a in zip(self.current_scores.per_example, self.current_scores.answers, strict=True)],
        }}


def faithfulness_method(settings: Settings) -> str:
    """ragas (an LLM judge scores faithfulness too) or none (the served check alone)."""
    mode = settings.finetune.faithfulness
    if mode == "ragas" or (mode == "auto" and settings.eval.judge_url):
        return "ragas"
    return "none"


async def open_eval_generator(settings: Settings, adapters: dict[str, Path]) -> Generator:
    from lorebase.generation.factory import open_generator

    if settings.finetune.eval_backend == "transformers":
        gen = settings.generation.model_copy(update={"backend": "transformers"})
        settings = settings.model_copy(update={"generation": gen})
    return await open_generator(settings, adapters=adapters)


async def run_gate(
    settings: Settings,
    store: Store,
    retrieve: Retrieve,
    embed: Embed,
    candidate: str,
    *,
    generator: Generator | None = None,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    ft = settings.finetune
    registry = Registry(store)
    cand = registry.get(candidate)
    cur = registry.promoted()
    if cur is not None and cur.name == cand.name:
        raise InvalidInput(f"{cand.name} is the promoted adapter already")
    held_out = load_pairs(store, split="test")
    pairs = balanced(held_out, len(held_out), ft.seed + 1)
    builder = example_builder(settings, store, retrieve, ChatTokenizer(generator_path(settings)), ft.seed + 1, embed)
    examples = builder.build_all(pairs, limit=ft.gate_max_examples)
    if not examples:
        raise InvalidInput("the test split has no usable QA pairs: run `lorebase qa generate` (the gate needs held-out pairs)")

    wanted = {a.name: Path(a.path) for a in (cand, cur) if a is not None}
    own = generator is None
    gen = generator if generator is not None else await open_eval_generator(settings, wanted)
    added: list[str] = []  # adapters this gate loaded into a generator it was handed: unloaded after
    try:
        loaded = set(await gen.models())
        for name, path in wanted.items():
            if name not in loaded:
                await gen.load_adapter(name, path)
                added.append(name)

        def tick(label: str) -> Callable[[int, int], None]:
            def step(i: int, n: int) -> None:
                if progress is not None and (i % 10 == 0 or i == n):
                    progress(f"gate: {label} answered {i}/{n}")
            return step

        cur_label = cur.name if cur is not None else BASE
        cur_answers = await answer_all(gen, examples, cur.name if cur is not None else None, ft.gate_max_new_tokens, tick(cur_label))
        cand_answers = await answer_all(gen, examples, cand.name, ft.gate_max_new_tokens, tick(cand.name))

        method = faithfulness_method(settings)
        failures = 0
        cand_faith = cur_faith = None
        if method == "ragas":
            from lorebase.eval.judge import open_judge

            judge = await open_judge(settings, gen)
            try:
                cur_faith, f1 = await ragas_faithfulness(judge.llm, examples, cur_answers, settings.eval.judge_timeout_s)
                cand_faith, f2 = await ragas_faithfulness(judge.llm, examples, cand_answers, settings.eval.judge_timeout_s)
                failures = f1 + f2
            finally:
                await judge.aclose()
    finally:
        if own:
            await gen.aclose()
        else:
            for name in added:
                await gen.unload_adapter(name)

    threshold = settings.answer.support_threshold
    cur_scores = score(cur_label, examples, cur_answers, embed, threshold=threshold, faithfulness=cur_faith)
    cand_scores = score(cand.name, examples, cand_answers, embed, threshold=threshold, faithfulness=cand_faith)
    gated = [*GATE_METRICS, *(["faithfulness"] if method == "ragas" else [])]
    intervals = paired_bootstrap(cur_scores.per_example, cand_scores.per_example, [*gated, "verified", "cites_gold"],
                                 samples=ft.gate_bootstrap, seed=ft.seed) if ft.gate_bootstrap else {}
    decision = decide(cand_scores.means, cur_scores.means, main=ft.gate_metric, tolerance=ft.gate_tolerance,
                      min_gain=ft.gate_min_gain, intervals=intervals, gated=gated)
    return GateReport(cand.name, cur_label, len(examples), method, cand_scores, cur_scores, decision, failures, intervals)


def record(store: Store, report: GateReport, *, promote: bool) -> Adapter:
    """Write the report next to the adapter, its summary into the registry, and act on the decision:
    a failed candidate becomes ``rejected``; a passing one is promoted if ``promote``."""
    registry = Registry(store)
    adapter = registry.get(report.candidate)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = Path(adapter.path) / f"gate-{stamp}.json"
    try:
        path.write_text(json.dumps(report.full(), indent=2, default=str) + "\n", encoding="utf-8")
    except OSError as e:  # the registry still gets the summary
        log.warning("could not write %s: %s", path, e)
    summary = {**report.summary(), "report": str(path)}
    if not report.decision.passed:
        return registry.set_status(adapter.name, "rejected", {"gate": summary})
    updated = registry.set_status(adapter.name, "candidate", {"gate": summary})
    return registry.promote(adapter.name) if promote else updated
