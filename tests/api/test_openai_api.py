"""The OpenAI-compatible API, driven by the real `openai` client against a running server."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from lorebase.citations import Citation
from lorebase.errors import SettingsError
from tests.api.conftest import Running

pytestmark = pytest.mark.slow


def client(api: Running, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.url + "/v1", api_key="unused", max_retries=0, **kw)  # type: ignore[arg-type]


def base_model(api: Running) -> str:
    return client(api).models.list().data[0].id


def test_models_lists_the_base_model_and_the_embedder(api: Running) -> None:
    ids = [m.id for m in client(api).models.list().data]
    assert ids[0] == api.settings.models.generator.rstrip("/").split("/")[-1]
    assert "all-minilm-l6-v2" in ids


def test_answer_non_stream_carries_sources_and_usage(api: Running) -> None:
    r = client(api).chat.completions.create(
        model=base_model(api), messages=[{"role": "user", "content": "How many times is a failed job retried?"}],
        max_tokens=16,
    )
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.usage is not None and r.usage.prompt_tokens > 50  # the sources are in the prompt
    extra = r.model_dump()
    sources = [Citation(**s) for s in extra["sources"]]
    assert sources and sources[0].id == "S1"
    assert any(s.kind == "transcript" and s.start_time is not None for s in sources)
    assert extra["grounding"]["supported"] in (True, False)


def test_answer_stream_role_first_finish_and_sources_last(api: Running) -> None:
    stream = client(api).chat.completions.create(
        model=base_model(api), messages=[{"role": "user", "content": "What does reciprocal rank fusion add up?"}],
        max_tokens=12, stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason in ("stop", "length")
    assert last.usage is not None and last.usage.completion_tokens >= 1
    assert last.model_dump()["sources"][0]["id"] == "S1"
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()


def test_sse_ends_with_done(api: Running) -> None:
    body = {"model": base_model(api), "stream": True, "mode": "chat", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hello"}]}
    with httpx.stream("POST", api.url + "/v1/chat/completions", json=body, timeout=60) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][5:])["object"] == "chat.completion.chunk"


def test_unknown_model_is_a_404_in_openai_shape(api: Running) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client(api).chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    err = e.value.body
    assert isinstance(err, dict) and err["code"] == "model_not_found" and "no-such-model" in err["message"]


def test_validation_errors_are_400_in_openai_shape(api: Running) -> None:
    for body in (
        {"model": "x", "messages": []},
        {"model": "x", "messages": [{"role": "user", "content": "   "}]},
        {"model": "x", "messages": [{"role": "user", "content": "hi"}], "temperature": 9},
        {"messages": [{"role": "user", "content": "hi"}]},
        {"model": "x", "mode": "poem", "messages": [{"role": "user", "content": "hi"}]},  # not a conversation mode
    ):
        r = httpx.post(api.url + "/v1/chat/completions", json=body, timeout=30)
        assert r.status_code == 400, body
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.post(api.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_unknown_filter_key_is_a_clear_400(api: Running) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client(api).chat.completions.create(model=base_model(api), messages=[{"role": "user", "content": "retries?"}],
                                            extra_body={"filters": {"colour": "red"}})
    assert "colour" in str(e.value)


def test_prompt_over_the_context_limit_is_a_400_naming_the_limit(api: Running) -> None:
    history = [{"role": "user", "content": "word " * 3000}, {"role": "assistant", "content": "ok"}]
    with pytest.raises(openai.BadRequestError) as e:
        client(api).chat.completions.create(model=base_model(api), messages=[*history, {"role": "user", "content": "retries?"}])
    assert "2048" in str(e.value)


def test_request_body_over_the_limit_is_refused(api: Running) -> None:
    big = {"model": "x", "messages": [{"role": "user", "content": "a" * (api.settings.server.max_request_bytes + 10)}]}
    r = httpx.post(api.url + "/v1/chat/completions", json=big, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_embeddings(api: Running) -> None:
    r = client(api).embeddings.create(model="all-minilm-l6-v2", input=["first text", "second text"])  # base64
    assert [d.index for d in r.data] == [0, 1] and len(r.data[0].embedding) == 384
    f = client(api).embeddings.create(model="all-minilm-l6-v2", input="first text", encoding_format="float")
    assert f.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-6)
    assert sum(x * x for x in f.data[0].embedding) == pytest.approx(1.0, abs=1e-3)  # normalised
    with pytest.raises(openai.NotFoundError):
        client(api).embeddings.create(model="text-embedding-3-small", input="x")


def test_search_feedback_and_health(api: Running) -> None:
    r = httpx.post(api.url + "/v1/search", json={"query": "exponential backoff retries", "top_k": 3}, timeout=60)
    assert r.status_code == 200
    hits = [Citation(**c) for c in r.json()["data"]]
    assert hits and hits[0].kind == "transcript" and hits[0].start_time is not None
    assert httpx.post(api.url + "/v1/search", json={"query": " "}, timeout=30).status_code == 400
    assert httpx.post(api.url + "/v1/search", json={"query": "x", "top_k": 0}, timeout=30).status_code == 400

    verdict = {"mode": "generated", "supported": False, "abstained": False, "reason": "nothing could be verified"}
    fb = {"rating": "down", "question": "q?", "answer": "a [S1]", "comment": "wrong", "sources": [hits[0].model_dump()],
          "grounding": verdict}  # the completion's own `grounding`, sent back with the rating
    r = httpx.post(api.url + "/v1/feedback", json=fb, timeout=30)
    assert r.status_code == 201 and r.json()["rating"] == -1
    stats = httpx.get(api.url + "/v1/feedback/stats", timeout=30).json()
    assert stats["thumbs_down"][0]["comment"] == "wrong" and stats["thumbs_down"][0]["verified"] is False

    health = httpx.get(api.url + "/healthz", timeout=30).json()
    assert health["status"] == "ok" and health["chunks"] > 0 and health["indexed_vectors"] == health["chunks"]
    metrics = httpx.get(api.url + "/metrics", timeout=30).text
    assert 'lorebase_http_requests_total{method="POST",route="/v1/search",status="200"}' in metrics
    assert "lorebase_tokens_total" in metrics


def test_ingest_through_the_api_stays_inside_its_roots(api: Running, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for spec in ("/etc", "../../etc/passwd", "file:///etc", str(api.settings.home / "inbox" / ".." / "lorebase.db")):
        r = httpx.post(api.url + "/v1/ingest", json={"sources": [spec]}, timeout=30)
        assert r.status_code == 400 and "api_roots" in r.json()["error"]["message"], spec
    inbox = api.settings.home / "inbox"
    inbox.mkdir(exist_ok=True)
    (inbox / "note.srt").write_text("1\n00:00:01,000 --> 00:00:04,000\nThe inbox lecture mentions zebras.\n")
    r = httpx.post(api.url + "/v1/ingest", json={"sources": [str(inbox)]}, timeout=30)
    assert r.status_code == 202
    run_id = r.json()["id"]
    import time

    for _ in range(300):
        run = httpx.get(f"{api.url}/v1/ingest/runs/{run_id}", timeout=30).json()
        if run["status"] != "running":
            break
        time.sleep(0.2)
    assert run["status"] == "ok" and run["added"] == 1
    hits = httpx.post(api.url + "/v1/search", json={"query": "zebras", "top_k": 1}, timeout=60).json()["data"]
    assert "zebras" in hits[0]["snippet"]


def test_the_server_survives_errors(api: Running) -> None:
    for _ in range(3):
        httpx.post(api.url + "/v1/chat/completions", content=b"\xff\xfe", headers={"content-type": "application/json"})
        httpx.get(api.url + "/v1/ingest/runs/999999")
    assert httpx.get(api.url + "/healthz", timeout=30).status_code == 200


def test_binding_beyond_loopback_needs_keys(tmp_path, tiny_llama) -> None:  # type: ignore[no-untyped-def]
    from lorebase.api.app import create_app
    from tests.api.conftest import api_settings

    with pytest.raises(SettingsError, match="server.api_keys"):
        create_app(api_settings(tmp_path, tiny_llama, host="0.0.0.0"))
