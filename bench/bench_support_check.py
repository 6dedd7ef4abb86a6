"""Precision and recall of the support check on the labelled set (datasets/eval/support-check.jsonl).

    .venv/bin/python bench/bench_support_check.py [--set FILE] [--threshold 0.6]

Positive class: a perturbed sentence (negated, number changed, name swapped). Recall is the share of
perturbed sentences the check rejects; precision the share of rejected sentences that were perturbed.
The lexical first pass alone (word share only) is the baseline row, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from lorebase.generation.grounding import support
from lorebase.generation.support import check_claim, squash

ROOT = Path(__file__).resolve().parent.parent


def score(rows: list[dict], rejects: list[bool]) -> dict[str, float | int]:
    tp = sum(1 for r, x in zip(rows, rejects, strict=True) if x and r["label"] != "supported")
    fp = sum(1 for r, x in zip(rows, rejects, strict=True) if x and r["label"] == "supported")
    fn = sum(1 for r, x in zip(rows, rejects, strict=True) if not x and r["label"] != "supported")
    by: Counter[str] = Counter()
    tot: Counter[str] = Counter()
    for r, x in zip(rows, rejects, strict=True):
        tot[r["label"]] += 1
        by[r["label"]] += int(x)
    out: dict[str, float | int] = {
        "precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
    }
    for label in sorted(tot):
        out[f"rejected_{label}"] = round(by[label] / tot[label], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=ROOT / "datasets/eval/support-check.jsonl")
    ap.add_argument("--threshold", type=float, default=0.6)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.set.read_text().splitlines() if line.strip()]
    lexical = [support(r["claim"], r["evidence"]) < args.threshold for r in rows]
    full = [not check_claim(r["claim"], r["evidence"], args.threshold).supported for r in rows]
    print(f"{len(rows)} rows: {dict(Counter(r['label'] for r in rows))}")
    for name, rej in (("lexical only", lexical), ("lexical + meaning rules", full)):
        print(name, json.dumps(score(rows, rej)))
    # The supported sentences that are not substrings of their evidence: the check cannot pass them
    # as quotes, so this is the harder precision.
    hard = [i for i, r in enumerate(rows) if r["label"] != "supported" or squash(r["claim"]) not in squash(r["evidence"])]
    print("non-verbatim supported only", json.dumps(score([rows[i] for i in hard], [full[i] for i in hard])))
    misses = [r for r, x in zip(rows, full, strict=True) if (r["label"] == "supported") == x]
    for r in misses[:15]:
        print("MISS", r["label"], "|", r["claim"][:150])


if __name__ == "__main__":
    main()
