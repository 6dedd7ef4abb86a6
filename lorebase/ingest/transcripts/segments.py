"""Timed segments, the one shape every transcript format is parsed into, and what the parsers share:
timestamps, speakers written as "NAME: text", and the checks every parsed transcript passes.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

from lorebase.errors import InvalidInput

WORDS_PER_SECOND = 2.5  # ~150 words a minute: a usual lecture pace, used where a file has no times
BACKWARD_TOLERANCE_S = 10.0  # overlapping cues are normal; a jump back further than this is a broken file
END_BEFORE_START_TOLERANCE_S = 1.0  # rounding in exporters; beyond this a cue is malformed


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float
    text: str
    speaker: str | None = None


@dataclass
class ParsedTranscript:
    format: str  # webvtt | srt | text | whisper_json | caption_json | youtube_json3
    segments: list[Segment]
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. language, times_estimated

    @property
    def speakers(self) -> list[str]:
        return speakers_of(self.segments)


def speakers_of(segments: list[Segment]) -> list[str]:
    """Named speakers in order of first appearance."""
    return list(dict.fromkeys(s.speaker for s in segments if s.speaker))

_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d+):(\d{2})(?:[.,](\d{1,3}))?$")


def parse_timestamp(value: str) -> float:
    """`hh:mm:ss.mmm`, `mm:ss.mmm`, with `.` or `,` before the milliseconds (SRT uses a comma)."""
    m = _TIMESTAMP.match(value.strip())
    if not m:
        raise InvalidInput(f"bad timestamp {value.strip()!r}")
    hours, minutes, seconds, frac = m.groups()
    if int(seconds) > 59 or (hours is not None and int(minutes) > 59):
        raise InvalidInput(f"bad timestamp {value.strip()!r}")
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return total + (int(frac.ljust(3, "0")) / 1000 if frac else 0.0)


def split_lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def clean_text(text: str) -> str:
    return " ".join(html.unescape(text).split())

# --- speakers written as "NAME: text" -------------------------------------------------------------

_SPEAKER_PREFIX = re.compile(r"^(?:>>\s*)?([A-Z][\w.'’-]*(?:[ \t]+[\w.'’()-]+){0,3}?)[ \t]*:[ \t]+(?=\S)")
_NOT_SPEAKERS = {"note", "example", "warning", "tip", "todo", "http", "https", "step", "figure", "see", "e.g", "i.e"}


def _speaker_candidate(line: str) -> tuple[str, str] | None:
    m = _SPEAKER_PREFIX.match(line)
    if not m:
        return None
    label = m.group(1).strip()
    if label.lower().rstrip(".") in _NOT_SPEAKERS:
        return None
    return label, line[m.end():]


def speaker_labels(lines: list[str]) -> set[str]:
    """Labels taken as speakers: ALL-CAPS ones (LECTURER:, SPEAKER 1:) or any used on two lines or
    more. One "Remember: ..." is prose; a name that keeps coming back is a speaker."""
    counts: dict[str, int] = {}
    for line in lines:
        cand = _speaker_candidate(line.strip())
        if cand:
            counts[cand[0]] = counts.get(cand[0], 0) + 1
    return {label for label, n in counts.items() if n >= 2 or label.isupper()}


def split_speaker(line: str, labels: set[str]) -> tuple[str | None, str]:
    cand = _speaker_candidate(line)
    if cand and cand[0] in labels:
        return cand
    return None, line

# --- common checks ------------------------------------------------------------------------------


def finish_segments(fmt: str, raw: list[tuple[float, float, str, str | None]], meta: dict[str, Any], empty: str) -> ParsedTranscript:
    """Validate and normalise: drop empty text, refuse wild jumps back in time, sort, and clip
    overlaps so that each segment ends no later than the next begins."""
    rows: list[tuple[float, float, str, str | None]] = []
    latest = -math.inf
    for n, (start, end, text, speaker) in enumerate(raw, 1):
        text = clean_text(text)
        if not text:
            continue
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < 0:
            raise InvalidInput(f"segment {n}: times must be finite and not negative")
        if start < latest - BACKWARD_TOLERANCE_S:
            raise InvalidInput(
                f"timestamps go backwards at segment {n}: {hms(start)} comes after {hms(latest)}"
            )
        if end < start:
            if start - end > END_BEFORE_START_TOLERANCE_S:
                raise InvalidInput(f"segment {n} ends ({hms(end)}) before it starts ({hms(start)})")
            end = start
        latest = max(latest, start)
        rows.append((start, end, text, speaker))
    if not rows:
        raise InvalidInput(empty)
    rows.sort(key=lambda r: r[0])
    segments: list[Segment] = []
    for i, (start, end, text, speaker) in enumerate(rows):
        if i + 1 < len(rows):
            end = max(start, min(end, rows[i + 1][0]))
        segments.append(Segment(round(start, 3), round(end, 3), text, speaker))
    return ParsedTranscript(fmt, segments, meta)


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
