"""GET /feedback: counts per day and per adapter and the thumbs-down items, escaped, and shown only
to whoever may use the API or the chat UI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lorebase.api import errors
from lorebase.feedback.service import FeedbackService
from lorebase.services import Services
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.ui import pages

KEY = "sk-page-81c2"


def _client(settings: Settings, store: Store) -> TestClient:
    # the page needs only the settings and the feedback service of the server's Services
    app = FastAPI()
    errors.install(app)
    app.include_router(pages.router)
    app.state.services = Services(settings, store, None, None, None, FeedbackService(store))  # type: ignore[arg-type]
    return TestClient(app)


def _rate(store: Store) -> None:
    fb = FeedbackService(store)
    src = {"id": "S1", "source_id": "src_1", "kind": "transcript", "title": "Lecture <2>", "start_time": 195.0}
    fb.record(rating=-1, question="<script>alert('q')</script> retries?", answer="Three & more <b>times</b>",
              sources=[src], model="smol", adapter="lora-v3", comment="wrong <i>count</i>", channel="ui", external_id="m1")
    fb.record(rating=1, question="ok?", answer="yes", sources=[], model="smol", channel="ui", external_id="m2")
    fb.record(rating=1, question="api?", answer="yes", sources=[], model="smol", adapter="lora-v3", channel="api")


def test_the_page_lists_counts_and_escaped_thumbs_down_items(settings: Settings, store: Store) -> None:
    _rate(store)
    r = _client(settings, store).get("/feedback")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt; retries?" in html
    assert "Three &amp; more &lt;b&gt;times&lt;/b&gt;" in html and "wrong &lt;i&gt;count&lt;/i&gt;" in html
    assert "S1 Lecture &lt;2&gt; @ 03:15" in html  # the citation's label, escaped
    assert "Thumbs down (1)" in html and "3 ratings" in html
    # per adapter: lora-v3 one down (ui) and one up (api); the base model one up
    assert "<td>lora-v3</td><td class=n>1</td><td class=n>1</td>" in html
    assert "<td>smol</td><td class=n>1</td><td class=n>0</td>" in html
    assert 'href="/chat"' in html and 'href="/v1/feedback/stats?days=30"' in html


def test_days_out_of_range_is_a_clear_error(settings: Settings, store: Store) -> None:
    r = _client(settings, store).get("/feedback", params={"days": 0})
    assert r.status_code == 400 and "days must be from 1 to 3650" in r.text


def test_with_api_keys_the_page_needs_a_key_or_a_chat_sign_in(
    tmp_path: Path, chainlit_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chainlit as cl
    from chainlit.auth import create_jwt

    settings = load_settings(home=tmp_path / "keyed", server={"api_keys": [KEY]})
    settings.ensure_home()
    store = Store(settings.db_url)
    try:
        _rate(store)
        client = _client(settings, store)
        assert client.get("/feedback").status_code == 401
        assert client.get("/feedback", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/feedback", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200

        monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "page-test-secret-" + "x" * 32)
        token = create_jwt(cl.User(identifier="alice"))
        assert client.get("/feedback", cookies={"access_token": token}).status_code == 200
        monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "another-secret-" + "y" * 32)  # a token of another server
        assert client.get("/feedback", cookies={"access_token": token}).status_code == 401
    finally:
        store.close()
