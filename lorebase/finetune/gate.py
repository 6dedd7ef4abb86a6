"""The evaluation gate: a candidate adapter against the model served now (the promoted adapter, else
the base model), on the same test-split examples, in the same run.

Metrics, each a mean over the examples it applies to:

- ``rouge_l``: ROUGE-L F1 of the answer against the reference answer (citations removed), answerable examples;
- ``semantic_similarity``: the embedder's cosine between answer and reference, answerable examples;
- ``citation_f1``: F1 of the cited labels against the gold chunk's labels, answerable examples;
- ``abstention_accuracy``: abstained exactly when the gold chunk was not in the prompt, all examples;
- ``faithfulness``: with ``finetune.faithfulness`` = ragas, RAGAS faithfulness judged by an LLM (the
  eval judge); otherwise the grounding check's lexical support score (the share of each sentence's
  content words found in the sources it cites) as a proxy, on answers that do not abstain. The
  report names which one was used.

Promotion needs the main metric (``finetune.gate_metric``) to rise by more than
``gate_min_gain`` and no other metric to fall by more than ``gate_tolerance``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorebase.finetune.qa_drafts import as_seen, strip_citations
from lorebase.finetune.sft_examples import SFTExample
from lorebase.generation import grounding
from lorebase.generation.backend import GenerationRequest, Generator

METRICS = ("rouge_l", "semantic_similarity", "citation_f1", "abstention_accuracy", "faithfulness")
Embed = Callable[[list[str]], np.ndarray]


@dataclass
class GateDecision:
    passed: bool
    main_metric: str
    reasons: list[str]
    deltas: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "main_metric": self.main_metric, "reasons": self.reasons, "deltas": self.deltas}


def decide(
    candidate: dict[str, float | None],
    current: dict[str, float | None],
    *,
    main: str,
    tolerance: float,
    min_gain: float = 0.0,
) -> GateDecision:
    """Promote only if ``main`` improves by more than ``min_gain`` and no other metric present in
    both falls by more than ``tolerance``. A main metric missing on either side fails the gate."""
    reasons: list[str] = []
    deltas: dict[str, float | None] = {}
    for name in sorted(set(candidate) | set(current)):
        a, b = candidate.get(name), current.get(name)
        deltas[name] = None if a is None or b is None else round(a - b, 6)
    main_delta = deltas.get(main)
    passed = True
    if main_delta is None:
        passed = False
        reasons.append(f"{main} could not be measured for both models")
    elif main_delta <= min_gain:
        passed = False
        reasons.append(f"{main} did not improve: {current[main]:.4f} -> {candidate[main]:.4f} (needs more than +{min_gain:g})")
    else:
        reasons.append(f"{main} improved: {current[main]:.4f} -> {candidate[main]:.4f}")
    for name, d in deltas.items():
        if name == main or d is None:
            continue
        if d < -tolerance:
            passed = False
            reasons.append(f"{name} fell by {-d:.4f}, more than the tolerance {tolerance:g}")
    return GateDecision(passed, main, reasons, deltas)


# --- scoring answers ----------------------------------------------------------------------------


@dataclass
class Scored:
    """One model's answers to the examples, with per-example scores and their means."""

    model: str
    answers: list[str]
    per_example: list[dict[str, Any]] = field(default_factory=list)
    means: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _f1(cited: set[str], gold: set[str]) -> float:
    if not cited or not gold:
        return 0.0
    hit = len(cited & gold)
    if hit == 0:
        return 0.0
    p, r = hit / len(cited), hit / len(gold)
    return 2 * p * r / (p + r)


def score(
    model: str,
    examples: Sequence[SFTExample],
    answers: Sequence[str],
    embed: Embed,
    *,
    threshold: float,
    faithfulness: Sequence[float | None] | None = None,
) -> Scored:
    """Scores for ``answers`` (one per example). ``faithfulness`` (per example) replaces the
    grounding-support proxy when an LLM judge scored it."""
    from rouge_score import rouge_scorer

    rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    out = Scored(model, list(answers))
    answerable = [i for i, e in enumerate(examples) if not e.abstain]
    sims: dict[int, float] = {}
    if answerable:
        refs = [examples[i].reference for i in answerable]
        hyps = [strip_citations(answers[i]) or "-" for i in answerable]
        vecs = np.asarray(embed(refs + hyps), dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        n = len(answerable)
        for j, i in enumerate(answerable):
            sims[i] = float(vecs[j] @ vecs[n + j])
    for i, (ex, ans) in enumerate(zip(examples, answers, strict=True)):
        abstained = grounding.is_abstention(ans)
        row: dict[str, Any] = {"pair_id": ex.pair_id, "category": ex.category, "abstain_expected": ex.abstain,
                               "abstained": abstained, "abstention_correct": abstained == ex.abstain}
        if not ex.abstain:
            row["rouge_l"] = rouge.score(ex.reference, strip_citations(ans))["rougeL"].fmeasure
            row["semantic_similarity"] = sims[i]
            labels = {e.label for e in ex.evidence}
            cited = {lbl for lbl in grounding.CITATION.findall(ans) if lbl in labels}
            row["citation_f1"] = _f1(cited, set(ex.gold_labels))
        if faithfulness is not None:
            row["faithfulness"] = faithfulness[i]
        elif not abstained and ans.strip():
            row["faithfulness"] = grounding.check(ans, [as_seen(e) for e in ex.evidence], threshold).score
        out.per_example.append(row)
    for name in METRICS:
        if name == "abstention_accuracy":
            vals = [1.0 if r["abstention_correct"] else 0.0 for r in out.per_example]
        else:
            vals = [float(r[name]) for r in out.per_example if r.get(name) is not None]
        out.means[name] = round(sum(vals) / len(vals), 4) if vals else None
        out.counts[name] = len(vals)
    return out


async def answer_all(
    generator: Generator,
    examples: Sequence[SFTExample],
    model: str | None,
    max_tokens: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Greedy answers to each example's prompt (the serving prompt) from ``model``."""
    out: list[str] = []
    for i, ex in enumerate(examples, start=1):
        c = await generator.complete(GenerationRequest(messages=ex.prompt, max_tokens=max_tokens, temperature=0.0, model=model))
        out.append(c.text)
        if progress is not None:
            progress(i, len(examples))
    return out


async def ragas_faithfulness(
    llm: Any, examples: Sequence[SFTExample], answers: Sequence[str], timeout_s: float
) -> tuple[list[float | None], int]:
    """RAGAS faithfulness per example (None where the answer abstains or the judge failed), and the failures."""
    from ragas.metrics.collections import Faithfulness

    metric = Faithfulness(llm=llm)
    scores: list[float | None] = []
    failures = 0
    for ex, ans in zip(examples, answers, strict=True):
        if grounding.is_abstention(ans) or not ans.strip():
            scores.append(None)
            continue
        try:
            result = await asyncio.wait_for(
                metric.ascore(user_input=ex.question, response=ans, retrieved_contexts=[e.text for e in ex.evidence]),
                timeout_s,
            )
            v = getattr(result, "value", result)
            scores.append(None if v is None or v != v else float(v))
        except asyncio.CancelledError:
            raise
        except Exception:  # one judgement lost, counted; the gate goes on
            failures += 1
            scores.append(None)
    return scores, failures
