"""A real lorebase server (uvicorn on a free port) over a small ingested corpus, with the
in-process transformers backend on the tiny offline Llama. Every server here runs once on SQLite
and once on a real PostgreSQL server (``api_db``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from lorebase.api.app import create_app
from lorebase.generation.backend import Generator
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from tests.conftest import DATABASES, REPO_ROOT

VTT = """WEBVTT

00:00:00.000 --> 00:00:06.000
Today we study the scheduler of our course project.

00:00:06.000 --> 00:00:14.000
A failed job is retried three times with exponential backoff, starting at thirty seconds.

00:01:10.000 --> 00:01:20.000
Reciprocal rank fusion adds one over sixty plus the rank for each retriever.
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    url: str
    settings: Settings
    app: object


@pytest.fixture(scope="module", params=DATABASES)
def api_db(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The database of a module's server: None for SQLite in its data home, or the URL of a new
    database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield None
        return
    pg = request.getfixturevalue("postgres_server")
    url = pg.create_database("api")
    yield url
    pg.drop_database(url)


def api_settings(home: Path, tiny_llama: Path, database_url: str | None = None, **server: object) -> Settings:
    return load_settings(
        home=home,
        database_url=database_url,
        models={"generator": str(tiny_llama)},
        generation={"backend": "transformers", "max_new_tokens": 24, "max_model_len": 2048},
        server={"port": free_port(), **server},
        ingest={"api_roots": [str(home / "inbox")]},
    )


def ingest_corpus(settings: Settings, tmp: Path) -> None:
    lectures = tmp / "lectures"
    lectures.mkdir()
    (lectures / "scheduler.vtt").write_text(VTT)
    svc = Services.build(settings)
    try:
        report = svc.ingest.ingest([str(lectures), str(REPO_ROOT / "datasets" / "github" / "lorebase-issues.json")])
        assert report.ok, report.errors
    finally:
        svc.store.close()


def serve(settings: Settings, *, generator: Generator | None = None, timeout_s: float = 120) -> Iterator[Running]:
    """`generator`: run on this one instead of the configured backend; `timeout_s`: the longest wait for it to answer."""
    app = create_app(settings, generator=generator)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.server.host, port=settings.server.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://{settings.server.host}:{settings.server.port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).json().get("generator") == "up":
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        server.should_exit = True
        raise RuntimeError("the test server did not come up")
    try:
        yield Running(url, settings, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, api_db: str | None) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("api")
    settings = api_settings(tmp / "home", tiny_llama, api_db)
    ingest_corpus(settings, tmp)
    yield from serve(settings)
