"""The evaluation gate: a candidate adapter against the model served now (the promoted adapter, else
the base model), on the same held-out examples (sources never trained on), in the same run.

The metrics are the answer benchmark's (lorebase.eval.answers), computed on each model's answer to
the served prompt of each example with the served sentence check:

- ``verified_and_cites_gold``: a sentence the model wrote passes the check and cites a gold source
  (answerable examples); ``verified`` and ``cites_gold`` apart;
- ``rougeL`` and ``similarity`` (embedder cosine): the answer against the reference (answerable);
- ``abstention``: the share of examples whose evidence lacks the answer on which the model abstains;
- ``false_abstention``: the share of answerable examples on which it abstains (lower is better);
- ``faithfulness``: only with ``finetune.faithfulness`` = ragas, RAGAS faithfulness from an LLM judge.

Noise: a paired bootstrap over the examples gives a 95% interval of each difference. Promotion needs
the main metric (``finetune.gate_metric``) to rise by at least ``gate_min_gain``, and no other gated
metric to get worse by more than the larger of ``gate_tolerance`` and its noise (half the interval's
width).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorebase.eval.answers import (
    GATE_METRICS,
    LOWER_IS_BETTER,
    gate_record,
    summarize_rows,
)
from lorebase.finetune.qa_drafts import strip_citations
from lorebase.finetune.sft_examples import SFTExample
from lorebase.generation import grounding
from lorebase.generation.backend import GenerationRequest, Generator

METRICS = ("verified_and_cites_gold", "verified", "cites_gold", "rougeL", "similarity", "abstention",
           "false_abstention", "faithfulness")
Embed = Callable[[list[str]], np.ndarray]
Interval = tuple[float, float]


@dataclass
class GateDecision:
    passed: bool
    main_metric: str
    reasons: list[str]
    deltas: dict[str, float | None]
    noise: dict[str, float] = field(default_factory=dict)  # half-width of each difference's 95% interval

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "main_metric": self.main_metric, "reasons": self.reasons, "deltas": self.deltas,
                "noise": self.noise}


def decide(
    candidate: dict[str, float | None],
    current: dict[str, float | None],
    *,
    main: str,
    tolerance: float,
    min_gain: float = 0.0,
    intervals: dict[str, Interval | None] | None = None,
    gated: Sequence[str] = GATE_METRICS,
) -> GateDecision:
    """Promote only if ``main`` (better higher, unless in LOWER_IS_BETTER) gains at least ``min_gain``
    and no other metric of ``gated`` present in both gets worse by more than ``tolerance`` or its
    noise, whichever is larger (``intervals``: the paired bootstrap's 95% interval of each difference).
    A main metric missing on either side fails the gate."""
    reasons: list[str] = []
    deltas: dict[str, float | None] = {}
    for name in sorted(set(candidate) | set(current)):
        a, b = candidate.get(name), current.get(name)
        deltas[name] = None if a is None or b is None else round(a - b, 6)
    noise = {m: round((iv[1] - iv[0]) / 2, 4) for m, iv in (intervals or {}).items() if iv is not None}

    def gain(name: str) -> float | None:
        d = deltas.get(name)
        return None if d is None else (-d if name in LOWER_IS_BETTER else d)

    main_gain = gain(main)
    passed = True
    if main_gain is None:
        passed = False
        reasons.append(f"{main} could not be measured for both models")
    elif main_gain < min_gain - 1e-9:
        passed = False
        reasons.append(f"{main} did not improve enough: {current[main]:.4f} -> {candidate[main]:.4f} "
                       f"(needs at least {min_gain:+g}; noise ±{noise.get(main, 0.0):g})")
    else:
        reasons.append(f"{main} improved: {current[main]:.4f} -> {candidate[main]:.4f} (noise ±{noise.get(main, 0.0):g})")
    for name in gated:
        g = gain(name)
        if name == main or g is None:
            continue
        allowed = max(tolerance, noise.get(name, 0.0))
        if g < -allowed - 1e-9:
            passed = False
            reasons.append(f"{name} got worse by {-g:.4f}, more than the allowed {allowed:g} (tolerance {tolerance:g}, "
                           f"noise ±{noise.get(name, 0.0):g})")
    return GateDecision(passed, main, reasons, deltas, noise)


# --- scoring answers ----------------------------------------------------------------------------


@dataclass
class Scored:
    """One model's answers to the examples, with per-example records and their means."""

    model: str
    answers: list[str]
    per_example: list[dict[str, Any]] = field(default_factory=list)
    means: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def score(
    model: str,
    examples: Sequence[SFTExample],
    answers: Sequence[str],
    embed: Embed,
    *,
    threshold: float,
    faithfulness: Sequence[float | None] | None = None,
) -> Scored:
    """The answer benchmark's metrics for ``answers`` (one per example). ``faithfulness`` (per
    example, from an LLM judge) adds that metric."""
    out = Scored(model, list(answers))
    for ex, ans in zip(examples, answers, strict=True):
        rec = gate_record("unanswerable" if ex.abstain else (ex.kind or "answerable"), ex.reference, ans, ex.evidence,
                          ex.gold_labels, threshold)
        out.per_example.append({"pair_id": ex.pair_id, "category": ex.category, **rec})
    answerable = [i for i, e in enumerate(examples) if not e.abstain]
    if answerable:
        refs = [examples[i].reference for i in answerable]
        hyps = [strip_citations(answers[i]) or "-" for i in answerable]
        vecs = np.asarray(embed(refs + hyps), dtype=np.float32)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        for j, i in enumerate(answerable):
            out.per_example[i]["similarity"] = round(float(vecs[j] @ vecs[len(answerable) + j]), 4)
    if faithfulness is not None:
        for row, f in zip(out.per_example, faithfulness, strict=True):
            row["faithfulness"] = f
    summary = summarize_rows(out.per_example)
    n_ans, n_un = len(answerable), len(examples) - len(answerable)
    for name in METRICS:
        if name == "faithfulness":
            vals = [float(r["faithfulness"]) for r in out.per_example if r.get("faithfulness") is not None]
            out.means[name] = round(sum(vals) / len(vals), 4) if vals else None
            out.counts[name] = len(vals)
            continue
        out.means[name] = summary.get(name)
        out.counts[name] = n_un if name == "abstention" else n_ans
    if faithfulness is None:
        del out.means["faithfulness"], out.counts["faithfulness"]
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
