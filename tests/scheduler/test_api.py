"""/v1/jobs through the real app (fastapi's TestClient runs its lifespan): listing, running,
pausing, the run history, and tracked sources added and removed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lorebase.api.app import create_app
from lorebase.services import Services
from lorebase.settings import Settings
from lorebase.store.locks import JobLock
from tests.scheduler.conftest import LECTURE_2, Corpus, scheduler_settings

pytestmark = pytest.mark.slow  # builds the services (embedder, index)


def _settings(tmp_path: Path, corpus: Corpus, **scheduler: Any) -> Settings:
    s = scheduler_settings(tmp_path / "home", corpus.sources(), scheduler=scheduler,
                           ingest={"api_roots": [str(tmp_path / "inbox")]}, ui={"enabled": False})
    s.ensure_home()
    return s


@pytest.fixture
def client(tmp_path: Path, corpus: Corpus) -> Iterator[tuple[TestClient, Settings]]:
    settings = _settings(tmp_path, corpus)
    svc = Services.build(settings)
    try:
        with TestClient(create_app(settings, services=svc, start_generator=False)) as c:
            yield c, settings
    finally:
        svc.store.close()


def _wait_for(c: TestClient, job: str, status: str = "ok", timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = c.get("/v1/jobs/runs", params={"job": job}).json()["data"]
        if any(r["status"] == status for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"no {status} run of {job}: {rows}")


def test_jobs_are_listed_run_paused_and_recorded(client: tuple[TestClient, Settings], corpus: Corpus) -> None:
    c, settings = client
    listed = {j["id"]: j for j in c.get("/v1/jobs").json()["data"]}
    assert list(listed) == ["sync", "qa", "retrain", "eval", "tune_embedder", "sync:calc", "sync:lectures"]
    assert listed["sync:calc"]["schedule"] == "every 1:00:00" and listed["sync:calc"]["paused"] is False
    assert listed["sync:calc"]["options"] == {"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
    assert listed["qa"]["schedule"] is None and listed["sync:calc"]["last_run"] is None

    r = c.post("/v1/jobs/sync:lectures/run")
    assert r.status_code == 202 and r.json()["job"] == "sync:lectures"
    rows = _wait_for(c, "ingest:lectures")
    ingest = next(x for x in rows if x["job"] == "ingest:lectures")
    assert ingest["counts"]["added"] == 1 and ingest["counts"]["source"] == "lectures"
    _wait_for(c, "qa")
    last = {j["id"]: j for j in c.get("/v1/jobs").json()["data"]}["sync:lectures"]["last_run"]
    assert last["status"] == "ok" and last["counts"]["changed"] is True

    held = JobLock(settings, "sync:calc")
    assert held.acquire()
    try:
        busy = c.post("/v1/jobs/sync:calc/run")
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "conflict"
    finally:
        held.release()
    assert c.post("/v1/jobs/nope/run").status_code == 404

    assert c.post("/v1/jobs/sync:calc/pause").json()["jobs"] == ["sync:calc"]
    assert {j["id"]: j["paused"] for j in c.get("/v1/jobs").json()["data"]}["sync:calc"] is True
    assert c.post("/v1/jobs/sync:calc/resume").status_code == 200
    assert {j["id"]: j["paused"] for j in c.get("/v1/jobs").json()["data"]}["sync:calc"] is False
    assert c.post("/v1/jobs/qa/pause").status_code == 404, "only scheduled jobs pause"

    assert c.get("/v1/jobs/runs", params={"limit": 0}).status_code == 400
    failed = c.get("/v1/jobs/runs", params={"status": "failed"}).json()["data"]
    assert failed == []


def test_tracked_sources_are_added_checked_and_removed(client: tuple[TestClient, Settings], tmp_path: Path) -> None:
    c, settings = client
    inbox = tmp_path / "inbox" / "course"
    inbox.mkdir(parents=True)
    (inbox / "gd.vtt").write_text(LECTURE_2, encoding="utf-8")
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    refused = c.post("/v1/jobs/sources", json={"name": "x", "spec": str(outside), "interval_s": 60})
    assert refused.status_code == 400 and "api_roots" in refused.json()["error"]["message"]
    bad_cron = c.post("/v1/jobs/sources", json={"name": "x", "spec": str(inbox), "cron": "61 * * * *"})
    assert bad_cron.status_code == 400 and "invalid schedule" in bad_cron.json()["error"]["message"]
    both = c.post("/v1/jobs/sources", json={"name": "x", "spec": str(inbox), "cron": "0 * * * *", "interval_s": 5})
    assert both.status_code == 400

    made = c.post("/v1/jobs/sources", json={"name": "course", "spec": str(inbox), "cron": "0 * * * *"})
    assert made.status_code == 201 and made.json()["origin"] == "api" and made.json()["job"] == "sync:course"
    assert c.post("/v1/jobs/sources", json={"name": "course", "spec": str(inbox), "interval_s": 60}).status_code == 409
    names = [(t["name"], t["origin"]) for t in c.get("/v1/jobs/sources").json()["data"]]
    assert names == [("calc", "settings"), ("lectures", "settings"), ("course", "api")]
    listed = {j["id"]: j for j in c.get("/v1/jobs").json()["data"]}
    assert listed["sync:course"]["schedule"] == "cron 0 * * * *"

    assert c.post("/v1/jobs/sync:course/run").status_code == 202
    rows = _wait_for(c, "ingest:course")
    assert next(r for r in rows if r["job"] == "ingest:course")["counts"]["added"] == 1

    assert c.delete("/v1/jobs/sources/calc").status_code == 400
    gone = c.delete("/v1/jobs/sources/course")
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert "sync:course" not in {j["id"] for j in c.get("/v1/jobs").json()["data"]}
    assert c.delete("/v1/jobs/sources/course").status_code == 404


def test_the_server_runs_the_scheduler_when_enabled_and_keys_guard_the_routes(tmp_path: Path, corpus: Corpus) -> None:
    settings = _settings(tmp_path, corpus, enabled=True)
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"api_keys": [SecretStr("k1")]})})
    svc = Services.build(settings)
    try:
        app = create_app(settings, services=svc, start_generator=False)
        with TestClient(app) as c:
            assert app.state.scheduler.mode == "running"
            assert c.get("/v1/jobs").status_code == 401
            assert c.get("/v1/jobs", headers={"Authorization": "Bearer k1"}).status_code == 200
            auth = {"Authorization": "Bearer k1"}

            def calc_runs() -> list[dict[str, Any]]:
                rows = c.get("/v1/jobs/runs", params={"job": "sync:calc"}, headers=auth).json()["data"]
                return [x for x in rows if x["status"] == "ok"]

            deadline = time.monotonic() + 90
            while not calc_runs() and time.monotonic() < deadline:  # a new source is synced at once, unasked
                time.sleep(0.2)
            assert calc_runs(), "the scheduler did not sync the newly tracked source"
            def calc_running() -> bool:
                return {j["id"]: j["running"] for j in c.get("/v1/jobs", headers=auth).json()["data"]}["sync:calc"]

            while calc_running() and time.monotonic() < deadline:
                time.sleep(0.2)
            r = c.post("/v1/jobs/sync:calc/run", headers=auth)
            assert r.status_code == 202 and r.json()["via"] == "scheduler"
            while len(calc_runs()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(calc_runs()) == 2, "the run asked for went through the scheduler"
        assert app.state.scheduler.mode == "stopped"
    finally:
        svc.store.close()
