"""Plain-text transcripts, with timestamps at line starts or none: missing times are placed by word count."""

from __future__ import annotations

import re
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.segments import (
    WORDS_PER_SECOND,
    ParsedTranscript,
    clean_text,
    finish_segments,
    parse_timestamp,
    speaker_labels,
    split_lines,
    split_speaker,
)

_TS = r"\d{1,2}(?::\d{2}){1,2}(?:[.,]\d{1,3})?"
_PLAIN_TIMESTAMP = re.compile(rf"^\s*(?:\[({_TS})\]|\(({_TS})\)|({_TS})(?=\s|$))[ \t]*(?:[-–—|][ \t]*)?")


def parse_plain_text(text: str) -> ParsedTranscript:
    """Lines with optional leading timestamps (`[00:01:23]`, `00:01:23`, `(1:23)`) and optional
    `SPEAKER: text` prefixes. Without any timestamp, times are estimated from the word count."""
    lines = split_lines(text)
    stripped: list[tuple[float | None, str]] = []
    for n, line in enumerate(lines):
        m = _PLAIN_TIMESTAMP.match(line)
        if m:
            try:
                ts: float | None = parse_timestamp(next(g for g in m.groups() if g))
            except InvalidInput as e:
                raise InvalidInput(f"line {n + 1}: {e}") from None
            stripped.append((ts, line[m.end():]))
        else:
            stripped.append((None, line))
    labels = speaker_labels([t for _, t in stripped])

    # units: [time or None, speaker, lines of text]; lines are joined at the end, since adding each
    # wrapped line to a growing string made a long paragraph quadratic
    parts: list[list[Any]] = []
    blank_before = True
    speaker: str | None = None
    for ts, line in stripped:
        if not line.strip() and ts is None:
            blank_before = True
            continue
        spk, body = split_speaker(line.strip(), labels)
        if ts is None and spk is None and parts and not blank_before:
            parts[-1][2].append(body)  # a wrapped line continues its paragraph
        else:
            speaker = spk or speaker  # a paragraph without a name continues the last speaker
            parts.append([ts, speaker, [body]])
        blank_before = False
    units = [[ts, spk, text] for ts, spk, lines in parts if clean_text(text := " ".join(lines))]
    if not units:
        raise InvalidInput("empty file" if not text.strip() else "no transcript text found")

    anchors = [i for i, u in enumerate(units) if u[0] is not None]
    meta: dict[str, Any] = {}
    if not anchors:
        meta["times_estimated"] = True
    starts = _place_times([u[0] for u in units], [len(u[2].split()) for u in units])
    raw: list[tuple[float, float, str, str | None]] = []
    for i, u in enumerate(units):
        end = starts[i + 1] if i + 1 < len(units) else starts[i] + len(u[2].split()) / WORDS_PER_SECOND
        raw.append((starts[i], max(end, starts[i]), u[2], u[1]))
    return finish_segments("text", raw, meta, empty="no transcript text found")


def _place_times(known: list[float | None], words: list[int]) -> list[float]:
    """Start times for every unit: the given ones, and between them shares of the gap by word
    count (at the speaking rate after the last known time, from 0 before the first)."""
    starts: list[float] = []
    n = len(known)
    i = 0
    t = 0.0
    while i < n:
        if known[i] is not None:
            t = float(known[i])  # type: ignore[arg-type]
            starts.append(t)
            i += 1
            continue
        j = i
        while j < n and known[j] is None:
            j += 1
        run = words[i:j]
        if j < n:  # interpolate between t (or 0) and the next known time
            nxt = float(known[j])  # type: ignore[arg-type]
            prev_words = words[i - 1] if i > 0 else 0
            total = prev_words + sum(run)
            span = max(nxt - t, 0.0)
            acc = prev_words
            for w in run:
                starts.append(t + span * acc / total if total else t)
                acc += w
        else:  # estimate at the speaking rate
            cur = t + (words[i - 1] / WORDS_PER_SECOND if i > 0 else 0.0)
            for w in run:
                starts.append(cur)
                cur += w / WORDS_PER_SECOND
        i = j
        if starts:
            t = starts[-1]
    return starts
