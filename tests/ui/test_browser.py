"""The chat UI in a real browser: headless Chromium (Debian's package) on a real lorebase server over
a real corpus (a git repository with a GitHub remote and meeting transcripts), its answers written
by a stand-in model server through lorebase's openai backend (tests/ui/scripted_model.py), so each
case is the same every run.

Every page of every test is watched: a request to anything but this server fails the test. The
screenshots of each state are kept in test-artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from lorebase.feedback.service import FeedbackService
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import Feedback
from tests.api.conftest import Running, free_port, serve
from tests.conftest import REPO_ROOT
from tests.local_http import serving
from tests.ui.corpus import LONG_MEETING, MEETING, ingest, make_meetings, make_repo
from tests.ui.scripted_model import MODEL, ScriptedModel

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "test-artifacts"
ANSWER = '.step[data-step-type="assistant_message"]'
CHIP = '.message-content .prose a[href^="/sources/"]'
QUESTION = "How long does a failed job wait before its first retry?"
SLOW_QUESTION = "Explain the whole retry design: how long does a failed job wait before its first retry?"
COMMENT = "The code sample is cut off."


@dataclass
class Browse:
    page: Any
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("ui")
    with serving(ScriptedModel) as model_url:
        # the tiny model's folder gives the tokenizer that counts prompts; the text comes from the script
        settings = load_settings(
            home=tmp / "home", models={"generator": str(tiny_llama)},
            # summary_opening 0: every sentence of the long meeting is one template holding all the scripted
            # bullets' words, so an opening sentence would stand in for them (the opening has its own tests)
            generation={"backend": "openai", "base_url": model_url, "model_name": MODEL, "max_new_tokens": 64,
                        "max_model_len": 2048, "summary_opening": 0},
            server={"port": free_port()},
        )
        ingest(settings, [make_repo(tmp), make_meetings(tmp, long=True)], index=True)
        yield from serve(settings)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def browse(browser: Any, ui_server: Running) -> Iterator[Browse]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    seen = Browse(context.new_page())
    context.on("request", lambda r: seen.requests.append(r.url))
    seen.page.set_default_timeout(30_000)
    yield seen
    context.close()
    foreign = [u for u in seen.requests if not _local(u, ui_server.url)]
    assert not foreign, f"the page made requests beyond this machine: {foreign[:5]}"


def _local(url: str, server: str) -> bool:
    return url.startswith((server + "/", "data:", "blob:")) or url == server


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(300)  # let transitions end
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"))


def _ready(page: Any) -> None:
    """The chat has started: its settings arrive last. (A question sent before then has Chainlit
    take the end of the start for the end of the answer, and hide the Stop button.)"""
    page.locator("#chat-settings-open-modal").wait_for()


def _ask(page: Any, text: str) -> Any:
    _ready(page)
    page.locator("#chat-input").fill(text)
    page.locator("#chat-submit").click()
    return page.locator(ANSWER, has=page.locator(".lb-answer")).last


def _done(answer: Any, status: str = "done") -> None:
    answer.locator(f'.lb-answer[data-status="{status}"]').wait_for(timeout=60_000)


def _in_view(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 40) <= page.viewport_size["height"]


def test_chips_open_their_cards_and_the_viewer_shows_the_cited_lines_and_moment(browse: Browse, ui_server: Running) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    answer = _ask(page, QUESTION)
    _done(answer)
    _shot(page, "answer")

    chips = answer.locator(CHIP)
    assert chips.count() >= 2, "the answer's [S#] did not become chips"
    meeting = answer.locator(".lb-card", has_text=MEETING).first
    code = answer.locator(".lb-card", has_text="jobs/retry.py").first
    meeting_id, code_id = meeting.get_attribute("data-cite"), code.get_attribute("data-cite")
    # a title holding "S1" is shown as written, not as "I[S1]001a"
    assert re.fullmatch(rf"{MEETING} @ \d\d:\d\d", meeting.locator(".lb-card-label").inner_text())
    assert "S1" in MEETING and meeting.locator("a", has_text=re.compile(r"^S\d+$")).count() == 0  # no chip in it

    assert not meeting.evaluate("el => el.open")
    answer.locator(CHIP, has_text=meeting_id).first.click()
    page.wait_for_function("el => el.open && el.classList.contains('lb-active')", arg=meeting.element_handle())
    assert _in_view(page, meeting.locator("summary"))
    assert "A failed job waits thirty seconds" in meeting.locator(".lb-supports").inner_text()
    assert "thirty seconds" in meeting.locator(".lb-excerpt").inner_text()
    _shot(page, "chip-opens-card")
    answer.locator(CHIP, has_text=code_id).first.click()
    page.wait_for_function("el => el.open", arg=code.element_handle())
    assert (code.locator(".lb-web").get_attribute("href") or "").startswith("https://github.com/lorebase-demo/jobs/blob/")

    # the viewer: the cited lines of the file, highlighted with their context
    href = code.locator(".lb-card-label").get_attribute("href")
    lines = parse_qs(urlparse(href).query)["lines"][0]
    start, end = (int(x) for x in lines.split("-"))
    viewer = page.context.new_page()
    viewer.goto(ui_server.url + href)
    marked = viewer.locator("tr.hl")
    assert marked.count() == end - start + 1
    assert viewer.locator("tr.hl td.n").first.inner_text() == str(start)
    assert "retry_delay" in " ".join(marked.all_inner_texts())
    assert viewer.locator(f"tr#L{max(1, start - 1)}:not(.hl)").count() == 1 or start == 1  # context before
    assert _in_view(viewer, viewer.locator(f"tr#L{start}"))
    _shot(viewer, "viewer-code")
    # and the moment of the meeting, with the recording at that time
    viewer.goto(ui_server.url + meeting.locator(".lb-card-label").get_attribute("href"))
    cited = viewer.locator(".seg.hl")
    assert cited.count() == 1 and "thirty seconds" in cited.inner_text()
    assert re.search(r"#t=\d+$", cited.locator("a.ts").get_attribute("href"))
    assert viewer.locator(".seg:not(.hl)").count() >= 1
    _shot(viewer, "viewer-transcript")
    viewer.close()

    # the conversation is in the address: a reload reopens it, chips and cards included
    assert re.search(r"/chat/thread/[0-9a-f-]{36}$", page.url), page.url
    page.reload()
    again = page.locator(ANSWER, has=page.locator(".lb-answer")).last
    _done(again)
    assert again.locator(CHIP).count() == chips.count() and again.locator(".lb-card").count() >= 2
    assert page.locator('[data-step-type="user_message"]', has_text=QUESTION).count() == 1
    _shot(page, "reloaded-thread")


def test_an_unclosed_code_fence_keeps_the_sources_and_a_rating_reaches_lorebase(browse: Browse, ui_server: Running) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    _ready(page)
    starters = page.locator("button[id^=starter-]")
    starters.first.wait_for()
    offered = starters.all_inner_texts()
    assert any(LONG_MEETING in s for s in offered) and any("jobs/retry.py" in s for s in offered)
    assert not any("lorebase" in s.lower() or "LoRA" in s for s in offered)  # about this corpus, not the demo's
    _shot(page, "starters")
    page.locator("button[id^=starter-]", has_text="jobs/retry.py").click()
    answer = page.locator(ANSWER, has=page.locator(".lb-answer")).last
    _done(answer)
    code_block = answer.locator(".prose pre")
    assert code_block.count() == 1 and "BASE_DELAY_S = 30" in code_block.inner_text()
    assert code_block.locator("a").count() == 0 and "[S" in code_block.inner_text()  # no chip inside code
    assert "checked against" not in code_block.inner_text()  # the note is not swallowed by the fence
    assert answer.locator(".lb-check-verified").is_visible()  # each sentence, and the code, checked against the sources
    chip = answer.locator(CHIP).first
    label = chip.inner_text()
    chip.click()
    card = answer.locator(f'.lb-card[data-cite="{label}"]')
    page.wait_for_function("el => el.open", arg=card.element_handle())
    _shot(page, "unclosed-fence")

    message_id = answer.locator("[id^=step-]").first.get_attribute("id")
    page.locator(".negative-feedback-off").last.click()
    page.locator("div[role=dialog] textarea").fill(COMMENT)
    page.locator("#submit-feedback").click()
    page.locator(".negative-feedback-on").last.wait_for()
    store = Store(ui_server.settings.db_url)
    try:
        with store.session() as s:
            [row] = list(s.scalars(select(Feedback).where(Feedback.channel == "ui", Feedback.comment == COMMENT)))
            assert row.rating == -1 and row.question.startswith("What does jobs/retry.py do")
            assert "BASE_DELAY_S = 30" in row.answer and row.model == MODEL
            assert row.verified is True and row.verdict is not None  # the verdict shown, stored with the rating
            assert [c["id"] for c in row.sources] == answer.locator(".lb-card").evaluate_all(
                "els => els.map(e => e.dataset.cite)")
            assert message_id and message_id.startswith("step-")
    finally:
        store.close()


def test_stop_leaves_a_finished_message_with_its_sources(browse: Browse, ui_server: Running) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    answer = _ask(page, SLOW_QUESTION)
    answer.locator(".prose", has_text="retry design").wait_for()
    page.locator("#stop-button").click()
    _done(answer, "stopped")
    page.wait_for_timeout(1500)  # anything still in flight has arrived
    assert page.locator(".loading-cursor").count() == 0 and page.locator(".lb-spinner").count() == 0
    assert "Step 59" not in answer.inner_text()  # it did stop
    assert answer.locator(".lb-note-stopped").is_visible() and answer.locator(".lb-card").count() >= 1
    assert answer.locator(".negative-feedback-off").count() == 1  # a finished message that can be rated
    _shot(page, "stopped")


def test_a_too_long_message_gets_the_limit_from_the_models_context(browse: Browse, ui_server: Running) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    _ready(page)
    asked = len(ScriptedModel.requests)
    page.locator("#chat-input").fill("retry " * 3400)
    page.locator("#chat-submit").click()
    error = page.locator(ANSWER, has_text="too long to answer well")
    error.wait_for()
    text = error.inner_text()
    assert "A question may use at most" in text and "2,048 tokens" in text
    assert len(ScriptedModel.requests) == asked  # refused before any generation
    bubble = page.locator('[data-step-type="user_message"] .message-content').last.bounding_box()
    assert bubble is not None and bubble["height"] <= 320  # not one giant bubble
    _shot(page, "too-long")


def test_a_long_summary_shows_its_parts_then_the_points_chosen(browse: Browse, ui_server: Running) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    _ready(page)
    page.locator("#chat-settings-open-modal").click()
    page.locator("#mode").click()
    page.get_by_role("option", name="Summarize").click()
    page.locator("#lecture").click()
    page.get_by_role("option", name=LONG_MEETING).click()
    page.locator("#confirm").click()
    asked = len(ScriptedModel.requests)
    answer = _ask(page, "Summarise this meeting")
    now = answer.locator(".lb-step-now", has_text="Summarising part")
    now.wait_for()
    assert re.search(r"Summarising part \d+ of \d+", now.inner_text())
    assert f"Chose 1 source: {LONG_MEETING}" in answer.locator(".lb-steps").inner_text()
    _shot(page, "summary-progress")
    answer.locator(".prose", has_text=f"Summary of {LONG_MEETING}").wait_for(timeout=60_000)
    _done(answer)
    # the parts' checked bullets are chosen from (generation.summary_merge: select), not merged by the model
    summary_calls = ScriptedModel.requests[asked:]
    assert summary_calls and not any(r.startswith("Merge these partial summaries") for r in summary_calls)
    assert "compares each option with the previous sketch" in answer.locator(".prose").inner_text()
    assert answer.locator(".lb-card").count() == 1
    moment = answer.locator(CHIP, has_text="02:40")  # the summary's reference to a moment opens it in the viewer
    assert re.search(r"\?t=160&cite=02:40#cited$", moment.get_attribute("href"))
    _shot(page, "summary-done")


def test_the_page_stays_on_this_machine_and_the_header_and_feedback_page_look_right(
    browse: Browse, ui_server: Running
) -> None:
    page = browse.page
    page.goto(ui_server.url + "/chat")
    page.locator("#chat-input").wait_for()
    page.wait_for_load_state("networkidle")
    assert any("/chat/assets/" in u for u in browse.requests) and any(u.endswith("/lorebase.js") for u in browse.requests)
    assert not any("fonts.g" in u or "katex" in u or "jsdelivr" in u for u in browse.requests)
    icons = {name: page.locator(f'a[href^="{href}"] img').first.get_attribute("src")
             for name, href in (("feedback", "/feedback"), ("eval", "/v1/eval/runs"))}
    assert icons["feedback"] and icons["eval"] and icons["feedback"] != icons["eval"]
    _shot(page, "empty-chat")

    store = Store(ui_server.settings.db_url)
    try:
        FeedbackService(store).record(rating=-1, question="q", answer="x" * 5000, sources=[], model=MODEL,
                                      comment="y" * 3000, channel="api")
    finally:
        store.close()
    page.goto(ui_server.url + "/feedback")
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the feedback page is {width[0]} px wide in a {width[1]} px window"
    _shot(page, "feedback-page")
