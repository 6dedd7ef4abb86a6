"""Evidence, not chunks: the lines or sentences of each retrieved chunk that bear on the question.

A retrieved chunk is 45-90 s of talk or up to a hundred lines of code; the answer usually rests on a
few of them. We split each chunk into small units (a few code lines, one sentence of talk or prose),
score each unit against the question by word overlap and by the embedder's cosine, and keep the
best units with a little context, in their original order, within a per-source budget. Each kept
piece knows its exact lines or times, so the citation points at what the model was shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lorebase.citations import Citation
from lorebase.generation.disfluency import clean_speech
from lorebase.generation.grounding import content_words, split_sentences
from lorebase.generation.prompts import GAP
from lorebase.index.speakers import named_speakers

CODE_UNIT_LINES = 3  # code is scored in windows of this many lines
# "What did Kirsty Williams say about X?": her sentences about X come before the question someone else
# asked in the same words (which always matches best). For ranking only: the relevance score a
# selection reports stays the plain match.
SPEAKER_BONUS = 1.0


@dataclass(frozen=True)
class Unit:
    """A scoreable piece of a chunk with its exact position (lines or seconds, when known)."""

    text: str
    start_line: int | None = None
    end_line: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    speaker: str | None = None


@dataclass(frozen=True)
class Selection:
    """What was kept of one chunk: the text shown to the model and the narrowed citation."""

    citation: Citation
    text: str
    units: tuple[Unit, ...]
    best: Unit  # the single best unit: the extractive answer quotes it
    score: float  # how close the chunk's closest unit is to the question (0..1), without the speaker bonus


def units_of(citation: Citation, text: str, meta: dict | None = None) -> list[Unit]:
    """Split a chunk into units that keep their positions."""
    if citation.start_line is not None and citation.kind in ("code", "doc"):
        lines = text.split("\n")
        out: list[Unit] = []
        step = CODE_UNIT_LINES if citation.kind == "code" else 1
        for i in range(0, len(lines), step):
            block = "\n".join(lines[i:i + step])
            if block.strip():
                first = citation.start_line + i
                out.append(Unit(block, first, first + min(step, len(lines) - i) - 1))
        return out
    if citation.start_time is not None and citation.end_time is not None:
        return _timed_sentences(text, citation.start_time, citation.end_time, (meta or {}).get("spans"))
    return [Unit(s) for s in _prose_units(text)]


def _prose_units(text: str) -> list[str]:
    out: list[str] = []
    for line in text.split("\n"):
        out.extend(split_sentences(line) if len(line) > 160 else ([line] if line.strip() else []))
    return out


def _timed_sentences(text: str, start: float, end: float, spans: list[list[float]] | None) -> list[Unit]:
    """Sentences of a transcript chunk, cleaned of hesitations (lorebase/generation/disfluency.py),
    with the times of the words as spoken: from the chunk's recorded spans
    ([char_start, char_end, start_s, end_s] per piece) when the ingester kept them, else shared out
    over the chunk's time by character position."""
    out: list[Unit] = []
    pos = 0
    for line in text.split("\n"):
        speaker, body = _split_speaker(line)
        for sent in split_sentences(body):
            i = text.find(sent, pos)
            if i < 0:
                continue
            j = i + len(sent)
            pos = j
            said = clean_speech(sent)
            if not content_words(said):  # "Um.", "Mm-hmm." say nothing to quote
                continue
            t0, t1 = _times(i, j, len(text), start, end, spans)
            out.append(Unit(f"{speaker}: {said}" if speaker else said, start_time=t0, end_time=t1, speaker=speaker))
    return out


_SPEAKER = re.compile(r"^([A-Z][\w .'-]{0,40}):\s+")


def _split_speaker(line: str) -> tuple[str | None, str]:
    m = _SPEAKER.match(line)
    return (m.group(1), line[m.end():]) if m else (None, line)


def _times(i: int, j: int, n: int, start: float, end: float, spans: list[list[float]] | None) -> tuple[float, float]:
    if spans:
        inside = [s for s in spans if s[1] > i and s[0] < j]
        if inside:
            return float(inside[0][2]), float(inside[-1][3])
    span = max(end - start, 0.0)
    return round(start + span * i / max(n, 1), 2), round(start + span * j / max(n, 1), 2)


def lexical_scores(question: str, units: Sequence[Unit]) -> list[float]:
    """Share of the question's content words (identifiers split too) found in each unit."""
    q = set(_words(question))
    if not q:
        return [0.0] * len(units)
    return [len(q & set(_words(u.text))) / len(q) for u in units]


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _words(text: str) -> list[str]:
    words = content_words(text)
    # get_encodings_from_content and getEncodings also match "encodings" and "content"
    for token in re.findall(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]*", text):
        words.extend(content_words(" ".join(_CAMEL.sub(" ", token).replace("_", " ").split())))
    return words


def select(
    question: str,
    chunks: Sequence[tuple[Citation, str, dict | None]],
    embed: Callable[[list[str]], np.ndarray] | None,
    query_vector: np.ndarray | None,
    budget_chars: int,
) -> list[Selection]:
    """For each (citation, chunk text, chunk meta), the units that bear on the question, within
    `budget_chars` per source. `embed` maps texts to unit-normalised vectors (None: lexical only)."""
    per_chunk = [units_of(c, t, m) for c, t, m in chunks]
    flat = [u for us in per_chunk for u in us]
    lex = lexical_scores(question, flat)
    if embed is not None and query_vector is not None and flat:
        vecs = embed([u.text for u in flat])
        cos = np.clip(vecs @ query_vector, 0.0, 1.0).tolist()
        scores = [0.5 * a + 0.5 * b for a, b in zip(lex, cos, strict=True)]
    else:
        scores = lex
    out: list[Selection] = []
    k = 0
    for (citation, text, _), units in zip(chunks, per_chunk, strict=True):
        s = scores[k:k + len(units)]
        k += len(units)
        if not units:
            out.append(Selection(citation, text[:budget_chars], (), Unit(text[:budget_chars]), 0.0))
            continue
        rank = _speaker_ranked(question, units, s)
        keep = _pick(units, rank, budget_chars, context=1 if citation.kind == "code" else 0)
        best = max(range(len(units)), key=lambda i: rank[i])
        kept = tuple(units[i] for i in keep)
        out.append(Selection(_narrow(citation, kept), _join(units, keep), kept, units[best], float(max(s))))
    return out


def _speaker_ranked(question: str, units: Sequence[Unit], scores: Sequence[float]) -> list[float]:
    """Scores for ranking: units spoken by a speaker the question names rank first, best first."""
    speakers = {u.speaker for u in units if u.speaker}
    named = named_speakers(question, speakers) if speakers else set()
    if not named:
        return list(scores)
    return [x + SPEAKER_BONUS if u.speaker in named else x for u, x in zip(units, scores, strict=True)]


def _pick(units: Sequence[Unit], scores: Sequence[float], budget: int, context: int) -> list[int]:
    """Best units first, each with `context` neighbours, until the budget is spent; always one."""
    chosen: set[int] = set()
    used = 0
    top = max(scores, default=0.0)
    for i in sorted(range(len(units)), key=lambda i: -scores[i]):
        # Well below the chunk's best, a unit is filler ("Um.", a blank line): the budget is a cap, not a quota.
        if chosen and (scores[i] <= 0 or scores[i] < 0.6 * top):
            break
        group = [j for j in range(i - context, i + context + 1) if 0 <= j < len(units) and j not in chosen]
        cost = sum(len(units[j].text) + 1 for j in group)
        if chosen and used + cost > budget:
            if used + len(units[i].text) + 1 > budget:
                continue
            group, cost = [i], len(units[i].text) + 1
        chosen.update(group)
        used += cost
        if used >= budget:
            break
    return sorted(chosen)


def _join(units: Sequence[Unit], keep: Sequence[int]) -> str:
    parts: list[str] = []
    prev = None
    for i in keep:
        if prev is not None and i != prev + 1:
            parts.append(GAP)
        parts.append(units[i].text)
        prev = i
    sep = "\n" if units and units[0].start_line is not None else " "
    return sep.join(parts) if sep == "\n" else _join_prose(parts)


def _join_prose(parts: Sequence[str]) -> str:
    # Speaker turns read better one per line; plain sentences run on.
    return "\n".join(parts) if any(":" in p[:42] for p in parts) else " ".join(parts)


def _narrow(c: Citation, kept: Sequence[Unit]) -> Citation:
    """The citation of exactly the kept units' span."""
    lines = [u for u in kept if u.start_line is not None]
    times = [u for u in kept if u.start_time is not None]
    update: dict[str, object] = {}
    if lines:
        update.update(start_line=min(u.start_line for u in lines if u.start_line is not None),
                      end_line=max(u.end_line for u in lines if u.end_line is not None))
    if times:
        update.update(start_time=min(u.start_time for u in times if u.start_time is not None),
                      end_time=max(u.end_time for u in times if u.end_time is not None))
    if not update:
        return c
    uri = c.uri
    if uri and lines and "#L" in uri:
        uri = uri.split("#L")[0] + f"#L{update['start_line']}-L{update['end_line']}"
    elif uri and times and "t=" in uri:
        uri = re.sub(r"t=\d+", f"t={int(float(str(update['start_time'])))}", uri)
    return c.model_copy(update={**update, "uri": uri})
