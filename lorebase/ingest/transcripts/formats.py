"""Parsing lecture transcripts into timed segments.

Formats: WebVTT, SRT, plain text (with or without timestamps) and JSON segment lists (Whisper,
caption-style lists, YouTube json3). Every parser returns a :class:`ParsedTranscript` or raises
:class:`~lorebase.errors.InvalidInput` with a one-line reason; the reader turns that into a Fail.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lorebase.errors import InvalidInput, NotText
from lorebase.ingest.files.text_sniff import binary_reason

WORDS_PER_SECOND = 2.5  # ~150 words a minute: a usual lecture pace, used where a file has no times
BACKWARD_TOLERANCE_S = 10.0  # overlapping cues are normal; a jump back further than this is a broken file
END_BEFORE_START_TOLERANCE_S = 1.0  # rounding in exporters; beyond this a cue is malformed

# Preference when one lecture exists in several formats: an edited VTT beats a machine transcript.
FORMAT_PREFERENCE = (".vtt", ".srt", ".json", ".txt")

_JSON_SHAPES = (
    'expected {"segments": [{"start", "end", "text"}]}, a list of {"start", "end" or "duration", "text"}, '
    'or YouTube json3 {"events": [...]}'
)


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


# --- bytes and timestamps -----------------------------------------------------------------------


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a transcript file: UTF-8 (BOM or not), UTF-16 with a BOM, else cp1252, else latin-1.

    Returns (text, encoding). Old caption files are often cp1252; latin-1 accepts any byte, so a
    file is never refused for its encoding alone, but binary content is (NotText)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:8192]:
        raise NotText("binary file, not a transcript")
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "latin-1"
    reason = binary_reason(text)
    if reason is not None:
        raise NotText(f"{reason}, not a transcript")
    return text, encoding


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


def _lines(text: str) -> list[str]:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _clean(text: str) -> str:
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


def _speaker_labels(lines: list[str]) -> set[str]:
    """Labels taken as speakers: ALL-CAPS ones (LECTURER:, SPEAKER 1:) or any used on two lines or
    more. One "Remember: ..." is prose; a name that keeps coming back is a speaker."""
    counts: dict[str, int] = {}
    for line in lines:
        cand = _speaker_candidate(line.strip())
        if cand:
            counts[cand[0]] = counts.get(cand[0], 0) + 1
    return {label for label, n in counts.items() if n >= 2 or label.isupper()}


def _split_speaker(line: str, labels: set[str]) -> tuple[str | None, str]:
    cand = _speaker_candidate(line)
    if cand and cand[0] in labels:
        return cand
    return None, line


# --- WebVTT -------------------------------------------------------------------------------------

_VTT_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_VTT_TAG = re.compile(r"<(/?[A-Za-z][^<>\n]*|\d[\d:.]*)>")
_VTT_VOICE = re.compile(r"^v(?:\.[^\s>]*)?(?:\s+(.*))?$", re.DOTALL)


def parse_webvtt(text: str) -> ParsedTranscript:
    lines = _lines(text)
    if not lines or not re.match(r"WEBVTT(?:$|[ \t])", lines[0]):
        raise InvalidInput("not a WebVTT file: the first line must be 'WEBVTT'")
    meta: dict[str, Any] = {}
    i = 1
    while i < len(lines) and lines[i].strip():  # header block: "Kind: captions", "Language: en"
        key, sep, value = lines[i].partition(":")
        if sep and key.strip().lower() == "language" and value.strip():
            meta["language"] = value.strip()
        i += 1

    cues: list[tuple[float, float, list[str]]] = []
    for first, block in _blocks(lines, i):
        head = block[0].strip()
        if re.match(r"(NOTE|STYLE|REGION)(?:$|[ \t])", head):
            continue
        if "-->" in block[0]:
            t = 0
        elif len(block) > 1 and "-->" in block[1]:
            t = 1  # block[0] is the cue id
        else:
            if cues:  # a stray blank line inside a cue's text: keep the text with that cue
                cues[-1][2].extend(block)
            continue
        m = _VTT_TIMING.match(block[t])
        if not m:
            raise InvalidInput(f"line {first + t + 1}: bad cue timing {block[t].strip()!r}")
        try:
            start, end = parse_timestamp(m.group(1)), parse_timestamp(m.group(2))
        except InvalidInput as e:
            raise InvalidInput(f"line {first + t + 1}: {e}") from None
        cues.append((start, end, list(block[t + 1:])))

    raw: list[tuple[float, float, str, str | None]] = []
    previous_last = ""
    for start, end, cue_lines in cues:
        cue_lines = [ln for ln in cue_lines if ln.strip()]
        plain = [_clean(_VTT_TAG.sub("", ln)) for ln in cue_lines]
        # Roll-up captions (YouTube) repeat the previous cue's last line first: keep it once.
        if plain and len(previous_last.split()) >= 2 and plain[0] == previous_last:
            cue_lines, kept_last = cue_lines[1:], plain[-1]
        else:
            kept_last = plain[-1] if plain else ""
        previous_last = kept_last
        raw.extend(_split_by_voice(start, end, _voice_runs("\n".join(cue_lines))))
    return _finish("webvtt", raw, meta, empty="no cues found in the WebVTT file")


def _blocks(lines: list[str], start: int) -> list[tuple[int, list[str]]]:
    """Runs of non-blank lines, each with the index of its first line."""
    out: list[tuple[int, list[str]]] = []
    cur: list[str] = []
    first = start
    for n in range(start, len(lines)):
        if lines[n].strip():
            if not cur:
                first = n
            cur.append(lines[n])
        elif cur:
            out.append((first, cur))
            cur = []
    if cur:
        out.append((first, cur))
    return out


def _voice_runs(raw: str) -> list[tuple[str | None, str]]:
    """The cue's text split by `<v Speaker>` spans; every other tag (c, i, b, lang, timestamps) is dropped."""
    runs: list[tuple[str | None, str]] = []
    speaker: str | None = None
    pos = 0
    for m in _VTT_TAG.finditer(raw):
        runs.append((speaker, raw[pos:m.start()]))
        tag = m.group(1)
        voice = _VTT_VOICE.match(tag)
        if voice:
            speaker = _clean(voice.group(1) or "") or None
        elif tag == "/v" or tag.startswith("/v "):
            speaker = None
        pos = m.end()
    runs.append((speaker, raw[pos:]))
    merged: list[tuple[str | None, str]] = []
    for spk, txt in runs:  # join raw pieces first: "<i>three</i>." must stay "three."
        if merged and merged[-1][0] == spk:
            merged[-1] = (spk, merged[-1][1] + txt)
        else:
            merged.append((spk, txt))
    return [(spk, _clean(txt)) for spk, txt in merged if _clean(txt)]


def _split_by_voice(start: float, end: float, runs: list[tuple[str | None, str]]) -> list[tuple[float, float, str, str | None]]:
    """One segment per voice; a cue shared by two speakers splits its time by their share of the words."""
    if len(runs) <= 1:
        return [(start, end, runs[0][1], runs[0][0])] if runs else []
    words = [len(t.split()) for _, t in runs]
    total = sum(words)
    out: list[tuple[float, float, str, str | None]] = []
    t, acc = start, 0
    for (spk, txt), n in zip(runs, words, strict=True):
        acc += n
        t_end = start + (end - start) * acc / total
        out.append((t, t_end, txt, spk))
        t = t_end
    return out


# --- SRT ----------------------------------------------------------------------------------------

_SRT_TIMING = re.compile(r"^\s*(\d+:\d+(?::\d+)?(?:[.,]\d+)?)\s*-->\s*(\d+:\d+(?::\d+)?(?:[.,]\d+)?)")
_SRT_TAG = re.compile(r"</?(?:i|b|u|s|font|v)\b[^<>]*>|\{\\[^{}]*\}", re.IGNORECASE)


def parse_srt(text: str) -> ParsedTranscript:
    """Line by line rather than block by block, so missing blank lines (between cues or at the end)
    do not merge cues."""
    lines = _lines(text)
    cues: list[tuple[float, float, list[str]]] = []
    prev_blank = True
    appended_at = -1  # index of the line last added to a cue's text
    for n, line in enumerate(lines):
        m = _SRT_TIMING.match(line)
        if m:
            # The cue number sits just above its timing line; without a blank line before it, it
            # was taken as the previous cue's text.
            if cues and appended_at == n - 1 and lines[n - 1].strip().isdigit():
                cues[-1][2].pop()
            try:
                cues.append((parse_timestamp(m.group(1)), parse_timestamp(m.group(2)), []))
            except InvalidInput as e:
                raise InvalidInput(f"line {n + 1}: {e}") from None
        elif "-->" in line:
            raise InvalidInput(f"line {n + 1}: bad cue timing {line.strip()!r}")
        elif line.strip() and cues and not (prev_blank and line.strip().isdigit() and _next_is_timing(lines, n)):
            cues[-1][2].append(line)
            appended_at = n
        prev_blank = not line.strip()

    texts = [_clean(_SRT_TAG.sub("", ln)) for _, _, body in cues for ln in body]
    labels = _speaker_labels(texts)
    raw: list[tuple[float, float, str, str | None]] = []
    speaker: str | None = None
    for start, end, body in cues:
        cue_text = " ".join(_clean(_SRT_TAG.sub("", ln)) for ln in body)
        named, cue_text = _split_speaker(cue_text, labels)
        speaker = named or speaker  # captions name a speaker when the turn changes, not on every cue
        raw.append((start, end, cue_text, speaker))
    return _finish("srt", raw, {}, empty="no SRT cues found (expected lines like '00:00:01,000 --> 00:00:04,000')")


def _next_is_timing(lines: list[str], n: int) -> bool:
    return n + 1 < len(lines) and bool(_SRT_TIMING.match(lines[n + 1]))


# --- plain text ---------------------------------------------------------------------------------

_TS = r"\d{1,2}(?::\d{2}){1,2}(?:[.,]\d{1,3})?"
_PLAIN_TIMESTAMP = re.compile(rf"^\s*(?:\[({_TS})\]|\(({_TS})\)|({_TS})(?=\s|$))[ \t]*(?:[-–—|][ \t]*)?")


def parse_plain_text(text: str) -> ParsedTranscript:
    """Lines with optional leading timestamps (`[00:01:23]`, `00:01:23`, `(1:23)`) and optional
    `SPEAKER: text` prefixes. Without any timestamp, times are estimated from the word count."""
    lines = _lines(text)
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
    labels = _speaker_labels([t for _, t in stripped])

    # units: [time or None, speaker, lines of text]; lines are joined at the end, since adding each
    # wrapped line to a growing string made a long paragraph quadratic
    parts: list[list[Any]] = []
    blank_before = True
    speaker: str | None = None
    for ts, line in stripped:
        if not line.strip() and ts is None:
            blank_before = True
            continue
        spk, body = _split_speaker(line.strip(), labels)
        if ts is None and spk is None and parts and not blank_before:
            parts[-1][2].append(body)  # a wrapped line continues its paragraph
        else:
            speaker = spk or speaker  # a paragraph without a name continues the last speaker
            parts.append([ts, speaker, [body]])
        blank_before = False
    units = [[ts, spk, text] for ts, spk, lines in parts if _clean(text := " ".join(lines))]
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
    return _finish("text", raw, meta, empty="no transcript text found")


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


# --- JSON ---------------------------------------------------------------------------------------


def json_has_segments(data: Any) -> bool:
    """Whether decoded JSON has the shape of a transcript (rather than, say, a metadata sidecar)."""
    if isinstance(data, dict):
        return isinstance(data.get("segments"), list) or isinstance(data.get("events"), list)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return "start" in data[0] and "text" in data[0]
    return False


def parse_json_transcript(text: str) -> ParsedTranscript:
    if not text.strip():
        raise InvalidInput("empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if isinstance(data, dict) and isinstance(data.get("segments"), list):
        return _whisper(data)
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        return _json3(data["events"])
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        return _caption_list(data)
    raise InvalidInput(f"JSON has no transcript segments: {_JSON_SHAPES}")


def _whisper(data: dict[str, Any]) -> ParsedTranscript:
    raw: list[tuple[float, float, str, str | None]] = []
    for n, seg in enumerate(data["segments"], 1):
        if not isinstance(seg, dict):
            raise InvalidInput(f"segment {n} is not an object: {_JSON_SHAPES}")
        start = _number(seg, "start", n)
        end = _number(seg, "end", n)
        raw.append((start, end, _text(seg, "text", n), _speaker(seg, n)))
    meta = {"language": data["language"]} if isinstance(data.get("language"), str) else {}
    return _finish("whisper_json", raw, meta, empty="JSON has an empty segment list")


def _caption_list(items: list[dict[str, Any]]) -> ParsedTranscript:
    raw: list[tuple[float, float, str, str | None]] = []
    for n, seg in enumerate(items, 1):
        start = _number(seg, "start", n)
        if "end" in seg:
            end = _number(seg, "end", n)
        elif "duration" in seg or "dur" in seg:
            end = start + _number(seg, "duration" if "duration" in seg else "dur", n)
        else:
            raise InvalidInput(f"segment {n} has neither 'end' nor 'duration'")
        raw.append((start, end, _text(seg, "text", n), _speaker(seg, n)))
    return _finish("caption_json", raw, {}, empty="JSON has no caption text")


def _json3(events: list[Any]) -> ParsedTranscript:
    timed: list[tuple[float, float | None, str]] = []
    for n, ev in enumerate(events, 1):
        if not isinstance(ev, dict):
            raise InvalidInput(f"event {n} is not an object: {_JSON_SHAPES}")
        segs = ev.get("segs")
        if not segs:
            continue  # window/style events carry no text
        if not isinstance(segs, list):
            raise InvalidInput(f"event {n}: 'segs' must be a list")
        text = "".join(s.get("utf8", "") for s in segs if isinstance(s, dict) and isinstance(s.get("utf8"), str))
        if not text.strip():
            continue
        start = _number(ev, "tStartMs", n, label="event") / 1000
        dur = ev.get("dDurationMs")
        end = start + _number(ev, "dDurationMs", n, label="event") / 1000 if dur is not None else None
        timed.append((start, end, text))
    raw: list[tuple[float, float, str, str | None]] = []
    for i, (start, end, text) in enumerate(timed):
        if end is None:
            end = timed[i + 1][0] if i + 1 < len(timed) else start + len(text.split()) / WORDS_PER_SECOND
        raw.append((start, end, text, None))
    return _finish("youtube_json3", raw, {}, empty="json3 file has no caption text")


def _number(obj: dict[str, Any], key: str, n: int, label: str = "segment") -> float:
    if key not in obj:
        raise InvalidInput(f"{label} {n} has no '{key}'")
    value = obj[key]
    if isinstance(value, bool):
        raise InvalidInput(f"{label} {n}: '{key}' must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            try:
                return parse_timestamp(value)
            except InvalidInput:
                pass
    raise InvalidInput(f"{label} {n}: '{key}' must be a number, got {value!r}")


def _text(obj: dict[str, Any], key: str, n: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"segment {n} has no '{key}' string")
    return value


def _speaker(obj: dict[str, Any], n: int) -> str | None:
    value = obj.get("speaker")
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise InvalidInput(f"segment {n}: 'speaker' must be a string")
    return str(value).strip() or None


# --- common checks ------------------------------------------------------------------------------


def _finish(fmt: str, raw: list[tuple[float, float, str, str | None]], meta: dict[str, Any], empty: str) -> ParsedTranscript:
    """Validate and normalise: drop empty text, refuse wild jumps back in time, sort, and clip
    overlaps so that each segment ends no later than the next begins."""
    rows: list[tuple[float, float, str, str | None]] = []
    latest = -math.inf
    for n, (start, end, text, speaker) in enumerate(raw, 1):
        text = _clean(text)
        if not text:
            continue
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < 0:
            raise InvalidInput(f"segment {n}: times must be finite and not negative")
        if start < latest - BACKWARD_TOLERANCE_S:
            raise InvalidInput(
                f"timestamps go backwards at segment {n}: {_fmt(start)} comes after {_fmt(latest)}"
            )
        if end < start:
            if start - end > END_BEFORE_START_TOLERANCE_S:
                raise InvalidInput(f"segment {n} ends ({_fmt(end)}) before it starts ({_fmt(start)})")
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


def _fmt(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- dispatch -----------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[str], ParsedTranscript]] = {
    ".vtt": parse_webvtt,
    ".srt": parse_srt,
    ".txt": parse_plain_text,
    ".json": parse_json_transcript,
}


def parse_transcript(text: str, suffix: str) -> ParsedTranscript:
    """Parse decoded text by file extension (`.vtt`, `.srt`, `.txt`, `.json`)."""
    parser = PARSERS.get(suffix.lower())
    if parser is None:
        raise InvalidInput(f"not a transcript format: {suffix!r} (expected .vtt, .srt, .txt or .json)")
    if not text.strip():
        raise InvalidInput("empty file")
    return parser(text)
