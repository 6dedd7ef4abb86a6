"""Thumbs up/down on answers, from the API and the UI, kept for review and retraining."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from lorebase.errors import InvalidInput
from lorebase.store import Store
from lorebase.store.models import Feedback, QAPair, utcnow
from lorebase.verdict import Verdict


class FeedbackService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(
        self,
        *,
        rating: int,
        question: str,
        answer: str,
        sources: list[dict[str, Any]],
        model: str,
        adapter: str | None = None,
        comment: str | None = None,
        channel: str = "api",
        external_id: str | None = None,
        verdict: Verdict | None = None,
    ) -> int:
        """Store one rating. The same external id (a UI message rated twice) updates its record.
        `verdict` is the answer's Verdict as it was shown: review reads whether it was verified there."""
        if rating not in (1, -1):
            raise InvalidInput("rating must be 1 (up) or -1 (down)")
        if not question.strip() or not answer.strip():
            raise InvalidInput("feedback needs the question and the answer")
        with self.store.session() as s:
            row = None
            if external_id:
                row = s.scalar(select(Feedback).where(Feedback.external_id == external_id, Feedback.channel == channel))
            if row is None:
                row = Feedback(channel=channel, external_id=external_id)
                s.add(row)
            elif row.rating > 0 > rating and (row.review or {}).get("action") == "harvest":
                # The thumbs-up that made a positive pair is taken back: so is the pair.
                pair_id = row.review.get("qa_pair_id")
                if pair_id is not None:
                    s.execute(update(QAPair).where(QAPair.id == pair_id, QAPair.retired_at.is_(None))
                              .values(retired_at=utcnow()))
                row.review = {"withdrawn": {**row.review, "at": utcnow().isoformat()}}
            row.rating, row.question, row.answer, row.sources = rating, question, answer, sources
            row.model, row.adapter, row.comment = model, adapter, comment
            row.verdict = verdict.model_dump(mode="json") if verdict is not None else None
            row.verified = verdict.verified if verdict is not None else None
            row.review_status = "pending" if rating < 0 else row.review_status or "pending"
            s.flush()
            return row.id

    def stats(self, days: int = 30) -> dict[str, Any]:
        """Counts per day and per model/adapter, and the thumbs-down items, newest first."""
        since = utcnow() - timedelta(days=days)
        per_day: dict[str, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
        per_adapter: dict[str, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
        down: list[dict[str, Any]] = []
        with self.store.session() as s:
            rows = list(s.scalars(select(Feedback).where(Feedback.created_at >= since).order_by(Feedback.created_at.desc())))
            for f in rows:
                key = "up" if f.rating > 0 else "down"
                per_day[f.created_at.date().isoformat()][key] += 1
                per_adapter[f.adapter or f.model][key] += 1
                if f.rating < 0:
                    down.append({"id": f.id, "created_at": f.created_at.isoformat(), "question": f.question,
                                 "answer": f.answer, "comment": f.comment, "sources": f.sources,
                                 "model": f.model, "adapter": f.adapter, "verified": f.verified,
                                 "review_status": f.review_status})
        return {"days": days, "total": len(rows), "per_day": dict(sorted(per_day.items())),
                "per_adapter": dict(per_adapter), "thumbs_down": down}
