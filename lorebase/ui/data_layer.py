"""Chainlit's SQLAlchemy data layer on lorebase's own database, with every rating mirrored into
lorebase's Feedback records (the input of the retraining loop).

The chat handlers store what was answered in the answer message's metadata under ``lorebase``
(question, answer, sources shown, model, adapter). A rating names a step (the answer, or the run
of the handler that sent it), so the mirror reads everything back from the database Chainlit just
wrote to: both stores agree, and a rating of anything that is not a lorebase answer is kept by
Chainlit alone. The lorebase record's external id is the rated step's id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.utils import queue_until_user_message
from chainlit.types import Feedback as ChainlitFeedback
from pydantic import ValidationError
from sqlalchemy import delete

from lorebase.feedback.service import FeedbackService
from lorebase.store import Store
from lorebase.store.models import Feedback
from lorebase.ui.chainlit_home import async_url, connect_args
from lorebase.verdict import Verdict

log = logging.getLogger(__name__)

CHANNEL = "ui"
META_KEY = "lorebase"


def answer_record(step_metadata: Any) -> dict[str, Any] | None:
    """The lorebase part of a step's metadata (a dict, or JSON text as SQLite returns it)."""
    meta = step_metadata
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError:
            return None
    if not isinstance(meta, dict):
        return None
    rec = meta.get(META_KEY)
    return rec if isinstance(rec, dict) else None


class LorebaseDataLayer(SQLAlchemyDataLayer):
    """Chainlit's SQL data layer, plus: ratings mirrored into lorebase, JSON-safe step values,
    and answers' elements (sources, progress) kept without a file store."""

    def __init__(self, db_url: str, store: Store, feedback: FeedbackService) -> None:
        super().__init__(conninfo=async_url(db_url), connect_args=connect_args(db_url))
        self.store = store
        self.feedback = feedback
        # An element sent several times (progress, then sources) is written by tasks that may
        # finish out of order: each writes the newest row known, so the last state always wins.
        self._element_rows: dict[str, dict[str, Any]] = {}
        self._element_lock = asyncio.Lock()

    # --- ratings -----------------------------------------------------------------------------

    async def upsert_feedback(self, feedback: ChainlitFeedback) -> str:
        record = await self.rated_answer(feedback.forId)
        feedback_id = await super().upsert_feedback(feedback)
        # Chainlit's execute_sql logs and swallows database errors: check the row really landed.
        stored = await self.execute_sql('SELECT "id" FROM feedbacks WHERE "id" = :id', {"id": feedback_id})
        if not stored:
            raise RuntimeError(f"the rating of message {feedback.forId} could not be stored")
        if record is None:
            log.info("rating of %s is not on a lorebase answer; kept by the chat UI only", feedback.forId)
            return feedback_id
        try:
            await asyncio.to_thread(self._mirror, feedback, record)
        except Exception:
            await super().delete_feedback(feedback_id)  # keep the two stores in agreement
            raise
        return feedback_id

    async def rated_answer(self, step_id: str) -> dict[str, Any] | None:
        """The lorebase record of the answer a rating names: the step itself, or (as Chainlit's
        thumbs sit on the run of a message handler) the answer message inside that run."""
        rows = await self.execute_sql(
            'SELECT "id", "parentId", "metadata" FROM steps WHERE "id" = :id OR "parentId" = :id ORDER BY "createdAt"',
            {"id": step_id},
        )
        found = None
        for row in rows if isinstance(rows, list) else []:
            record = answer_record(row.get("metadata"))
            if record is not None:
                found = record
                if row["id"] == step_id:
                    break
        return found

    def _mirror(self, feedback: ChainlitFeedback, record: dict[str, Any]) -> int:
        comment = (feedback.comment or "").strip() or None
        return self.feedback.record(
            rating=1 if feedback.value == 1 else -1,
            question=str(record.get("question") or ""),
            answer=str(record.get("answer") or ""),
            sources=list(record.get("sources") or []),
            model=str(record.get("model") or "unknown"),
            adapter=record.get("adapter"),
            comment=comment,
            channel=CHANNEL,
            external_id=feedback.forId,
            verdict=_verdict(record.get("grounding")),
        )

    async def delete_feedback(self, feedback_id: str) -> bool:
        rows = await self.execute_sql('SELECT "forId" FROM feedbacks WHERE "id" = :id', {"id": feedback_id})
        done = await super().delete_feedback(feedback_id)
        if isinstance(rows, list) and rows:
            await asyncio.to_thread(self._unmirror, str(rows[0]["forId"]))
        return done

    def _unmirror(self, step_id: str) -> None:
        # A withdrawn rating leaves the retraining input too, unless a reviewer already judged it.
        with self.store.session() as s:
            s.execute(delete(Feedback).where(Feedback.channel == CHANNEL, Feedback.external_id == step_id,
                                             Feedback.review_status == "pending"))

    # --- steps and elements ------------------------------------------------------------------

    async def create_step(self, step_dict: Any) -> None:
        # Chainlit serialises only metadata and generation; on SQLite a list or dict bound as a
        # parameter fails (and is swallowed), losing the whole message. Tags and modes go as JSON.
        for key in ("tags", "modes"):
            value = step_dict.get(key)
            if isinstance(value, list | dict):
                step_dict[key] = json.dumps(value) if value else None
        await super().create_step(step_dict)

    @queue_until_user_message()
    async def create_element(self, element: Any) -> None:
        """Keep an answer's element with the thread without a file store: the answer's custom
        element (its props are all it needs), and text elements (source cards of earlier versions)
        as a data: URL the browser reads when a conversation is resumed. Other files (none are
        sent: uploads are off) are not kept. An element sent again (a custom element's update)
        replaces its row."""
        if not element.for_id:
            return
        row = element.to_dict()
        if element.type == "custom":
            row["url"] = None
        elif element.type == "text" and isinstance(element.content, str):
            row["url"] = "data:text/plain;charset=utf-8," + quote(element.content)
        else:
            return
        row["chainlitKey"] = None  # a session file, gone with the session
        for key in ("props", "playerConfig"):
            if row.get(key) is not None:
                row[key] = json.dumps(row[key])
        self._element_rows[row["id"]] = row
        async with self._element_lock:
            newest = self._element_rows.pop(row["id"], None)
            if newest is None:  # a later send of this element has written it already
                return
            params = {k: v for k, v in newest.items() if v is not None}
            columns = ", ".join(f'"{k}"' for k in params)
            updates = ", ".join(f'"{k}" = :{k}' for k in params if k != "id")
            await self.execute_sql(
                f"INSERT INTO elements ({columns}) VALUES ({', '.join(':' + k for k in params)}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                params,
            )

    async def get_thread(self, thread_id: str) -> Any:
        # Chainlit hands the elements' props back as the JSON text SQLite stores; the frontend wants objects
        thread = await super().get_thread(thread_id)
        found: dict[str, Any] = dict(thread or {})
        for element in found.get("elements") or []:
            props = element.get("props")
            if isinstance(props, str):
                try:
                    element["props"] = json.loads(props) if props else {}
                except json.JSONDecodeError:
                    element["props"] = {}
        return thread


def _verdict(value: Any) -> Verdict | None:
    """The answer's verdict as the record kept it; None when there is none or it no longer parses."""
    try:
        return Verdict.model_validate(value) if value else None
    except ValidationError:
        return None
