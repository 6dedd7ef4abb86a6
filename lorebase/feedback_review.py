"""The feedback loop: rated answers become QA pairs for the next fine-tuning round.

- A thumbs-down answer waits in the review queue. A reviewer rejects it, or accepts it with a
  correction: the answer the model should have given. The correction becomes a validated pair.
- A thumbs-up answer becomes a pair only if the grounding check (the one answers are checked with)
  finds it supported by the sources it cites; otherwise it is marked rejected, with the reason.

Pairs made here have method ``feedback``. Their gold chunks are the sources shown with the answer
that the answer cites (relabelled S1..Sn in that order, as every pair's answer is), and their
provenance names those chunks (path/lines/sha/number/time) and the feedback they came from. Their
split follows the source-grouped rule: a source that already has pairs keeps their split, a new one
gets the split the salted hash gives it; a pair citing several sources takes the most held-out of
their splits (test over validation over train), so test material never leaks into training.

The outcome is kept on the feedback row (``review_status``, ``reviewed_at``, ``review``), so nothing
is reviewed or harvested twice.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lorebase.citations import cite
from lorebase.errors import Conflict, InvalidInput, NotFound
from lorebase.finetune.qa_drafts import as_seen, place, question_hash, validate
from lorebase.finetune.splits import split_for
from lorebase.generation import grounding
from lorebase.generation.prompts import Evidence
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Chunk, Feedback, QAPair, Source, utcnow

STATUSES = ("pending", "accepted", "rejected")
ACTIONS = ("accept", "reject")
RATINGS = {"down": -1, "up": 1}
METHOD = "feedback"
# How held-out a split is: a pair citing sources of several splits takes the highest.
_HELD_OUT = {"train": 0, "validation": 1, "test": 2}


@dataclass
class Shown:
    """A citation as shown with the answer, found again in the store (or why it could not be)."""

    label: str
    source: Source | None
    chunk: Chunk | None
    problem: str = ""


@dataclass
class HarvestReport:
    examined: int = 0
    added: int = 0
    rejected: int = 0
    pair_ids: list[int] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"examined": self.examined, "added": self.added, "rejected": self.rejected,
                "pair_ids": self.pair_ids, "reasons": dict(self.reasons.most_common())}


class FeedbackReview:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.threshold = settings.answer.support_threshold

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
            return feedback_record(_load(s, feedback_id))

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
            fb = _load(s, feedback_id)
            _check_pending(fb)
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
                superseded = self._supersede(s, pair.question_hash, now)
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
        g = grounding.check(correction, _evidence(usable.values()), self.threshold)
        # Gold: the sources the correction cites, or that the check finds supporting it; when none
        # does (the sources are wrong or incomplete), all those shown, and the record says so.
        labels = g.cited or list(usable)
        answer = g.answer if g.cited else correction
        category = "feedback.abstention" if g.abstained else "feedback.correction"
        return self._pair(s, fb, [usable[lbl] for lbl in labels], _relabel(answer, labels), category,
                          check="review", method_note="correction")

    # --- thumbs-up: positive pairs that pass the support check ----------------------------------

    def harvest_positive(self, limit: int | None = None) -> HarvestReport:
        """Turn pending thumbs-up answers into pairs where the grounding check supports them; mark
        the others rejected with the reason. Each feedback row is one transaction."""
        report = HarvestReport()
        q = select(Feedback.id).where(Feedback.rating > 0, Feedback.review_status == "pending").order_by(Feedback.id)
        if limit is not None:
            q = q.limit(limit)
        with self.store.session() as s:
            ids = list(s.scalars(q))
        for fid in ids:
            with self.store.session() as s:
                fb = s.get(Feedback, fid)
                if fb is None or fb.review_status != "pending":  # deleted or reviewed meanwhile
                    continue
                report.examined += 1
                pair, reason = self._positive_pair(s, fb)
                now = utcnow()
                fb.reviewed_at = now
                if pair is None:
                    fb.review_status = "rejected"
                    fb.review = {"action": "harvest", "reason": reason}
                    report.rejected += 1
                    report.reasons[reason] += 1
                    continue
                pair.created_at = now
                s.add(pair)
                s.flush()
                fb.review_status = "accepted"
                fb.review = {"action": "harvest", "qa_pair_id": pair.id}
                report.added += 1
                report.pair_ids.append(pair.id)
        return report

    def _positive_pair(self, s: Session, fb: Feedback) -> tuple[QAPair | None, str]:
        if fb.verified is False:  # the Verdict stored with the rating; None (not sent) is checked below
            return None, "the answer was shown as not verified against its sources"
        dup = s.scalar(select(QAPair.id).where(QAPair.question_hash == question_hash(fb.question),
                                               QAPair.retired_at.is_(None), QAPair.validated.is_(True)).limit(1))
        if dup is not None:
            return None, f"the question is already a QA pair (#{dup})"
        shown = resolve(s, fb.sources or [])
        usable = {x.label: x for x in shown if x.chunk is not None}
        if not usable:
            return None, "no source shown with the answer is still in the store" if shown else "no sources were shown with the answer"
        g = grounding.check(fb.answer, _evidence(usable.values()), self.threshold)
        if g.invalid:
            gone = [x.label for x in shown if x.label in g.invalid]
            detail = "whose source is no longer in the store" if gone else "which were not shown with it"
            return None, f"the answer cites {', '.join(g.invalid)}, {detail}"
        if not g.supported:
            return None, f"not supported by its sources: {g.reason}"
        pair = self._pair(s, fb, [usable[lbl] for lbl in g.cited], _relabel(g.answer, g.cited), "feedback.positive",
                          check="grounding", method_note="thumbs-up")
        if not pair.validated:
            return None, f"not supported by its sources: {pair.validation.get('reason')}"
        return pair, ""

    # --- parts ----------------------------------------------------------------------------------

    def _pair(self, s: Session, fb: Feedback, gold: list[Shown], answer: str, category: str, *,
              check: str, method_note: str) -> QAPair:
        sources = [(x.source, x.chunk) for x in gold if x.source is not None and x.chunk is not None]
        ok, grounded = validate(answer, sources, self.threshold)
        # A reviewer's correction is validated by the review; the lexical check is kept for the
        # record (training drops examples whose gold text does not support the answer).
        validation = {"check": "review", "supported": True, "grounding": grounded} if check == "review" else grounded
        source_ids = list(dict.fromkeys(src.id for src, _ in sources))
        question = fb.question.strip()
        return QAPair(
            question=question,
            answer=answer.strip(),
            chunk_ids=[c.id for _, c in sources],
            source_ids=source_ids,
            kind=sources[0][0].kind,
            category=category,
            method=METHOD,
            validated=ok or check == "review",
            validation=validation,
            split=self._split(s, source_ids),
            provenance={
                "sources": [place(src, c) for src, c in sources],
                "feedback": {"id": fb.id, "from": method_note, "rating": fb.rating, "channel": fb.channel,
                             "external_id": fb.external_id, "model": fb.model, "adapter": fb.adapter,
                             "answer_shown": fb.answer, "comment": fb.comment,
                             "rated_at": fb.created_at.isoformat() if fb.created_at else None},
            },
            question_hash=question_hash(question),
            source_hash=sources[0][0].content_hash,
        )

    def _split(self, s: Session, source_ids: list[str]) -> str:
        qa = self.settings.qa
        best = "train"
        for sid in source_ids:
            existing = {sp for sp in s.scalars(select(QAPair.split).distinct().where(
                QAPair.retired_at.is_(None), QAPair.source_ids[0].as_string() == sid)) if sp in _HELD_OUT}
            for sp in existing or {split_for(sid, salt=qa.split_salt, train_share=qa.train_share,
                                             validation_share=qa.validation_share)}:
                if _HELD_OUT[sp] > _HELD_OUT[best]:
                    best = sp
        return best

    @staticmethod
    def _supersede(s: Session, qhash: str, now: datetime) -> list[int]:
        """An earlier correction of the same question gives way to this one."""
        old = list(s.scalars(select(QAPair.id).where(QAPair.question_hash == qhash, QAPair.method == METHOD,
                                                     QAPair.retired_at.is_(None))))
        if old:
            s.execute(update(QAPair).where(QAPair.id.in_(old)).values(retired_at=now)
                      .execution_options(synchronize_session=False))
        return old


# --- finding the shown citations again ------------------------------------------------------------


def resolve(s: Session, shown: list[Any]) -> list[Shown]:
    """Each citation shown with an answer (the Citation shape, as JSON), found in the store: its
    source by id, its chunk by position (lines or seconds) and snippet."""
    out: list[Shown] = []
    for i, raw in enumerate(shown, start=1):
        c: dict[str, Any] = raw if isinstance(raw, dict) else {}
        # Labels are S1, S2… as the answer service numbers them; anything else gets its position's.
        label = str(c.get("id") or "")
        if not re.fullmatch(r"S\d+", label):
            label = f"S{i}"
        sid = c.get("source_id")
        src = s.get(Source, sid) if isinstance(sid, str) and sid else None
        if src is None:
            out.append(Shown(label, None, None, "its source is no longer in the store" if sid else "it names no source"))
            continue
        chunk = _chunk_of(src, c)
        out.append(Shown(label, src, chunk, "" if chunk is not None else "no chunk of its source matches it now"))
    return out


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _chunk_of(src: Source, c: dict[str, Any]) -> Chunk | None:
    chunks = list(src.chunks)
    lines = (_num(c.get("start_line")), _num(c.get("end_line")))
    times = (_num(c.get("start_time")), _num(c.get("end_time")))

    def at(ch: Chunk) -> bool:
        if lines[0] is not None:
            return ch.start_line == lines[0] and (lines[1] is None or ch.end_line == lines[1])
        if times[0] is not None and ch.start_time is not None:
            same_end = times[1] is None or (ch.end_time is not None and abs(ch.end_time - times[1]) < 1e-3)
            return abs(ch.start_time - times[0]) < 1e-3 and same_end
        return False

    snippet = str(c.get("snippet") or "")

    def shows(ch: Chunk) -> bool:  # cite() keeps a chunk whole, or its start and "…"
        if not snippet:
            return False
        return ch.text.startswith(snippet[:-1].rstrip()) if snippet.endswith("…") else ch.text == snippet

    placed = [ch for ch in chunks if at(ch)]
    for ch in (*[ch for ch in placed if shows(ch)], *[ch for ch in chunks if shows(ch)]):
        return ch  # the text shown, preferably where it was shown
    if len(placed) == 1:  # same place, text changed since: the support check decides
        return placed[0]
    if not snippet and lines[0] is None and times[0] is None and len(chunks) == 1:
        return chunks[0]
    return None


def _evidence(shown: Iterable[Shown]) -> list[Evidence]:
    """The sources as the model reads them in a prompt (label line and text), under their shown labels."""
    return [as_seen(Evidence(cite(x.source, x.chunk, x.label), x.chunk.text))
            for x in shown if x.source is not None and x.chunk is not None]


_AFTER_STOP = re.compile(r"(?<=\w)([.!?])((?:[ \t]*\[S\d+\])+)(?=\s|$)")


def _relabel(answer: str, gold_labels: list[str]) -> str:
    """Shown labels -> S1..Sn in gold order, the numbering every pair's answer uses, and placed
    before the full stop ("backoff. [S1]" -> "backoff [S1].") as the other pairs write them."""
    mapping = {old: f"S{i}" for i, old in enumerate(gold_labels, start=1)}
    out = grounding.CITATION.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", answer)
    return _AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", out)


def _load(s: Session, feedback_id: int) -> Feedback:
    fb = s.get(Feedback, feedback_id)
    if fb is None:
        raise NotFound(f"no feedback {feedback_id}")
    return fb


def _check_pending(fb: Feedback) -> None:
    if fb.review_status != "pending":
        when = f" at {fb.reviewed_at.isoformat(timespec='seconds')}" if fb.reviewed_at else ""
        raise Conflict(f"feedback {fb.id} was already reviewed ({fb.review_status}{when}); a review is final")


def feedback_record(f: Feedback) -> dict[str, Any]:
    return {"id": f.id, "created_at": f.created_at.isoformat() if f.created_at else None, "rating": f.rating,
            "channel": f.channel, "question": f.question, "answer": f.answer, "comment": f.comment,
            "sources": f.sources, "model": f.model, "adapter": f.adapter, "verified": f.verified,
            "verdict": f.verdict, "review_status": f.review_status,
            "correction": f.correction, "reviewed_at": f.reviewed_at.isoformat() if f.reviewed_at else None,
            "review": f.review or {}}


def pair_record(p: QAPair) -> dict[str, Any]:
    return {"id": p.id, "question": p.question, "answer": p.answer, "split": p.split, "kind": p.kind,
            "category": p.category, "method": p.method, "validated": p.validated, "chunk_ids": p.chunk_ids,
            "source_ids": p.source_ids, "provenance": p.provenance, "validation": p.validation,
            "question_hash": p.question_hash, "source_hash": p.source_hash}
