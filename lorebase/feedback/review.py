"""The review queue: thumbs-down answers wait for a reviewer, who rejects one or accepts it with a
correction (the answer the model should have given), which becomes a validated QA pair."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lorebase.errors import Conflict, InvalidInput
from lorebase.feedback.harvest import HarvestReport, harvest_positive
from lorebase.feedback.pairs import PairMaker, check_pending, evidence, feedback_record, load, pair_record, relabel, resolve
from lorebase.generation import grounding
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Feedback, QAPair, utcnow

STATUSES = ("pending", "accepted", "rejected")
ACTIONS = ("accept", "reject")
RATINGS = {"down": -1, "up": 1}


class FeedbackReview:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.threshold = settings.answer.support_threshold
        self.pairs = PairMaker(settings)

    # --- the queue ------------------------------------------------------------------------------

    def list_queue(self, status: str = "pending", rating: str = "down", limit: int = 50) -> list[dict[str, Any]]:
        """Feedback by review status (or "all") and rating ("down", "up" or "all"). Pending items come
        oldest first, as a queue; reviewed ones newest first."""
        if status != "all" and status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)} or all, not {status!r}")
        if rating != "all" and rating not in RATINGS:
            raise InvalidInput(f"rating must be down, up or all, not {rating!r}")
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be from 1 to 500")
        q = select(Feedback)
        if status != "all":
            q = q.where(Feedback.review_status == status)
        if rating != "all":
            q = q.where(Feedback.rating == RATINGS[rating])
        q = q.order_by(Feedback.id.asc() if status == "pending" else Feedback.id.desc()).limit(limit)
        with self.store.session() as s:
            return [feedback_record(f) for f in s.scalars(q)]

    def get(self, feedback_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            return feedback_record(load(s, feedback_id))

    # --- a reviewer's decision ------------------------------------------------------------------

    def review(
        self,
        feedback_id: int,
        action: str,
        correction: str | None = None,
        reviewer: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Accept with a correction (which becomes a validated pair) or reject. Returns the feedback
        record and the pair made, if any. Reviewing an item twice is a Conflict."""
        if action not in ACTIONS:
            raise InvalidInput(f"action must be accept or reject, not {action!r}")
        text = (correction or "").strip()
        if action == "accept" and not text:
            raise InvalidInput("accepting needs a correction: the answer the model should have given")
        if action == "reject" and text:
            raise InvalidInput("a rejection takes no correction; to keep a corrected answer, accept it")
        reviewer = (reviewer or "").strip() or None
        with self.store.session() as s:
            fb = load(s, feedback_id)
            check_pending(fb)
            pair = self._correction_pair(s, fb, text) if action == "accept" else None
            now = utcnow()
            # Claim the row only if it is still pending: of two reviewers racing, one gets a Conflict.
            claimed = s.execute(
                update(Feedback).where(Feedback.id == fb.id, Feedback.review_status == "pending")
                .values(review_status="accepted" if pair is not None else "rejected", reviewed_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if claimed != 1:
                raise Conflict(f"feedback {feedback_id} was reviewed by someone else just now")
            s.refresh(fb)
            record: dict[str, Any] = {"action": action, "reviewer": reviewer}
            if note:
                record["note"] = note.strip()
            if pair is not None:
                superseded = self.pairs.supersede(s, pair.question_hash, now)
                pair.created_at = now
                pair.validation = {**pair.validation, "reviewer": reviewer}
                pair.provenance["feedback"]["reviewer"] = reviewer
                s.add(pair)
                s.flush()
                fb.correction = text
                record["qa_pair_id"] = pair.id
                if superseded:
                    record["superseded_pair_ids"] = superseded
            fb.review = record
            s.flush()
            return {"feedback": feedback_record(fb), "qa_pair": pair_record(pair) if pair is not None else None}

    def _correction_pair(self, s: Session, fb: Feedback, correction: str) -> QAPair:
        shown = resolve(s, fb.sources or [])
        usable = {x.label: x for x in shown if x.chunk is not None}
        if not usable:
            why = "no sources were shown with the answer" if not shown else "none of the sources shown with it is still in the store"
            raise InvalidInput(f"feedback {fb.id} cannot become a QA pair: {why}; every pair must trace to a source (reject it instead)")
        unknown = [lbl for lbl in dict.fromkeys(grounding.CITATION.findall(correction)) if lbl not in usable]
        if unknown:
            raise InvalidInput(f"the correction cites {', '.join(unknown)}, not among the sources shown with the answer "
                               f"that are still in the store ({', '.join(usable)})")
        g = grounding.check(correction, evidence(usable.values()), self.threshold)
        # Gold: the sources the correction cites, or that the check finds supporting it; when none
        # does (the sources are wrong or incomplete), all those shown, and the record says so.
        labels = g.cited or list(usable)
        answer = g.answer if g.cited else correction
        category = "feedback.abstention" if g.abstained else "feedback.correction"
        return self.pairs.pair(s, fb, [usable[lbl] for lbl in labels], relabel(answer, labels), category,
                               check="review", method_note="correction")

    def harvest_positive(self, limit: int | None = None) -> HarvestReport:
        """Thumbs-up answers that pass the support check become pairs (lorebase.feedback.harvest)."""
        return harvest_positive(self.settings, self.store, limit)
