"""The chat UI in a real browser: headless Chromium (Debian's package) on a real lorebase server
with the transformers backend. Ask, see the answer with its source elements, rate it down with a
comment, and find that rating in lorebase's own Feedback records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from lorebase.store import Store
from lorebase.store.models import Feedback
from tests.api.conftest import Running, api_settings, ingest_corpus, serve
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = REPO_ROOT / "test-artifacts" / "ui-chat-thumbs-down.png"
QUESTION = "How many times is a failed job retried, and with what backoff?"
COMMENT = "The lecture says three times with exponential backoff; the answer does not."


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("ui")
    settings = api_settings(tmp / "home", tiny_llama)
    ingest_corpus(settings, tmp)  # a lecture on the scheduler and the demo GitHub issues
    yield from serve(settings)


def test_ask_see_sources_rate_down_and_lorebase_keeps_the_rating(ui_server: Running) -> None:
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            events: list[str] = []  # Socket.IO events the server pushes, to see the answer stream in
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: events.append(f if isinstance(f, str) else "")))
            page.goto(ui_server.url + "/chat")
            page.locator("#chat-input").fill(QUESTION)
            page.locator("#chat-submit").click()

            answer = page.locator(".step[data-step-type=assistant_message]").last
            answer.locator("a.element-link").first.wait_for(timeout=120_000)  # the final message, with sources
            shown_sources = answer.locator("a.element-link").all_inner_texts()
            shown_text = answer.locator(".message-content").inner_text()
            message_id = answer.locator("[id^=step-]").first.get_attribute("id")
            cards: dict[str, tuple[str, list[str]]] = {}  # each source's card: its text and links
            for i, name in enumerate(shown_sources):
                answer.locator("a.element-link").nth(i).click()
                page.locator("#side-view-title", has_text=name).wait_for(timeout=10_000)
                side = page.locator("#side-view-content")
                cards[name] = (side.inner_text(), side.locator("a").evaluate_all("els => els.map(e => e.href)"))
            answer.locator("a.element-link").first.click()

            page.locator(".negative-feedback-off").last.click()
            page.locator("div[role=dialog] textarea").fill(COMMENT)
            page.locator("#submit-feedback").click()
            page.locator(".negative-feedback-on").last.wait_for(timeout=30_000)
            page.locator("div[role=dialog]").wait_for(state="detached", timeout=10_000)
            page.wait_for_timeout(500)  # let the closing animation end before the screenshot
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()

    assert any('"stream_start"' in e for e in events), "the answer was not streamed"
    assert shown_sources and shown_sources[0] == "S1"
    assert message_id and message_id.startswith("step-")
    store = Store(ui_server.settings.db_url)
    try:
        with store.session() as s:
            rows = list(s.scalars(select(Feedback).where(Feedback.channel == "ui")))
            assert len(rows) == 1, "the rating did not reach lorebase's Feedback records"
            row = rows[0]
            assert (row.rating, row.comment, row.question) == (-1, COMMENT, QUESTION)
            served = ui_server.app.state.services.generator.base_model  # type: ignore[attr-defined]
            assert (row.model, row.adapter) == (served, None)
            # the sources stored are the ones shown, in order, with their exact places
            assert [c["id"] for c in row.sources] == shown_sources
            assert "Scheduler" in [c["title"] for c in row.sources]  # the lecture of the test corpus
            for c in row.sources:
                card_text, card_links = cards[c["id"]]
                assert " ".join(c["snippet"].split()[:4]) in " ".join(card_text.split())
                if (c.get("uri") or "").startswith("https://"):  # issues link to GitHub; the test lecture has no URL
                    assert c["uri"] in card_links
            assert any(links for _, links in cards.values()), "no source card links anywhere"

            # Chainlit's own store agrees: its rating names the run that holds the displayed answer
            step_id = message_id.removeprefix("step-")
            with store.engine.connect() as conn:
                cl_rating = conn.execute(text('SELECT "forId", "value", "comment" FROM feedbacks')).one()
                step = conn.execute(text('SELECT "parentId", "output", "metadata" FROM steps WHERE "id" = :id'),
                                    {"id": step_id}).one()
            assert tuple(cl_rating) == (row.external_id, 0, COMMENT)
            assert step.parentId == row.external_id
            assert row.answer.strip() and row.answer.strip() in step.output  # the answer as displayed
            assert json.loads(step.metadata)["lorebase"]["answer"] == row.answer
            assert _letters(row.answer) in _letters(shown_text)  # Markdown may eat punctuation, never words
    finally:
        store.close()


def _letters(s: str) -> str:
    return re.sub(r"\W+", "", s)
