"""Reading the QA dataset back, its counts, and exporting it as JSONL or a Hugging Face datasets folder.

The datasets folder is written with ``DatasetDict.save_to_disk`` plus a dataset card (README.md)
with the counts by split, kind and method, into a temporary folder renamed into place at the end.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorebase.finetune.splits import SPLITS
from lorebase.store import Store
from lorebase.store.models import QAPair

FIELDS = ("id", "question", "answer", "split", "kind", "category", "method", "validated", "chunk_ids", "source_ids",
          "provenance", "validation", "question_hash", "source_hash", "created_at", "retired_at")


def load_pairs(
    store: Store,
    *,
    split: str | None = None,
    include_retired: bool = False,
    validated_only: bool = True,
    methods: Sequence[str] | None = None,
) -> list[QAPair]:
    """Pairs ordered by id (detached from the session)."""
    q = select(QAPair).order_by(QAPair.id)
    if split is not None:
        q = q.where(QAPair.split == split)
    if not include_retired:
        q = q.where(QAPair.retired_at.is_(None))
    if validated_only:
        q = q.where(QAPair.validated.is_(True))
    if methods:
        q = q.where(QAPair.method.in_(list(methods)))
    with store.session() as s:
        rows = list(s.scalars(q))
        s.expunge_all()
    return rows


def as_record(p: QAPair) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    for name in FIELDS:
        v = getattr(p, name)
        rec[name] = v.isoformat() if isinstance(v, datetime) else v
    return rec


def stats(store: Store) -> dict[str, Any]:
    """Counts of active pairs by split, kind, method and category, and of retired ones."""
    with store.session() as s:
        rows = s.execute(select(QAPair.split, QAPair.kind, QAPair.method, QAPair.category, QAPair.validated,
                                QAPair.retired_at)).all()
    active = [r for r in rows if r.retired_at is None]
    return {
        "active": len(active),
        "retired": len(rows) - len(active),
        "unvalidated": sum(1 for r in active if not r.validated),
        "by_split": dict(Counter(r.split or "none" for r in active)),
        "by_kind": dict(Counter(r.kind or "none" for r in active)),
        "by_method": dict(Counter(r.method for r in active)),
        "by_category": dict(sorted(Counter(r.category for r in active).items())),
    }


def export_jsonl(pairs: Sequence[QAPair], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(as_record(p), ensure_ascii=False, default=str) + "\n")
    tmp.replace(path)
    return len(pairs)


def _table(title: str, counts: dict[str, Counter[str]]) -> list[str]:
    cols = sorted({k for c in counts.values() for k in c})
    lines = [f"### {title}", "", "| split | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for split, c in counts.items():
        lines.append(f"| {split} | " + " | ".join(str(c.get(k, 0)) for k in cols) + f" | {sum(c.values())} |")
    return [*lines, ""]


def dataset_card(pairs: Sequence[QAPair], source: str) -> str:
    by_kind = {sp: Counter(p.kind or "none" for p in pairs if p.split == sp) for sp in SPLITS}
    by_method = {sp: Counter(p.method for p in pairs if p.split == sp) for sp in SPLITS}
    lines = [
        "---",
        "pretty_name: lorebase QA pairs",
        "task_categories: [question-answering]",
        "language: [en]",
        "---",
        "",
        "# lorebase QA pairs",
        "",
        f"Question-answer pairs made by `lorebase qa generate` from {source}, exported "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}: {len(pairs)} pairs.",
        "",
        "Each pair cites its gold chunk as `[S1]`; `provenance` names the source (path and lines at a commit, a commit, "
        "an issue or pull request, a lecture and time) and `validation` holds the grounding check's result. "
        "`method` is `template` (rule-based, extractive), `self_instruct` (question written by the generator, answer "
        "generated and checked, or extractive), `abstention` (gold withheld, distractor contexts, answer: the abstention "
        "text) or `feedback`. Splits are grouped by source: all pairs of a source are in one split.",
        "",
        "## Counts",
        "",
        *_table("By kind", by_kind),
        *_table("By method", by_method),
    ]
    return "\n".join(lines)


def export_dataset(pairs: Sequence[QAPair], folder: Path, source: str = "the lorebase store") -> dict[str, int]:
    """Write a ``DatasetDict`` (one dataset per split) with ``save_to_disk`` and a README.md card."""
    from datasets import Dataset, DatasetDict

    records = [as_record(p) for p in pairs]
    for r in records:  # nested JSON of varying shape: stored as text so every row has one schema
        r["provenance"] = json.dumps(r["provenance"], ensure_ascii=False, default=str)
        r["validation"] = json.dumps(r["validation"], ensure_ascii=False, default=str)
        r["retired_at"] = r["retired_at"] or ""
    parts = {sp: Dataset.from_list([r for r in records if r["split"] == sp]) for sp in SPLITS
             if any(r["split"] == sp for r in records)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    DatasetDict(parts).save_to_disk(str(tmp))
    (tmp / "README.md").write_text(dataset_card(pairs, source), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return {sp: len(d) for sp, d in parts.items()}
