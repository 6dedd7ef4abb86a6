"""Requests a hostile client or a careless user sends: each gets a 4xx in OpenAI's error shape and
the server keeps serving. The real app through FastAPI's TestClient (its lifespan runs), on real
services (store, embedder, index) without a generator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lorebase.api.app import create_app
from lorebase.services import Services
from lorebase.settings import Settings, load_settings

pytestmark = pytest.mark.slow  # builds the services (embedder, index)

TOO_BIG = 2**63  # one past SQLite's largest integer


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    (home / "inbox").mkdir()
    s = load_settings(home=home / "home", ingest={"api_roots": [str(home / "inbox")]}, ui={"enabled": False})
    s.ensure_home()
    return s


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    svc = Services.build(settings)
    try:
        with TestClient(create_app(settings, services=svc, start_generator=False), raise_server_exceptions=False) as c:
            yield c
    finally:
        svc.store.close()


def assert_openai_error(r: object, status: int = 400) -> dict[str, object]:
    assert r.status_code == status, (r.status_code, r.text)  # type: ignore[attr-defined]
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    return err


def post_raw(c: TestClient, url: str, body: str) -> object:
    """A body sent exactly as written: json= would refuse to encode a lone surrogate itself."""
    return c.post(url, content=body.encode("ascii"), headers={"content-type": "application/json"})


@pytest.mark.parametrize(("method", "url", "param"), [
    ("GET", f"/v1/ingest/runs/{TOO_BIG}", "path.run_id"),
    ("GET", f"/v1/eval/runs/{TOO_BIG}", "path.run_id"),
    ("POST", f"/v1/feedback/{TOO_BIG}/review", "path.feedback_id"),
    ("GET", "/v1/ingest/runs/0", "path.run_id"),
])
def test_ids_beyond_64_bits_are_a_400_naming_the_id(client: TestClient, method: str, url: str, param: str) -> None:
    err = assert_openai_error(client.request(method, url, json={"action": "reject"}))
    assert err["param"] == param
    # the largest id that fits is simply not found
    largest = url.replace(str(TOO_BIG), str(TOO_BIG - 1))
    if largest != url:
        assert client.request(method, largest, json={"action": "reject"}).status_code == 404


def test_a_summary_number_beyond_64_bits_is_a_400(client: TestClient) -> None:
    err = assert_openai_error(client.post("/v1/summaries", json={"repo": "o/r", "number": TOO_BIG}))
    assert err["param"] == "number"


@pytest.mark.parametrize(("url", "body", "param"), [
    ("/v1/search", r'{"query": "retry \ud800 x"}', "query"),
    ("/v1/search", r'{"query": "retry \ud800 x", "mode": "dense"}', "query"),
    ("/v1/search", r'{"query": "ok", "filters": {"kind\udc00": "code"}}', r"filters.kind\udc00"),
    ("/v1/chat/completions", r'{"model": "m", "messages": [{"role": "user", "content": "hi \ud800"}]}', "messages.0.content"),
    ("/v1/embeddings", r'{"model": "all-minilm-l6-v2", "input": ["fine", "bad \udfff"]}', "input.1"),
    ("/v1/summaries", r'{"lecture": "\ud83d"}', "lecture"),
    ("/v1/ingest", r'{"sources": ["\ud800"]}', "sources.0"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(client: TestClient, url: str, body: str, param: str) -> None:
    err = assert_openai_error(post_raw(client, url, body))
    assert err["param"] == param  # a surrogate in a key is shown escaped
    assert "surrogate" in str(err["message"]) and str(err["message"]).startswith(str(err["param"]))


def test_a_surrogate_pair_is_ordinary_text(client: TestClient) -> None:
    r = post_raw(client, "/v1/search", r'{"query": "retry \ud83d\ude00 backoff"}')  # an emoji, spelt as a pair
    assert r.status_code == 200  # type: ignore[attr-defined]


def test_a_nul_in_a_source_spec_is_a_400(client: TestClient) -> None:
    err = assert_openai_error(client.post("/v1/ingest", json={"sources": ["ok", "a\u0000b"]}))
    assert err["param"] == "sources.1" and "NUL" in str(err["message"])
    err = assert_openai_error(client.post("/v1/jobs/sources", json={"name": "n", "spec": "a\u0000b", "interval_s": 60}))
    assert err["param"] == "spec" and "NUL" in str(err["message"])


@pytest.mark.parametrize("interval", [1e308, 1e12, 366 * 86400 + 1])
def test_a_huge_sync_interval_is_a_400(client: TestClient, interval: float) -> None:
    err = assert_openai_error(client.post("/v1/jobs/sources", json={
        "name": "far", "spec": "https://example.org/r.git", "interval_s": interval}))
    assert err["param"] == "interval_s"


def test_the_server_still_serves_after_all_of_it(client: TestClient) -> None:
    for _ in range(3):
        post_raw(client, "/v1/search", r'{"query": "\ud800"}')
        client.get(f"/v1/ingest/runs/{TOO_BIG}")
    health = client.get("/healthz")  # alive and saying so (no generator is started here: "starting")
    assert health.status_code in (200, 503) and health.json()["status"] in ("ok", "starting", "degraded")
    assert client.post("/v1/search", json={"query": "anything"}).status_code == 200


def wait_for_run(c: TestClient, run_id: int) -> dict[str, object]:
    for _ in range(300):
        run = c.get(f"/v1/ingest/runs/{run_id}").json()
        if run["status"] != "running":
            return run
        time.sleep(0.1)
    raise AssertionError(f"ingest run {run_id} did not end")


def test_no_form_of_a_local_path_leaves_the_api_roots(client: TestClient, settings: Settings, home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = home / "inbox"
    outside = home / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "talk.srt").write_text("1\n00:00:01,000 --> 00:00:04,000\nA secret lecture about llamas.\n")
    monkeypatch.chdir(inbox)  # where the reported bypass needed the server to run
    for spec in (f"file://localhost{outside}", f"file://{outside}", f"FILE://LOCALHOST{outside}", "../outside",
                 f"{inbox}/../outside", "~", str(outside / "talk.srt")):
        err = assert_openai_error(client.post("/v1/ingest", json={"sources": [spec]}))
        assert "api_roots" in str(err["message"]), spec
        err = assert_openai_error(client.post("/v1/jobs/sources", json={"name": "x", "spec": spec, "interval_s": 60}))
        assert "api_roots" in str(err["message"]), spec
    assert client.get("/v1/ingest/runs").json()["data"] == []  # nothing was started

    (inbox / "week1").mkdir()
    (inbox / "week1" / "talk.srt").write_text("1\n00:00:01,000 --> 00:00:04,000\nThe inbox lecture is about zebras.\n")
    monkeypatch.chdir(outside)  # a relative path is relative to the root, wherever the server runs
    r = client.post("/v1/ingest", json={"sources": ["week1"]})
    assert r.status_code == 202, r.text
    run = wait_for_run(client, r.json()["id"])
    assert run["inputs"] == [str((inbox / "week1").resolve())] and run["status"] == "ok" and run["added"] == 1


# --- the OpenAPI document, 405, chunked bodies, URL hosts -------------------------------------------


def test_openapi_declares_each_routes_errors_in_openai_shape_and_no_422(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert set(doc["components"]["schemas"]["ErrorResponse"]["properties"]) == {"error"}
    ops = {(m.upper(), path): op for path, item in doc["paths"].items() for m, op in item.items()}
    for (method, path), op in ops.items():
        codes = set(op["responses"])
        assert "422" not in codes, (method, path)
        if path.startswith("/v1/"):
            assert {"400", "401", "413", "500"} <= codes, (method, path)
            for code in codes - {"200", "201", "202"}:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorResponse"), (method, path, code)
    assert {"404", "429", "503"} <= set(ops["POST", "/v1/chat/completions"]["responses"])
    assert "404" in ops["GET", "/v1/ingest/runs/{run_id}"]["responses"]
    assert {"404", "409"} <= set(ops["POST", "/v1/feedback/{feedback_id}/review"]["responses"])
    assert "409" in ops["POST", "/v1/ingest"]["responses"]
    run_id = next(p for p in ops["GET", "/v1/ingest/runs/{run_id}"]["parameters"] if p["name"] == "run_id")
    assert run_id["schema"]["maximum"] == TOO_BIG - 1


@pytest.mark.parametrize(("method", "url", "allow"), [
    ("DELETE", "/v1/search", "POST"),
    ("PUT", "/v1/feedback", "GET, POST"),  # two routes share the path: both methods are named
    ("POST", "/v1/ingest/runs/1", "GET"),
    ("DELETE", "/v1/jobs/sources", "GET, POST"),
])
def test_405_names_the_allowed_methods(client: TestClient, method: str, url: str, allow: str) -> None:
    r = client.request(method, url)
    assert r.status_code == 405 and r.headers["allow"] == allow
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and allow in err["message"]


def test_a_chunked_body_over_the_limit_is_a_413(client: TestClient, settings: Settings) -> None:
    piece = b" " * 65536
    pieces = settings.server.max_request_bytes // len(piece) + 5  # about 1.3 MB, with no Content-Length

    def body() -> Iterator[bytes]:
        yield b'{"query": "x"'
        for _ in range(pieces):
            yield piece
        yield b"}"

    r = client.post("/v1/search", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "request_too_large" and "server.max_request_bytes" in r.json()["error"]["message"]
    assert client.post("/v1/search", json={"query": "still serving"}).status_code == 200


KEY = "sk-hostile-test"


@pytest.fixture(scope="module")
def open_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A server bound beyond loopback (so with a key), where URL sources may not point inward."""
    home = tmp_path_factory.mktemp("open")
    s = load_settings(home=home / "home", server={"host": "0.0.0.0", "api_keys": [KEY]}, ui={"enabled": False},
                      ingest={"url_hosts_allowed": ["192.0.2.10"]})
    s.ensure_home()
    svc = Services.build(s)
    try:
        app = create_app(s, services=svc, start_generator=False)
        with TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {KEY}"}) as c:
            yield c
    finally:
        svc.store.close()


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8001/o/r.git",  # the reported case: our own model server's port
    "git@localhost:o/r.git", "ssh://git@127.0.0.1/o/r", "http://2130706433/o/r.git",  # 127.0.0.1 in decimal
    "http://10.1.2.3/o/r.git", "http://169.254.169.254/latest/meta-data.git", "https://0.0.0.0/talks/lec1.mp4",
])
def test_beyond_loopback_url_sources_may_not_point_inward(open_client: TestClient, url: str) -> None:
    err = assert_openai_error(open_client.post("/v1/ingest", json={"sources": [url]}))
    assert "ingest.url_hosts_denied" in str(err["message"])
    err = assert_openai_error(open_client.post("/v1/jobs/sources", json={"name": "inward", "spec": url, "interval_s": 60}))
    assert "ingest.url_hosts_denied" in str(err["message"])


def test_an_allowed_host_passes_and_a_loopback_server_allows_its_own_machine(open_client: TestClient,
                                                                              client: TestClient) -> None:
    r = open_client.post("/v1/jobs/sources", json={"name": "internal", "spec": "http://192.0.2.10/o/r.git", "interval_s": 60})
    assert r.status_code == 201, r.text  # 192.0.2.0/24 is reserved, but listed in ingest.url_hosts_allowed
    r = client.post("/v1/jobs/sources", json={"name": "local", "spec": "http://127.0.0.1:8001/o/r.git", "interval_s": 60})
    assert r.status_code == 201, r.text  # bound to loopback, nothing is denied unless configured


def test_a_second_ingest_while_one_runs_is_a_409_through_the_one_error_handler(client: TestClient, home: Path) -> None:
    lock = client.app.state.ingest_lock  # type: ignore[attr-defined]
    assert lock.acquire(blocking=False)  # an ingest run holds it
    try:
        r = client.post("/v1/ingest", json={"sources": ["week1"]})
    finally:
        lock.release()
    err = assert_openai_error(r, 409)
    assert err["code"] == "ingest_busy" and "already in progress" in str(err["message"])
