"""A question-answer pair before it is stored, and what every pair carries: provenance and validation.

Answers cite their gold chunk as ``[S1]`` (``[S2]``… for a second gold chunk, in ``chunk_ids``
order). Validation is checked against the text the model sees for that source in a prompt: the
source's header line (path and lines, a commit's sha, issue number, lecture and time) and the chunk
text, with the header :func:`lorebase.generation.prompts.format_source` shows.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from lorebase.citations import cite
from lorebase.generation import grounding
from lorebase.generation.prompts import Evidence, source_header
from lorebase.store.models import Chunk, Source

_SPACE = re.compile(r"\s+")


@dataclass
class QADraft:
    question: str
    answer: str
    chunk_ids: list[int]
    source_ids: list[str]
    kind: str | None
    category: str
    method: str
    provenance: dict[str, Any]
    source_hash: str | None
    validation: dict[str, Any] = field(default_factory=dict)

    @property
    def question_hash(self) -> str:
        return question_hash(self.question)

    @property
    def group(self) -> str:
        """The source whose split this pair follows (for an unanswerable pair: the withheld one)."""
        return self.source_ids[0] if self.source_ids else ""


def question_hash(question: str) -> str:
    """Hash of a question up to case and spacing, so trivially re-worded copies collide."""
    return hashlib.sha256(_SPACE.sub(" ", question.strip().lower()).encode("utf-8")).hexdigest()


def place(source: Source, chunk: Chunk) -> dict[str, Any]:
    """Where a chunk is: the fields a reader needs to find it again (path/lines/sha/number/time)."""
    out: dict[str, Any] = {
        "source_id": source.id,
        "source_key": source.key,
        "kind": source.kind,
        "title": source.title,
        "chunk_id": chunk.id,
        "chunk_ordinal": chunk.ordinal,
        "chunk_hash": chunk.content_hash,
        "content_hash": source.content_hash,
    }
    for name, value in (
        ("repo", source.repo), ("path", source.path), ("commit", source.commit), ("number", source.number),
        ("url", source.url), ("lecture", source.lecture),
        ("start_line", chunk.start_line), ("end_line", chunk.end_line),
        ("start_time", chunk.start_time), ("end_time", chunk.end_time),
    ):
        if value is not None:
            out[name] = value
    return out


def evidence(source: Source, chunk: Chunk, label: str = "S1") -> Evidence:
    return Evidence(cite(source, chunk, label), chunk.text)


def as_seen(ev: Evidence) -> Evidence:
    """The same source with its header line in the text: what the model reads in the prompt."""
    return Evidence(ev.citation, f"{source_header(ev.citation)}\n{ev.text}")


def validate(answer: str, sources: list[tuple[Source, Chunk]], threshold: float) -> tuple[bool, dict[str, Any]]:
    """Is every sentence of ``answer`` supported by the sources it cites? (grounding.check)"""
    seen = [as_seen(evidence(s, c, f"S{i}")) for i, (s, c) in enumerate(sources, start=1)]
    g = grounding.check(answer, seen, threshold)
    ok = g.supported and not g.invalid and set(g.cited) == {e.label for e in seen} and "[S" in answer
    reason = g.reason
    if g.supported and not ok:
        reason = "the answer does not cite its source" if "[S" not in answer else "the answer cites sources other than its gold ones"
    return ok, {"check": "grounding", "supported": ok, "score": round(g.score, 4), "reason": reason, "threshold": threshold}


def draft_for(
    source: Source,
    chunk: Chunk,
    question: str,
    answer: str,
    *,
    category: str,
    method: str,
    threshold: float,
    extra: dict[str, Any] | None = None,
) -> tuple[QADraft, bool]:
    """A single-chunk pair, validated; returns (draft, valid)."""
    ok, validation = validate(answer, [(source, chunk)], threshold)
    if extra:
        validation.update(extra)
    draft = QADraft(
        question=question.strip(),
        answer=answer.strip(),
        chunk_ids=[chunk.id],
        source_ids=[source.id],
        kind=source.kind,
        category=category,
        method=method,
        provenance={"sources": [place(source, chunk)]},
        source_hash=source.content_hash,
        validation=validation,
    )
    return draft, ok


def with_citation(sentence: str, label: str = "S1") -> str:
    """``"It does X."`` -> ``"It does X [S1]."``: the label right after what it supports."""
    s = sentence.rstrip()
    if s and s[-1] in ".!?":
        return f"{s[:-1].rstrip()} [{label}]{s[-1]}"
    return f"{s} [{label}]."


def strip_citations(text: str) -> str:
    return _SPACE.sub(" ", grounding.CITATION.sub("", text)).replace(" .", ".").strip()
