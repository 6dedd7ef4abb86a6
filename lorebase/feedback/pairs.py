"""QA pairs made from feedback, and the citations shown with an answer found again in the store.

Pairs made here have method ``feedback``. Their gold chunks are the sources shown with the answer
that the answer cites (relabelled S1..Sn in that order, as every pair's answer is), and their
provenance names those chunks (path/lines/sha/number/time) and the feedback they came from. Their
split follows the source-grouped rule: a source that already has pairs keeps their split, a new one
gets the split the salted hash gives it; a pair citing several sources takes the most held-out of
their splits (test over validation over train), so test material never leaks into training.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lorebase.citations import cite
from lorebase.errors import Conflict, NotFound
from lorebase.finetune.qa_drafts import as_seen, place, question_hash, validate
from lorebase.finetune.splits import split_for
from lorebase.generation import grounding
from lorebase.generation.prompts import Evidence
from lorebase.settings import Settings
from lorebase.store.models import Chunk, Feedback, QAPair, Source

METHOD = "feedback"
# How held-out a split is: a pair citing several sources takes the highest.
_HELD_OUT = {"train": 0, "validation": 1, "test": 2}


@dataclass
class Shown:
    """A citation as shown with the answer, found again in the store (or why it could not be)."""

    label: str
    source: Source | None
    chunk: Chunk | None
    problem: str = ""



class PairMaker:
    """Builds a feedback row's QA pair: validated against its gold text, with its split and provenance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.threshold = settings.answer.support_threshold

    def pair(self, s: Session, fb: Feedback, gold: list[Shown], answer: str, category: str, *,
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
            split=self.split(s, source_ids),
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

    def split(self, s: Session, source_ids: list[str]) -> str:
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
    def supersede(s: Session, qhash: str, now: datetime) -> list[int]:
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


def evidence(shown: Iterable[Shown]) -> list[Evidence]:
    """The sources as the model reads them in a prompt (label line and text), under their shown labels."""
    return [as_seen(Evidence(cite(x.source, x.chunk, x.label), x.chunk.text))
            for x in shown if x.source is not None and x.chunk is not None]


_AFTER_STOP = re.compile(r"(?<=\w)([.!?])((?:[ \t]*\[S\d+\])+)(?=\s|$)")


def relabel(answer: str, gold_labels: list[str]) -> str:
    """Shown labels -> S1..Sn in gold order, the numbering every pair's answer uses, and placed
    before the full stop ("backoff. [S1]" -> "backoff [S1].") as the other pairs write them."""
    mapping = {old: f"S{i}" for i, old in enumerate(gold_labels, start=1)}
    out = grounding.CITATION.sub(lambda m: f"[{mapping.get(m.group(1), m.group(1))}]", answer)
    return _AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", out)


def load(s: Session, feedback_id: int) -> Feedback:
    fb = s.get(Feedback, feedback_id)
    if fb is None:
        raise NotFound(f"no feedback {feedback_id}")
    return fb


def check_pending(fb: Feedback) -> None:
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
