"""Thumbs-up answers become QA pairs, but only those not shown as unverified (the Verdict stored
with the rating says so; nothing reads the answer text for it) and that the grounding check finds
supported by the sources they cite. The others are marked rejected, with the reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorebase.feedback.pairs import PairMaker, evidence, relabel, resolve
from lorebase.finetune.qa_drafts import question_hash
from lorebase.generation import grounding
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import Feedback, QAPair, utcnow


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


def harvest_positive(settings: Settings, store: Store, limit: int | None = None) -> HarvestReport:
    """Turn pending thumbs-up answers into pairs where the grounding check supports them; mark
    the others rejected with the reason. Each feedback row is one transaction."""
    pairs = PairMaker(settings)
    report = HarvestReport()
    q = select(Feedback.id).where(Feedback.rating > 0, Feedback.review_status == "pending").order_by(Feedback.id)
    if limit is not None:
        q = q.limit(limit)
    with store.session() as s:
        ids = list(s.scalars(q))
    for fid in ids:
        with store.session() as s:
            fb = s.get(Feedback, fid)
            if fb is None or fb.review_status != "pending":  # deleted or reviewed meanwhile
                continue
            report.examined += 1
            pair, reason = _positive_pair(pairs, s, fb)
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


def _positive_pair(pairs: PairMaker, s: Session, fb: Feedback) -> tuple[QAPair | None, str]:
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
    g = grounding.check(fb.answer, evidence(usable.values()), pairs.threshold)
    if g.invalid:
        gone = [x.label for x in shown if x.label in g.invalid]
        detail = "whose source is no longer in the store" if gone else "which were not shown with it"
        return None, f"the answer cites {', '.join(g.invalid)}, {detail}"
    if not g.supported:
        return None, f"not supported by its sources: {g.reason}"
    pair = pairs.pair(s, fb, [usable[lbl] for lbl in g.cited], relabel(g.answer, g.cited), "feedback.positive",
                      check="grounding", method_note="thumbs-up")
    if not pair.validated:
        return None, f"not supported by its sources: {pair.validation.get('reason')}"
    return pair, ""
