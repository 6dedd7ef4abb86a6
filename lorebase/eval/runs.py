"""Evaluation runs on record: the EvalRun rows, their report files, and what identifies a run
(the project's git commit, the eval set's hash)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorebase.errors import NotFound
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import EvalRun, utcnow

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def report_paths(settings: Settings, run_id: int) -> tuple[Path, Path]:
    """(JSON, HTML) of a run: always made from the id, never from a stored or requested path."""
    return settings.reports_dir / f"eval-{run_id}.json", settings.reports_dir / f"eval-{run_id}.html"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """HEAD of the checkout lorebase runs from; None when that folder is not the top of a git checkout
    (an installed package) or git is missing."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "--verify", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    top, sha = lines
    if Path(top).resolve() != Path(root).resolve():
        return None  # lorebase lies inside some other repository, which says nothing about lorebase
    return sha


def start_run(store: Store, **fields: Any) -> int:
    with store.session() as s:
        run = EvalRun(status="running", **fields)
        s.add(run)
        s.flush()
        return int(run.id)


def finish_run(store: Store, run_id: int, *, status: str, metrics: dict[str, Any], report_path: str | None) -> None:
    with store.session() as s:
        run = s.get(EvalRun, run_id)
        if run is None:
            raise NotFound(f"no eval run {run_id}")
        run.status = status
        run.metrics = metrics
        run.report_path = report_path
        run.finished_at = utcnow()


def run_record(run: EvalRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "eval_set": run.eval_set,
        "eval_set_hash": run.eval_set_hash,
        "model": run.model,
        "adapter": run.adapter,
        "embedder": run.embedder,
        "index_size": run.index_size,
        "git_commit": run.git_commit,
        "judge": run.judge,
        "metrics": run.metrics,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def list_runs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first."""
    with store.session() as s:
        return [run_record(r) for r in s.scalars(select(EvalRun).order_by(EvalRun.id.desc()).limit(limit))]


def get_run(store: Store, run_id: int) -> dict[str, Any]:
    with store.session() as s:
        run = s.get(EvalRun, run_id)
        if run is None:
            raise NotFound(f"no eval run {run_id}")
        return run_record(run)


def earlier_runs(store: Store, eval_set_hash: str, before_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Finished runs on the same eval set (same hash) before ``before_id``, oldest first: the trend."""
    with store.session() as s:
        q = (
            select(EvalRun)
            .where(EvalRun.eval_set_hash == eval_set_hash, EvalRun.id < before_id, EvalRun.status == "ok")
            .order_by(EvalRun.id.desc())
            .limit(limit)
        )
        return [run_record(r) for r in reversed(list(s.scalars(q)))]


def load_report(settings: Settings, store: Store, run_id: int) -> dict[str, Any]:
    """The run's full JSON report; for a run without one (running, failed early), its row."""
    record = get_run(store, run_id)
    json_path, _ = report_paths(settings, run_id)
    if not json_path.is_file():
        return record
    try:
        report: dict[str, Any] = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return record
    report["status"] = record["status"]
    return report


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
