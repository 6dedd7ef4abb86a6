"""Two evaluation runs side by side: each metric's change, and the questions that got better or worse."""

from __future__ import annotations

from typing import Any

from lorebase.eval import catalog
from lorebase.eval.stats import question_score

IDENTITY = ("model", "adapter", "embedder", "index_size", "git_commit", "judge", "eval_set")


def _name(v: Any) -> Any:
    return v.get("name") if isinstance(v, dict) else v


def _judge_failures(run: dict[str, Any]) -> Any:
    """From the JSON report when there is one, else from the run's row."""
    jf = run.get("judge_failures")
    return jf.get("total") if isinstance(jf, dict) else (run.get("metrics") or {}).get("judge_failures")


def _ordered(names: set[str], k: int) -> list[str]:
    known = [n for n in catalog.all_names(k) if n in names]
    return known + sorted(names - set(known))


def compare(a: dict[str, Any], b: dict[str, Any], threshold: float = 0.05) -> dict[str, Any]:
    """What changed from run ``a`` to run ``b``. A question counts as better or worse when its mean
    score moved by at least ``threshold``; its metrics that moved that much are named."""
    k = int(b.get("k") or a.get("k") or 10)
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    rows = []
    for n in _ordered({x for x in {*ma, *mb} if x not in ("judge_failures", "questions", "error")}, k):
        va, vb = ma.get(n), mb.get(n)
        change = round(vb - va, 4) if isinstance(va, int | float) and isinstance(vb, int | float) else None
        if change is None:
            verdict = "n/a"
        elif abs(change) < 1e-9:
            verdict = "same"
        else:
            verdict = "better" if (change > 0) != (n in catalog.LOWER_IS_BETTER) else "worse"
        rows.append({"name": n, "a": va, "b": vb, "change": change, "verdict": verdict})

    names = catalog.quality_names(k)
    qa = {q["id"]: q for q in a.get("questions") or []}
    qb = {q["id"]: q for q in b.get("questions") or []}
    better: list[dict[str, Any]] = []
    worse: list[dict[str, Any]] = []
    for qid in [q for q in qb if q in qa]:
        sa, sb = question_score(qa[qid].get("scores", {}), names), question_score(qb[qid].get("scores", {}), names)
        if sa is None or sb is None or abs(sb - sa) < threshold:
            continue
        moved = []
        for n in names:
            x, y = qa[qid]["scores"].get(n), qb[qid]["scores"].get(n)
            if x is not None and y is not None and abs(y - x) >= threshold:
                moved.append({"name": n, "a": x, "b": y})
        entry = {"id": qid, "a": sa, "b": sb, "change": round(sb - sa, 4), "metrics": moved, "question": qb[qid].get("question", "")}
        (better if sb > sa else worse).append(entry)
    better.sort(key=lambda e: -e["change"])
    worse.sort(key=lambda e: e["change"])
    return {
        "a": a.get("id"),
        "b": b.get("id"),
        "same_eval_set": a.get("eval_set_hash") == b.get("eval_set_hash"),
        "identity": {f: {"a": _name(a.get(f)), "b": _name(b.get(f))} for f in IDENTITY if _name(a.get(f)) != _name(b.get(f))},
        "metrics": rows,
        "judge_failures": {"a": _judge_failures(a), "b": _judge_failures(b)},
        "better": better,
        "worse": worse,
        "only_in_a": [q for q in qa if q not in qb],
        "only_in_b": [q for q in qb if q not in qa],
        "per_question": bool(qa) and bool(qb),
        "threshold": threshold,
    }


def _f(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def format_comparison(c: dict[str, Any]) -> str:
    a, b = c["a"], c["b"]
    lines = [f"Eval run {a} -> run {b}" + ("" if c["same_eval_set"] else "  (different eval sets: compare with care)")]
    for field, v in c["identity"].items():
        lines.append(f"  {field}: {v['a']} -> {v['b']}")
    lines += ["", f"| metric | run {a} | run {b} | change |", "|---|---:|---:|---|"]
    for m in c["metrics"]:
        change = "" if m["change"] is None else f"{m['change']:+.3f} {m['verdict']}"
        lines.append(f"| {m['name']} | {_f(m['a'])} | {_f(m['b'])} | {change} |")
    jf = c["judge_failures"]
    lines.append(f"| judge failures | {_f(jf['a'])} | {_f(jf['b'])} | |")
    if not c["per_question"]:
        lines += ["", "Per-question scores are missing for one of the runs (no JSON report): questions not compared."]
        return "\n".join(lines)
    for title, items in (("better", c["better"]), ("worse", c["worse"])):
        lines += ["", f"Questions {title} (mean score moved by {c['threshold']} or more): {len(items)}"]
        for e in items:
            moved = ", ".join(f"{m['name']} {_f(m['a'])} -> {_f(m['b'])}" for m in e["metrics"])
            lines.append(f"- {e['id']}: {_f(e['a'])} -> {_f(e['b'])} ({e['change']:+.3f}){': ' + moved if moved else ''}")
    if c["only_in_a"] or c["only_in_b"]:
        lines += ["", f"Only in run {a}: {', '.join(c['only_in_a']) or '-'}; only in run {b}: {', '.join(c['only_in_b']) or '-'}"]
    return "\n".join(lines)
