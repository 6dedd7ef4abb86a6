"""Two API replicas against one PostgreSQL: two real `lorebase serve` processes, each with its own
data home (its own FAISS and BM25 copy), as on two hosts. A source ingested through one is found on
the other, by its own dense index; a source deleted through one leaves the other's index too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

ZEBRAS = "1\n00:00:01,000 --> 00:00:06,000\nThe field trip lecture says zebras sleep standing up in the savanna.\n"
OKAPI = "1\n00:00:01,000 --> 00:00:06,000\nThe okapi is a forest giraffe with striped legs.\n"


class Replica:
    def __init__(self, root: Path, db_url: str, inbox: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_")}
        env.update({
            "PYTHONPATH": str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            "LOREBASE_HOME": str(root / "home"),
            "LOREBASE_DATABASE_URL": db_url,
            "LOREBASE_INGEST__API_ROOTS": json.dumps([str(inbox)]),
            "LOREBASE_INDEX__FOLLOW_S": "0.5",
            "LOREBASE_UI__ENABLED": "false",
            # No generator: search and ingest are what replicas share; chat would answer 503.
            "LOREBASE_GENERATION__BACKEND": "transformers",
            "LOREBASE_MODELS__GENERATOR": str(root / "no-model"),
        })
        self.log = open(root / "server.log", "wb")  # noqa: SIM115 - the server writes to it
        self.proc = subprocess.Popen([sys.executable, "-m", "lorebase", "serve", "--port", str(self.port)], cwd=root,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_up(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=5).json().get("database") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"replica did not come up: {(self.root / 'server.log').read_text()[-3000:]}")

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/healthz", timeout=30).json()

    def search(self, query: str, mode: str) -> list[dict[str, Any]]:
        r = httpx.post(self.url + "/v1/search", json={"query": query, "top_k": 3, "mode": mode}, timeout=60)
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def ingest(self, spec: str) -> dict[str, Any]:
        r = httpx.post(self.url + "/v1/ingest", json={"sources": [spec]}, timeout=30)
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            run = httpx.get(f"{self.url}/v1/ingest/runs/{run_id}", timeout=30).json()
            if run["status"] != "running":
                return dict(run)
            time.sleep(0.3)
        raise AssertionError("the ingest run did not finish")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def eventually(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Replica, Replica, Path]]:
    inbox = tmp_path / "inbox"  # a folder both hosts see (a shared volume in a real deployment)
    inbox.mkdir()
    a = Replica(tmp_path / "a", postgres_url, inbox)
    b = Replica(tmp_path / "b", postgres_url, inbox)
    try:
        a.wait_up()
        b.wait_up()
        yield a, b, inbox
    finally:
        a.stop()
        b.stop()


def _mentions(hits: list[dict[str, Any]], word: str) -> bool:
    return any(word in h["snippet"] for h in hits)


def test_what_one_replica_ingests_or_deletes_the_other_finds_or_loses(replicas: tuple[Replica, Replica, Path]) -> None:
    a, b, inbox = replicas
    (inbox / "zebras.srt").write_text(ZEBRAS)
    (inbox / "okapi.srt").write_text(OKAPI)
    run = a.ingest(str(inbox))
    assert run["status"] == "ok" and run["added"] == 2, run

    # b embeds the new chunks into its own FAISS copy from the change log: dense search finds them
    eventually(lambda: _mentions(b.search("where do zebras sleep", "dense"), "zebras"), "replica b to find the new source")
    assert _mentions(b.search("zebras savanna", "bm25"), "zebras")
    health = b.health()
    assert health["chunks"] == 2 and health["indexed_vectors"] == 2, health

    (inbox / "zebras.srt").unlink()
    run = a.ingest(str(inbox))  # the folder read again: the lecture that is gone is deleted
    assert run["status"] == "ok" and run["removed"] == 1, run

    # gone from b's results, and its vector gone from b's own index (not just hidden by the store)
    eventually(lambda: b.health()["indexed_vectors"] == 1, "replica b to drop the deleted source's vector")
    assert not _mentions(b.search("where do zebras sleep", "dense"), "zebras")
    assert not _mentions(b.search("zebras savanna", "bm25"), "zebras")
    assert _mentions(b.search("forest giraffe", "hybrid"), "okapi")
    assert b.health()["chunks"] == 1 and a.health()["indexed_vectors"] == 1
