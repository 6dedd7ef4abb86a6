"""API keys: a server with keys refuses requests without a valid one, and never logs the key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.api.conftest import Running, api_settings, serve

pytestmark = pytest.mark.slow
KEY = "sk-test-4f9a1c"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, api_db: str | None) -> Iterator[Running]:
    settings = api_settings(tmp_path_factory.mktemp("keyed") / "home", tiny_llama, api_db, api_keys=[KEY])
    yield from serve(settings)


def test_requests_need_the_key(keyed: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed.url + "/v1", api_key="wrong", max_retries=0).models.list()
    r = httpx.get(keyed.url + "/v1/models")
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(keyed.url + "/metrics").status_code == 401
    ok = openai.OpenAI(base_url=keyed.url + "/v1", api_key=KEY, max_retries=0).models.list()
    assert ok.data
    assert httpx.get(keyed.url + "/healthz").status_code == 200  # liveness stays open
    assert KEY not in caplog.text
