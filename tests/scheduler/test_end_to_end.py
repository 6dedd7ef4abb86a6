"""The whole chain on real parts: a tracked git repository (through a file:// clone URL, so it is
fetched) gets a new commit and a watched lecture folder a new file; one sync ingests just those,
makes QA pairs for them, trains a LoRA adapter on the tiny Llama, gates it and applies the gate's
decision. And a `lorebase jobs run sync` process killed mid-ingest and started again ends where a
clean run ends: nothing duplicated, nothing lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from lorebase.finetune.registry import Registry
from lorebase.scheduler import history
from lorebase.scheduler.jobs import JobContext, retrain_check
from lorebase.scheduler.pipeline import JobRunner
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from lorebase.store.models import Chunk, JobRun, QAPair, Source
from tests.conftest import REPO_ROOT
from tests.scheduler.conftest import ISSUES, LECTURE_2, LEDGER_PY, make_corpus, scheduler_settings, vtt

pytestmark = pytest.mark.slow
FILES = 80  # modules in the repository whose ingest is killed


def _sources(svc: Services) -> dict[str, datetime]:
    with svc.store.session() as s:
        return {key: at for key, at in s.execute(select(Source.key, Source.last_ingested_at))}


def _pairs_by_source(svc: Services) -> dict[str, int]:
    out: dict[str, int] = {}
    with svc.store.session() as s:
        for sids, retired in s.execute(select(QAPair.source_ids, QAPair.retired_at)):
            if retired is None and sids:
                out[sids[0]] = out.get(sids[0], 0) + 1
    return out


def test_a_new_commit_and_lecture_are_ingested_paired_trained_on_gated_and_recorded(tmp_path: Path, tiny_llama: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    sources = [*corpus.sources(), {"name": "issues", "spec": str(ISSUES), "interval_s": 3600}]
    settings = scheduler_settings(
        tmp_path / "home", sources,
        models={"generator": str(tiny_llama)},
        generation={"backend": "transformers", "max_new_tokens": 8, "max_model_len": 2048},
        qa={"train_share": 0.5, "validation_share": 0.1},  # a test split the gate can use, from few sources
        # The gate's rule is the real one; its bar is set so that a random tiny model, which cannot
        # gain, is promoted unless it does harm beyond the bar: the test is of the loop, not of the model.
        finetune={"max_examples": 4, "max_length": 768, "context_k": 2, "batch_size": 2, "grad_accum": 1, "logging_steps": 1,
                  "gate_max_examples": 3, "gate_max_new_tokens": 8, "eval_backend": "transformers",
                  "gate_min_gain": -1.0, "gate_tolerance": 1.0, "gate_bootstrap": 200},
    )
    svc = Services.build(settings)
    try:
        first = JobRunner(JobContext.of(svc)).run("sync")  # the baseline; retraining not due (threshold huge)
        assert first.ok, [s.as_dict() for s in first.steps if s.status != "ok"]
        assert [s.job for s in first.steps] == ["sync:calc", "ingest:calc", "sync:lectures", "ingest:lectures", "sync:issues",
                                                "ingest:issues", "qa"]
        before = _sources(svc)
        pairs_before = _pairs_by_source(svc)
        with svc.store.session() as s:
            last_id = s.scalar(select(JobRun.id).order_by(JobRun.id.desc()).limit(1))
        baseline_pairs = retrain_check(JobContext.of(svc)).new_pairs

        corpus.repo.write("calc/ledger.py", LEDGER_PY)
        sha = corpus.repo.commit("Add a ledger for running balances", date="2024-03-05T10:00:00+00:00")
        (corpus.lectures / "gradient.vtt").write_text(LECTURE_2, encoding="utf-8")

        # Due only because of the new pairs: one more than the baseline made.
        due = settings.model_copy(update={"scheduler": settings.scheduler.model_copy(update={"retrain_min_pairs": baseline_pairs + 1})})
        second = JobRunner(JobContext(due, svc.store, lambda: svc)).run("sync")
        assert second.ok, [s.as_dict() for s in second.steps if s.status != "ok"]
        steps = [s.job for s in second.steps]
        assert steps == ["sync:calc", "ingest:calc", "sync:lectures", "ingest:lectures", "sync:issues", "qa", "retrain",
                         "evaluate", "promote"]
        by_job = {s.job: s.counts for s in second.steps}
        assert by_job["sync:calc"]["commits"] == 1 and by_job["sync:calc"]["files"] == 1
        assert by_job["sync:lectures"]["new"] == 1 and by_job["sync:issues"]["changed"] is False

        # Only the new commit, its file and the new lecture were ingested; nothing else was rewritten.
        after = _sources(svc)
        assert set(after) - set(before) == {"code:calc:calc/ledger.py", f"commit:calc:{sha}", "transcript:lectures/gradient"}
        assert all(after[k] == at for k, at in before.items()), "sources that did not change were not written again"
        assert (by_job["ingest:calc"]["added"], by_job["ingest:calc"]["updated"], by_job["ingest:calc"]["removed"]) == (2, 0, 0)
        assert (by_job["ingest:lectures"]["added"], by_job["ingest:lectures"]["unchanged"]) == (1, 1)

        # QA pairs were made for the new sources, and only for them.
        pairs_after = _pairs_by_source(svc)
        with svc.store.session() as s:
            ids = dict(s.execute(select(Source.key, Source.id)).tuples().all())
        assert pairs_after[ids["code:calc:calc/ledger.py"]] > 0 and pairs_after[ids["transcript:lectures/gradient"]] > 0
        assert {k: v for k, v in pairs_after.items() if k in pairs_before} == pairs_before, "existing pairs kept as they were"
        assert by_job["qa"]["regenerated"] == 3 and by_job["qa"]["retired"] == 0

        # Training ran, the gate's evaluation is recorded, and its decision was applied.
        name = by_job["retrain"]["adapter"]
        assert name.startswith("auto-") and by_job["retrain"]["steps"] >= 1
        adapter = Registry(svc.store).get(name)
        gate = adapter.metrics["gate"]
        assert Path(gate["report"]).is_file() and gate["examples"] >= 1
        assert by_job["evaluate"]["passed"] == gate["decision"]["passed"]
        assert set(by_job["evaluate"]["candidate"]) == set(gate["metrics"]["candidate"]) and by_job["evaluate"]["candidate"]
        # The gate scored both models with the answer benchmark's metrics and measured the noise.
        assert gate["decision"]["main_metric"] == "verified_and_cites_gold"
        assert {"verified_and_cites_gold", "rougeL", "abstention", "false_abstention"} <= set(gate["metrics"]["candidate"])
        assert set(gate["metrics"]["current"]) == set(gate["metrics"]["candidate"]) and gate["current"] == "base"
        assert set(gate["decision"]["noise"]) >= {"verified_and_cites_gold", "rougeL"}
        assert by_job["promote"]["promoted"] == gate["decision"]["passed"] is True
        assert adapter.status == "promoted"
        assert not [p for p in settings.adapters_dir.iterdir() if p.name.startswith(".partial-")]
        # Trained on the evidence-line prompt, with targets that pass the served check.
        run = json.loads((Path(adapter.path) / "run.json").read_text())
        assert run["examples"] >= 1 and "sentences_dropped" in run["targets"]
        rows_trained = [json.loads(x) for x in (Path(adapter.path) / "data.jsonl").read_text().splitlines()]
        assert all(r["prompt"][-1]["content"].startswith("Sources:\n\n[S1] ") for r in rows_trained)

        # The served default (the `lorebase` model id) now runs on the promoted adapter.
        async def served() -> tuple[str | None, list[str]]:
            await svc.start_generator()
            try:
                assert svc.generator is not None
                return await svc.conversation.resolve_model(settings.server.model_alias), await svc.generator.models()
            finally:
                await svc.aclose()

        chosen, loaded = asyncio.run(served())
        assert chosen == name and name in loaded

        # The history holds one row per step of this run, in order, each ok.
        rows = [r for r in reversed(history.runs(svc.store, limit=100)) if r["id"] > last_id]
        assert [(r["job"], r["status"], r["attempt"]) for r in rows] == [(j, "ok", 1) for j in steps]
        assert all(r["finished_at"] is not None and r["seconds"] is not None for r in rows)

        # Nothing new since: the next sync looks, ingests nothing, and does not train again.
        third = JobRunner(JobContext(due, svc.store, lambda: svc)).run("sync")
        assert [s.job for s in third.steps] == ["sync:calc", "sync:lectures", "sync:issues"]
        assert third.retrain is not None and third.retrain["due"] is False
    finally:
        svc.store.close()


# --- killed mid-ingest --------------------------------------------------------------------------------


def _big_repo(root: Path, files: int) -> Path:
    """Many one-line modules: many sources (time to be killed among them), one chunk each (little to embed)."""
    from tests.ingest.gitrepo_helpers import TempRepo

    repo = TempRepo(root / "big")
    for i in range(files):
        repo.write(f"pkg/mod_{i:04d}.py", f"LIMIT_{i} = {i}\n")
    repo.commit("Many modules")
    return repo.path


def _state(settings: Settings) -> dict[str, Any]:
    """What must agree with a clean run: sources, chunks, QA pairs and the dense index."""
    svc = Services.build(settings)
    try:
        rebuilt = svc.indexer.open()  # checks the saved index against the store
        status = svc.indexer.status()
        with svc.store.session() as s:
            sources = sorted(s.execute(select(Source.key, Source.content_hash)).tuples().all())
            chunks = sorted(s.execute(select(Source.key, Chunk.ordinal, Chunk.content_hash)
                                      .join(Source, Chunk.source_id == Source.id)).tuples().all())
            pairs = sorted(s.execute(select(QAPair.question, QAPair.answer).where(QAPair.retired_at.is_(None))).tuples().all())
        return {"sources": sources, "chunks": chunks, "pairs": pairs, "vectors": status["count"],
                "pending": status["pending"], "tombstones": status["tombstones"], "rebuilt": rebuilt}
    finally:
        svc.store.close()


def test_a_sync_killed_mid_ingest_and_run_again_equals_a_clean_run(tmp_path: Path) -> None:
    repo = _big_repo(tmp_path / "corpus", FILES)
    lectures = tmp_path / "corpus" / "lectures"
    lectures.mkdir()
    for i in range(3):
        (lectures / f"lecture-{i}.vtt").write_text(vtt(f"Lecture {i} explains topic number {i} in plain words.",
                                                       f"Then lecture {i} works through an example of topic {i}."), encoding="utf-8")
    sources = [{"name": "big", "spec": str(repo), "interval_s": 3600}, {"name": "lectures", "spec": str(lectures), "interval_s": 3600}]
    config = tmp_path / "lorebase.yaml"
    # A short commit diff: the vectors to embed are about one per module (this machine embeds slowly).
    options = {"scheduler": {"sources": sources, "retrain_min_pairs": 1_000_000, "eval_cron": None},
               "ingest": {"max_diff_lines": 10}}
    config.write_text(yaml.safe_dump(options))

    def command(home: Path) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, "LOREBASE_CONFIG": str(config), "LOREBASE_HOME": str(home),
               "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        return [sys.executable, "-m", "lorebase", "jobs", "run", "sync", "--json"], env

    home = tmp_path / "killed"
    cmd, env = command(home)
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    db = home / "lorebase.db"
    written = 0
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                    try:
                        running = con.execute("SELECT count(*) FROM job_runs WHERE job='ingest:big' AND status='running'").fetchone()[0]
                        written = con.execute("SELECT count(*) FROM sources").fetchone()[0]
                    finally:
                        con.close()
                except sqlite3.Error:  # the schema is still being made
                    running = 0
                if running and written >= 25:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.wait(timeout=60)
        log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    con = sqlite3.connect(db)
    left = con.execute("SELECT count(*) FROM sources").fetchone()[0]
    status = con.execute("SELECT status FROM job_runs WHERE job='ingest:big'").fetchall()
    con.close()
    assert 25 <= left < FILES, f"killed mid-ingest: {left} of {FILES}+ sources were written"
    assert status == [("running",)]

    again = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads(again.stdout)
    assert summary["ok"] and [s["job"] for s in summary["steps"]] == ["sync:big", "ingest:big", "sync:lectures",
                                                                     "ingest:lectures", "qa"]

    clean_home = tmp_path / "clean"
    clean_settings = scheduler_settings(clean_home, sources, ingest=options["ingest"])
    clean_settings.ensure_home()
    svc = Services.build(clean_settings)
    try:
        assert JobRunner(JobContext.of(svc)).run("sync").ok
    finally:
        svc.store.close()

    killed_settings = load_settings(home=home, **options)
    got, want = _state(killed_settings), _state(clean_settings)
    assert got["rebuilt"] is None, f"the index had to be rebuilt: {got['rebuilt']}"
    assert len(got["sources"]) == len(want["sources"]) > FILES
    assert got["sources"] == want["sources"], "same sources, none twice, none missing"
    assert got["chunks"] == want["chunks"]
    assert got["vectors"] == len(got["chunks"]) == want["vectors"]
    assert got["pending"] == got["tombstones"] == 0
    assert got["pairs"] == want["pairs"]

    con = sqlite3.connect(db)
    rows = con.execute("SELECT job, status FROM job_runs ORDER BY id").fetchall()
    con.close()
    assert ("ingest:big", "interrupted") in rows and ("ingest:big", "ok") in rows
    assert not [r for r in rows if r[1] == "running"]
