"""`lorebase jobs …` and `lorebase scheduler run`, through the real entry point and a real process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lorebase.cli.main import main
from lorebase.scheduler.changes import probe, save_listing
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import SyncCursor
from tests.conftest import REPO_ROOT
from tests.scheduler.conftest import Corpus


def _configure(tmp_path: Path, corpus: Corpus, **scheduler: Any) -> Path:
    """lorebase.yaml in the working directory (the tests run in tmp_path), both sources already ingested."""
    options = {"home": str(tmp_path / "home"),
               "scheduler": {"sources": corpus.sources(), "backoff_s": 0.01, "eval_cron": None, **scheduler}}
    config = tmp_path / "lorebase.yaml"
    config.write_text(yaml.safe_dump(options))
    settings = load_settings()
    settings.ensure_home()
    store = Store(settings.db_url)
    with store.session() as s:
        s.add(SyncCursor(name="git:calc:main", value=corpus.repo.head()))
    save_listing(store, probe(settings.scheduler.sources[1], settings, store))
    store.close()
    return config


def test_jobs_commands_list_run_pause_resume_and_show_history(tmp_path: Path, corpus: Corpus,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    _configure(tmp_path, corpus)
    assert main(["jobs", "sources"]) == 0
    out = capsys.readouterr().out
    assert "calc" in out and "every 3600 s" in out and "branch main" in out and "lectures" in out

    assert main(["jobs", "run", "sync:calc", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["ok"] and [(s["job"], s["counts"]["changed"]) for s in summary["steps"]] == [("sync:calc", False)]
    assert "sync:calc: started" in captured.err, "progress goes to stderr"

    assert main(["jobs", "run", "sync"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("job sync: ok") and "sync:lectures" in out and "retraining not due" in out

    assert main(["jobs", "run", "nope"]) == 2
    assert "no job named 'nope'" in capsys.readouterr().err

    assert main(["jobs", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "every 1:00:00" in rows["sync:calc"] and "ok at" in rows["sync:calc"] and "on demand" in rows["qa"]

    assert main(["jobs", "pause", "sync:calc"]) == 0
    assert capsys.readouterr().out.strip() == "paused: sync:calc"
    main(["jobs", "list", "--json"])
    listed = {j["id"]: j for j in json.loads(capsys.readouterr().out)}
    assert listed["sync:calc"]["paused"] is True and listed["sync:lectures"]["paused"] is False
    assert main(["jobs", "resume"]) == 0
    assert capsys.readouterr().out.strip() == "resumed: sync:calc, sync:lectures"

    assert main(["jobs", "history", "--json", "--job", "sync"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(r["job"], r["status"]) for r in history] == [("sync:lectures", "ok"), ("sync:calc", "ok"), ("sync:calc", "ok")]
    assert main(["jobs", "history"]) == 0
    assert "sync:lectures" in capsys.readouterr().out


def test_a_failing_job_exits_1_after_its_attempts(tmp_path: Path, corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    config = _configure(tmp_path, corpus, max_attempts=2)
    data = yaml.safe_load(config.read_text())
    data["scheduler"]["sources"].append({"name": "gone", "spec": f"file://{tmp_path}/none.git", "interval_s": 60})
    config.write_text(yaml.safe_dump(data))
    assert main(["jobs", "run", "sync:gone"]) == 1
    out = capsys.readouterr().out
    assert "job sync:gone: FAILED" in out and "2 attempts" in out and "git clone failed" in out


@pytest.mark.slow
def test_scheduler_run_fires_jobs_and_stops_on_sigterm(tmp_path: Path, corpus: Corpus) -> None:
    config = tmp_path / "lorebase.yaml"
    _configure(tmp_path, corpus)
    data = yaml.safe_load(config.read_text())
    data["scheduler"]["sources"] = [dict(s, interval_s=1.0) for s in data["scheduler"]["sources"]]
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lorebase", "scheduler", "run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    db = tmp_path / "home" / "lorebase.db"
    try:
        deadline = time.monotonic() + 90
        seen: set[tuple[str, str]] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            seen = set(con.execute("SELECT job, status FROM job_runs").fetchall())
            con.close()
            if {("sync:calc", "ok"), ("sync:lectures", "ok")} <= seen:
                break
            time.sleep(0.2)
        assert {("sync:calc", "ok"), ("sync:lectures", "ok")} <= seen, seen
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "scheduler running for" in out and "sync:calc (every 0:00:01)" in out and "stopping" in out
