"""Chainlit's tables come from our migrations, its SQLAlchemy data layer works on our SQLite and on
PostgreSQL (every test here runs on both), and every rating of a lorebase answer is mirrored into
lorebase's Feedback records."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import inspect, select

from lorebase.errors import InvalidInput
from lorebase.feedback.service import FeedbackService
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.chainlit_tables import CHAINLIT_TABLES
from lorebase.store.models import Feedback


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = load_settings(home=tmp_path / "home", database_url=db_url)
    s.ensure_home()
    return s


def _layer(settings: Settings, store: Store) -> Any:
    from chainlit.context import init_http_context

    from lorebase.ui.data_layer import LorebaseDataLayer

    init_http_context()  # outside a websocket session Chainlit writes steps at once
    return LorebaseDataLayer(settings.db_url, store, FeedbackService(store))


def _citation(label: str, path: str) -> dict[str, Any]:
    return {"id": label, "source_id": f"src_{label}", "kind": "code", "title": path, "repo": "o/r", "path": path,
            "start_line": 3, "end_line": 9, "commit": "abc1234def", "uri": f"https://github.com/o/r/blob/abc1234def/{path}#L3-L9",
            "snippet": "def retry(): ..."}


async def _conversation(layer: Any, record: dict[str, Any] | None) -> tuple[str, str, str]:
    """A user, a thread, a handler run and the answer message inside it, as the UI makes them."""
    import chainlit as cl

    user = await layer.create_user(cl.User(identifier=f"u-{uuid.uuid4().hex[:6]}"))
    thread_id, run_id, answer_id = (str(uuid.uuid4()) for _ in range(3))
    await layer.update_thread(thread_id, name="retries", user_id=user.id)
    await layer.create_step({"id": run_id, "threadId": thread_id, "name": "on_message", "type": "run",
                             "streaming": False, "metadata": {}, "createdAt": "2025-01-01T00:00:00Z"})
    await layer.create_step({"id": answer_id, "threadId": thread_id, "parentId": run_id, "name": "lorebase",
                             "type": "assistant_message", "streaming": False, "output": "shown text",
                             "metadata": {"lorebase": record} if record else {}, "tags": ["a", "b"],
                             "modes": {"mode": "ask"}, "createdAt": "2025-01-01T00:00:01Z"})
    return thread_id, run_id, answer_id


RECORD = {"mode": "answer", "question": "How often is a failed job retried?", "answer": "Three times [S1].",
          "sources": [_citation("S1", "jobs.py"), _citation("S2", "retry.py")], "model": "smol", "adapter": "lora-v2",
          "grounding": {"mode": "generated", "supported": True, "abstained": False, "reason": "supported"}}


@pytest.mark.asyncio
async def test_upgrade_creates_the_tables_chainlit_writes_every_column_of(store: Store, chainlit_root: Path) -> None:
    import chainlit as cl
    from chainlit.context import init_http_context
    from chainlit.types import Feedback as ChainlitFeedback

    init_http_context()
    insp = inspect(store.engine)
    columns = {t: {c["name"] for c in insp.get_columns(t)} for t in CHAINLIT_TABLES}
    # what chainlit 2.12 itself serialises for steps, messages, elements and feedbacks
    step = cl.Step(name="s", type="tool", thread_id="t")
    msg = cl.Message(content="x")
    text = cl.Text(name="S1", content="c", thread_id="t")
    assert set(step.to_dict()) <= columns["steps"]
    assert set(msg.to_dict()) <= columns["steps"]
    assert {"modes", "autoCollapse", "icon"} <= columns["steps"]
    assert set(text.to_dict()) <= columns["elements"]
    assert set(ChainlitFeedback.__dataclass_fields__) <= columns["feedbacks"]
    assert {"id", "identifier", "metadata", "createdAt"} <= columns["users"]


@pytest.mark.asyncio
async def test_threads_steps_and_feedback_round_trip_on_our_database(settings: Settings, store: Store, chainlit_root: Path) -> None:
    from chainlit.types import Feedback as ChainlitFeedback

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, RECORD)
        fid = await layer.upsert_feedback(ChainlitFeedback(forId=answer_id, value=1, threadId=thread_id, comment="clear"))
        thread = await layer.get_thread(thread_id)
        assert thread is not None and thread["name"] == "retries"
        answer = next(s for s in thread["steps"] if s["id"] == answer_id)
        assert answer["feedback"]["value"] == 1 and answer["feedback"]["id"] == fid
        assert json.loads(answer["tags"]) == ["a", "b"]  # lists survive as JSON text
        assert json.loads(answer["metadata"])["lorebase"]["answer"] == RECORD["answer"]
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_source_cards_are_kept_with_the_thread_without_a_file_store(settings: Settings, store: Store, chainlit_root: Path) -> None:
    import chainlit as cl

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, RECORD)
        card = "**S1 · [jobs.py:3-9@abc1234](<https://github.com/o/r>)**\n\n100% sure: `retry()` & co"
        element = cl.Text(name="S1", content=card, display="side", thread_id=thread_id, for_id=answer_id)
        await layer.create_element(element)
        await layer.create_element(cl.Text(name="loose", content="no message", thread_id=thread_id))  # not kept
        thread = await layer.get_thread(thread_id)
        assert thread is not None
        [kept] = thread["elements"]
        assert (kept["name"], kept["forId"], kept["display"]) == ("S1", answer_id, "side")
        prefix, _, data = kept["url"].partition(",")
        assert prefix == "data:text/plain;charset=utf-8" and unquote(data) == card
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_an_answers_element_is_kept_with_its_last_props(settings: Settings, store: Store, chainlit_root: Path) -> None:
    import asyncio

    import chainlit as cl

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, RECORD)
        element = cl.CustomElement(name="LorebaseAnswer", props={"status": "working", "sources": []}, display="inline",
                                   thread_id=thread_id, for_id=answer_id)
        # sent three times (progress, sources, done), written by tasks that may end in any order
        writes = []
        for status in ("working", "reading", "done"):
            element.props["status"] = status
            writes.append(asyncio.create_task(layer.create_element(element)))
        await asyncio.gather(*writes)
        thread = await layer.get_thread(thread_id)
        assert thread is not None
        [kept] = thread["elements"]
        assert (kept["name"], kept["forId"], kept["type"]) == ("LorebaseAnswer", answer_id, "custom")
        assert kept["props"] == {"status": "done", "sources": []}  # an object again, the last state
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_a_rating_of_the_answer_run_is_mirrored_with_question_answer_and_sources(
    settings: Settings, store: Store, chainlit_root: Path
) -> None:
    from chainlit.types import Feedback as ChainlitFeedback

    layer = _layer(settings, store)
    try:
        thread_id, run_id, _ = await _conversation(layer, RECORD)
        # the UI rates the run of the message handler; the answer is the message inside it
        fid = await layer.upsert_feedback(ChainlitFeedback(forId=run_id, value=0, threadId=thread_id, comment=" misses the backoff "))
        with store.session() as s:
            row = s.scalar(select(Feedback).where(Feedback.external_id == run_id))
            assert row is not None
            assert (row.channel, row.rating, row.comment) == ("ui", -1, "misses the backoff")
            assert (row.question, row.answer) == (RECORD["question"], RECORD["answer"])
            assert [c["id"] for c in row.sources] == ["S1", "S2"] and row.sources[0]["uri"].startswith("https://github.com/")
            assert (row.model, row.adapter) == ("smol", "lora-v2")
            assert row.verified is True and row.verdict is not None and row.verdict["mode"] == "generated"
            first_id = row.id

        # changing the rating updates the same record, in both stores
        await layer.upsert_feedback(ChainlitFeedback(forId=run_id, value=1, threadId=thread_id, id=fid))
        with store.session() as s:
            rows = list(s.scalars(select(Feedback).where(Feedback.channel == "ui")))
            assert [(r.id, r.rating, r.comment) for r in rows] == [(first_id, 1, None)]
        assert await layer.execute_sql('SELECT "value" FROM feedbacks WHERE "id" = :id', {"id": fid}) == [{"value": 1}]

        # withdrawing it removes both
        await layer.delete_feedback(fid)
        with store.session() as s:
            assert s.scalar(select(Feedback).where(Feedback.external_id == run_id)) is None
        assert await layer.execute_sql('SELECT "id" FROM feedbacks', {}) == []
        stats = FeedbackService(store).stats()
        assert stats["total"] == 0
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_a_reviewed_record_outlives_a_withdrawn_rating(settings: Settings, store: Store, chainlit_root: Path) -> None:
    from chainlit.types import Feedback as ChainlitFeedback

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, RECORD)
        fid = await layer.upsert_feedback(ChainlitFeedback(forId=answer_id, value=0, threadId=thread_id))
        with store.session() as s:
            s.scalar(select(Feedback)).review_status = "accepted"
        await layer.delete_feedback(fid)
        with store.session() as s:
            assert s.scalar(select(Feedback.review_status)) == "accepted"
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_ratings_of_other_messages_stay_in_chainlit_only(settings: Settings, store: Store, chainlit_root: Path) -> None:
    from chainlit.types import Feedback as ChainlitFeedback

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, None)
        fid = await layer.upsert_feedback(ChainlitFeedback(forId=answer_id, value=1, threadId=thread_id))
        assert await layer.execute_sql('SELECT "forId" FROM feedbacks WHERE "id" = :id', {"id": fid}) == [{"forId": answer_id}]
        with store.session() as s:
            assert s.scalar(select(Feedback)) is None
    finally:
        await layer.close()


@pytest.mark.asyncio
async def test_a_rating_lorebase_refuses_is_not_kept_by_chainlit_either(settings: Settings, store: Store, chainlit_root: Path) -> None:
    from chainlit.types import Feedback as ChainlitFeedback

    layer = _layer(settings, store)
    try:
        thread_id, _, answer_id = await _conversation(layer, {**RECORD, "answer": "  "})
        with pytest.raises(InvalidInput):
            await layer.upsert_feedback(ChainlitFeedback(forId=answer_id, value=0, threadId=thread_id))
        assert await layer.execute_sql('SELECT "id" FROM feedbacks', {}) == []
    finally:
        await layer.close()


def test_the_ui_takes_sqlite_and_postgresql_and_refuses_other_databases() -> None:
    from lorebase.errors import SettingsError
    from lorebase.ui.chainlit_home import async_url

    assert async_url("sqlite:////data/lorebase.db") == "sqlite+aiosqlite:////data/lorebase.db"
    assert async_url("postgresql://u@db:5432/lorebase") == "postgresql+psycopg://u@db:5432/lorebase"
    assert async_url("postgres://u@db/lorebase") == "postgresql+psycopg://u@db/lorebase"
    with pytest.raises(SettingsError, match="ui.enabled=false"):
        async_url("mysql+pymysql://db/lorebase")
