"""Unanswerable pairs, to teach abstention: a real question, its gold source withheld, only
distractor chunks as context, and the abstention text as the answer.

Distractors are what retrieval finds for the question outside the gold source (hard negatives: they
look relevant), less any chunk that supports the gold answer on its own, so the target "the sources
do not contain the answer" is true of the contexts shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lorebase.finetune.qa_drafts import QADraft, as_seen, evidence, place, strip_citations
from lorebase.generation import grounding
from lorebase.generation.prompts import ABSTAIN_TEXT

if TYPE_CHECKING:
    from lorebase.index.search import Hit

Retrieve = Callable[[str, int], "list[Hit]"]


def chosen(question_hash: str, share: float, salt: str) -> bool:
    """Deterministic draw: the same question is chosen (or not) in every run."""
    h = hashlib.sha256(f"abstain\x00{salt}\x00{question_hash}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


def distractors(
    question: str,
    answer: str,
    exclude_sources: set[str],
    retrieve: Retrieve,
    n: int,
    threshold: float,
) -> tuple[list[Hit], float]:
    """Up to ``n`` retrieved chunks outside ``exclude_sources`` that do not support ``answer``, and
    the highest support any kept one gives it."""
    claim = strip_citations(answer)
    kept: list[Hit] = []
    worst = 0.0
    for hit in retrieve(question, max(n * 4, 10)):
        if hit.source.id in exclude_sources:
            continue
        score = grounding.support(claim, as_seen(evidence(hit.source, hit.chunk)).text)
        if score >= threshold:
            continue
        kept.append(hit)
        worst = max(worst, score)
        if len(kept) >= n:
            break
    return kept, worst


def abstention_pairs(
    answerable: Sequence[QADraft],
    retrieve: Retrieve,
    *,
    share: float,
    contexts: int,
    threshold: float,
    salt: str,
) -> list[QADraft]:
    out: list[QADraft] = []
    for d in answerable:
        if d.method == "abstention" or not chosen(d.question_hash, share, salt):
            continue
        hits, worst = distractors(d.question, d.answer, set(d.source_ids), retrieve, contexts, threshold)
        if not hits:
            continue
        out.append(QADraft(
            question=d.question,
            answer=ABSTAIN_TEXT,
            chunk_ids=[],  # no gold chunk is shown: the contexts are in provenance
            source_ids=list(d.source_ids),  # the withheld source: the pair follows its split and its changes
            kind=d.kind,
            category="abstention",
            method="abstention",
            provenance={
                "withheld": d.provenance.get("sources", []),
                "withheld_answer": d.answer,
                "contexts": [place(h.source, h.chunk) for h in hits],
                "from_category": d.category,
                "from_method": d.method,
            },
            source_hash=d.source_hash,
            validation={"check": "distractors_lack_answer", "max_support": round(worst, 4), "threshold": threshold,
                        "supported": True, "contexts": len(hits)},
        ))
    return out
