"""Honest readiness: until the generator answers, /healthz says `starting` (503, Retry-After, what is
still loading), /v1/models lists what will be served, and requests that need the engine get 503
with Retry-After; `lorebase serve` prints its URL only once the service answers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from lorebase.api.app import create_app
from lorebase.finetune.registry import Registry
from lorebase.services import Services
from lorebase.store.models import AdapterVersion
from tests.api.conftest import api_settings, free_port, ingest_corpus
from tests.conftest import REPO_ROOT

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"
CHAT = {"model": "lorebase", "messages": [{"role": "user", "content": "When is a failed job retried?"}], "max_tokens": 4}


@pytest.fixture
def not_started(tmp_path: Path, tiny_llama: Path) -> Iterator[tuple[TestClient, Services]]:
    """The app before its generator has started: the services are up, the engine is not."""
    settings = api_settings(tmp_path / "home", tiny_llama)
    ingest_corpus(settings, tmp_path)
    svc = Services.build(settings)
    with svc.store.session() as s:
        s.add(AdapterVersion(name="tuned-1", path=str(tmp_path / "tuned-1"), base_model="tiny", data_hash="0" * 64, status="candidate"))
    Registry(svc.store).promote("tuned-1")
    try:
        with TestClient(create_app(settings, services=svc, start_generator=False)) as client:
            yield client, svc
    finally:
        svc.store.close()


@pytest.mark.slow  # builds the services (embedder, index)
def test_while_the_generator_starts_health_models_and_chat_say_so(not_started: tuple[TestClient, Services], tiny_llama: Path) -> None:
    client, svc = not_started
    svc.readiness.begin("generator", "vLLM: loading the model")

    health = client.get("/healthz")
    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    body = health.json()
    assert body["status"] == "starting" and body["generator"] == "starting"
    assert body["loading"]["generator"].startswith("vLLM: loading the model (")
    assert body["chunks"] > 0  # the store and index are up meanwhile

    cards = {c["id"]: c for c in client.get("/v1/models").json()["data"]}
    assert cards[tiny_llama.name]["ready"] is False
    assert cards["tuned-1"]["parent"] == tiny_llama.name and cards["tuned-1"]["ready"] is False
    assert cards["lorebase"]["parent"] == "tuned-1", "the alias names what it will serve: the promoted adapter"

    chat = client.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503 and chat.headers["Retry-After"] == "5"
    err = chat.json()["error"]
    assert err["code"] == "engine_unavailable" and "vLLM: loading the model" in err["message"]
    summary = client.post("/v1/summaries", json={"source_ids": ["src_any"]})
    assert summary.status_code == 503 and "Retry-After" in summary.headers
    assert client.post("/v1/search", json={"query": "retried with exponential backoff"}).status_code == 200

    svc.readiness.fail("generator", "the vLLM server exited while starting (code 1)")
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["failed"] == {"generator": "the vLLM server exited while starting (code 1)"}
    chat = client.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503 and "Retry-After" not in chat.headers, "a failed start does not end by waiting"
    assert "did not start" in chat.json()["error"]["message"]


def _reader(stream: object, lines: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is missing: run `make install-vllm`")
def test_lorebase_serve_is_honest_while_vllm_starts(tmp_path: Path, tiny_llama: Path) -> None:
    """`lorebase serve` on the real vLLM server: starting (503) until the model answers, then the URL."""
    home, port = tmp_path / "home", free_port()
    settings = api_settings(home, tiny_llama)
    ingest_corpus(settings, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOREBASE_")}
    env.update({
        "LOREBASE_HOME": str(home), "LOREBASE_MODELS__GENERATOR": str(tiny_llama), "LOREBASE_GENERATION__BACKEND": "vllm",
        "LOREBASE_GENERATION__VLLM_PYTHON": str(VLLM_PYTHON), "LOREBASE_GENERATION__VLLM_PORT": str(free_port()),
        "LOREBASE_GENERATION__VLLM_KV_CACHE_GIB": "1", "LOREBASE_UI__ENABLED": "false", "LOREBASE_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
    })
    proc = subprocess.Popen([sys.executable, "-m", "lorebase", "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out: list[str] = []
    err: list[str] = []
    for stream, sink in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=_reader, args=(stream, sink), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    seen_starting = False
    try:
        deadline = time.monotonic() + 400
        while not out:
            assert proc.poll() is None, "".join(err)[-3000:]
            assert time.monotonic() < deadline, "the server did not become ready:\n" + "".join(err)[-3000:]
            try:
                health = httpx.get(url + "/healthz", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.2)  # the port is not open yet
                continue
            if out:  # ready in the meantime
                break
            if health.status_code == 503:
                seen_starting = True
                assert health.json()["status"] == "starting" and "generator" in health.json()["loading"]
                assert health.headers["Retry-After"]
                models = httpx.get(url + "/v1/models", timeout=5)
                assert models.status_code == 200
                assert {c["id"] for c in models.json()["data"]} >= {tiny_llama.name, "lorebase"}
                chat = httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=30)
                if not out:
                    assert chat.status_code == 503 and chat.headers["Retry-After"], chat.text
            time.sleep(0.5)
        assert seen_starting, "the port should open (and say so) long before vLLM serves"
        assert out[0].startswith(f"lorebase API: {url}/v1"), out
        # The URL is printed only once everything answers: a client may use it at once.
        health = httpx.get(url + "/healthz", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok" and "loading" not in health.json()
        cards = httpx.get(url + "/v1/models", timeout=5).json()["data"]
        assert all(c.get("ready") is not False for c in cards)
        chat = httpx.post(url + "/v1/chat/completions", json={**CHAT, "mode": "chat"}, timeout=60)
        assert chat.status_code == 200 and chat.json()["usage"]["completion_tokens"] > 0
        progress = "".join(err)
        assert "lorebase: starting: generator: vLLM: loading" in progress
        assert "Uvicorn running on" not in progress, "uvicorn must not announce the URL before the service is ready"
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
