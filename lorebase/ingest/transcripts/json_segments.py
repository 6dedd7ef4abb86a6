"""JSON transcripts: Whisper's ``{"segments": [...]}``, caption-style lists and YouTube json3."""

from __future__ import annotations

import json
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.segments import WORDS_PER_SECOND, ParsedTranscript, finish_segments, parse_timestamp

_JSON_SHAPES = (
    'expected {"segments": [{"start", "end", "text"}]}, a list of {"start", "end" or "duration", "text"}, '
    'or YouTube json3 {"events": [...]}'
)


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
    return finish_segments("whisper_json", raw, meta, empty="JSON has an empty segment list")


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
    return finish_segments("caption_json", raw, {}, empty="JSON has no caption text")


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
    return finish_segments("youtube_json3", raw, {}, empty="json3 file has no caption text")


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
