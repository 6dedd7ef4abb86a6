"""The latest decision of each model gate, for an eval run's report (`Services.gate_status`).

The generator's LoRA gate and the embedder's tuning gate stay separate: each judges and promotes
only its own model, on its own held-out data. An eval run reports both, so one page says which
adapter and which embedder are in use, and why.
"""

from __future__ import annotations

from typing import Any

from lorebase.finetune.embedder_tuning import list_tuned
from lorebase.finetune.registry import Registry
from lorebase.settings import Settings
from lorebase.store import Store


def latest_gates(settings: Settings, store: Store) -> dict[str, dict[str, Any] | None]:
    """``generator``: the newest LoRA gate decision; ``embedder``: the newest embedder tuning's.
    None where that gate has never run in this data home."""
    return {"generator": generator_gate(store), "embedder": embedder_gate(settings)}


def _dict(value: Any) -> dict[str, Any]:
    """A stored record's part, or {} where it is missing or of another shape: a damaged record must not
    cost the eval run that reports it."""
    return value if isinstance(value, dict) else {}


def _interval(value: Any) -> list[float] | None:
    return list(value) if isinstance(value, list | tuple) and len(value) == 2 else None


def generator_gate(store: Store) -> dict[str, Any] | None:
    gated = [a for a in Registry(store).list() if isinstance(a.metrics.get("gate"), dict)]
    if not gated:
        return None
    adapter = max(gated, key=lambda a: str(a.metrics["gate"].get("at") or ""))
    gate = adapter.metrics["gate"]
    decision = _dict(gate.get("decision"))
    means = _dict(gate.get("metrics"))
    cand, cur = _dict(means.get("candidate")), _dict(means.get("current"))
    ci = _dict(gate.get("ci95"))
    return {
        "adapter": adapter.name,
        "status": adapter.status,  # what became of it since: promoted, retired, rejected...
        "against": gate.get("current"),  # the model it had to beat: "base" or the adapter promoted then
        "at": gate.get("at"),
        "examples": gate.get("examples"),
        "passed": bool(decision.get("passed")),
        "main_metric": decision.get("main_metric"),
        "reasons": [str(r) for r in reasons] if isinstance(reasons := decision.get("reasons"), list) else [],
        "metrics": {m: {"current": cur.get(m), "candidate": cand.get(m), "ci95": _interval(ci.get(m))} for m in cand},
    }


def embedder_gate(settings: Settings) -> dict[str, Any] | None:
    tuned = list_tuned(settings)  # oldest first: the folder names are time stamps
    if not tuned:
        return None
    meta = tuned[-1]
    verdict = _dict(meta.get("verdict"))
    return {
        "embedder": meta.get("name"),
        "promoted": bool(meta.get("promoted")),
        "at": meta.get("created_at"),
        "held_out_pairs": meta.get("held_out_pairs"),
        "reason": verdict.get("reason"),
        "current": _dict(verdict.get("current")) or None,
        "candidate": _dict(verdict.get("candidate")) or None,
    }


def format_gates(gates: dict[str, dict[str, Any] | None]) -> list[str]:
    """One line per gate, for the CLI."""
    g, e = gates.get("generator"), gates.get("embedder")
    lines = []
    if g is None:
        lines.append("generator gate: never run (`lorebase train`)")
    else:
        verdict = "passed" if g["passed"] else "failed"
        reason = g["reasons"][0] if g["reasons"] else ""
        lines.append(f"generator gate: {g['adapter']} {verdict} against {g['against']} on {g['examples']} held-out "
                     f"examples ({reason}); now {g['status']}")
    if e is None:
        lines.append("embedder gate: never run (`lorebase embedder tune`)")
    else:
        lines.append(f"embedder gate: {e['embedder']} {'promoted' if e['promoted'] else 'not promoted'} "
                     f"on {e['held_out_pairs']} held-out pairs ({e['reason']})")
    return lines
