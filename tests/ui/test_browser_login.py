"""With `ui.password` set, the chat UI asks for a login, refuses a wrong password, and the
feedback page opens to a browser signed in to the chat (and to nobody else)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lorebase.settings import load_settings
from tests.api.conftest import Running, api_settings, serve
from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[Running]:
    base = api_settings(tmp_path_factory.mktemp("ui-login") / "home", tiny_llama)
    settings = load_settings(**{**base.model_dump(exclude={"ui"}), "ui": {"username": "tutor", "password": "hunter22"}})
    yield from serve(settings)


def test_the_chat_needs_the_password_and_then_opens_the_feedback_page(locked_server: Running) -> None:
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    assert httpx.get(locked_server.url + "/feedback").status_code == 401
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(locked_server.url + "/chat")
            page.locator("#password").wait_for(timeout=30_000)
            assert page.locator("#chat-input").count() == 0
            page.locator("#email").fill("tutor")
            page.locator("#password").fill("hunter2")
            page.locator("button[type=submit]").click()
            page.wait_for_timeout(1500)
            assert page.locator("#chat-input").count() == 0  # still the login form

            page.locator("#password").fill("hunter22")
            page.locator("button[type=submit]").click()
            page.locator("#chat-input").wait_for(timeout=30_000)
            feedback = page.request.get(locked_server.url + "/feedback")  # with the browser's cookies
            assert feedback.status == 200 and "Feedback, last 30 days" in feedback.text()
        finally:
            browser.close()
