"""A lecture's metadata: from a sidecar (``<stem>.yaml``, ``.yml`` or ``.json`` beside the transcript),
else from the file name (``2024-03-05_intro-to-rag.vtt``: date and title) and the folder (course)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.formats import decode_text
from lorebase.ingest.transcripts.json_segments import json_has_segments
from lorebase.ingest.transcripts.segments import Segment

SIDECAR_SUFFIXES = (".yaml", ".yml", ".json")
SIDECAR_MAX_BYTES = 1_000_000  # metadata (title, course, date, speakers): a larger file is not one
_DATED_STEM = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ _.-]+(.*))?$")


@dataclass
class LectureMeta:
    title: str
    course: str | None
    day: date | None
    moment: datetime | None
    url: str | None
    licence: str | None
    speakers: list[str] | dict[str, str] | None
    lecture_id: str | None


def lecture_meta(path: Path) -> LectureMeta:
    day, title = from_file_name(path.stem)
    course: str | None = path.resolve().parent.name or None
    data = _read_sidecar(path)
    sidecar = data.get("_file", "sidecar")

    def text_field(name: str, *aliases: str) -> str | None:
        for k in (name, *aliases):
            if k in data and data[k] is not None:
                v = data[k]
                if not isinstance(v, str | int | float) or isinstance(v, bool):
                    raise InvalidInput(f"{sidecar}: '{k}' must be text, got {type(v).__name__}")
                return str(v).strip() or None
        return None

    title = text_field("title") or title
    course = text_field("course") or course
    url = text_field("url")
    licence = text_field("licence", "license")
    lecture_id = text_field("id")
    if lecture_id is not None:
        lecture_id = lecture_id.strip("/")
        if not lecture_id:
            raise InvalidInput(f"{sidecar}: 'id' must not be empty")
    moment: datetime | None = None
    if data.get("date") is not None:
        moment = _parse_date(data["date"], sidecar)
        day = moment.date()
    elif day is not None:
        moment = datetime.combine(day, time(), tzinfo=UTC)
    speakers = data.get("speakers")
    if speakers is not None:
        if isinstance(speakers, str):
            speakers = [speakers]
        ok = (isinstance(speakers, list) and all(isinstance(s, str) for s in speakers)) or (
            isinstance(speakers, dict) and all(isinstance(v, str) for v in speakers.values())
        )
        if not ok:
            raise InvalidInput(f"{sidecar}: 'speakers' must be a list of names or a mapping of labels to names")
        if isinstance(speakers, dict):
            speakers = {str(k): v for k, v in speakers.items()}
    return LectureMeta(title, course, day, moment, url, licence, speakers, lecture_id)


def from_file_name(stem: str) -> tuple[date | None, str]:
    """`2024-03-05_intro-to-rag` -> (2024-03-05, "Intro to rag")."""
    day: date | None = None
    rest = stem
    m = _DATED_STEM.match(stem)
    if m:
        try:
            day = date.fromisoformat(m.group(1))
            rest = m.group(2) or ""
        except ValueError:
            pass
    words = " ".join(re.split(r"[\s_-]+", rest)).strip()
    if not words:
        return day, f"Lecture {day.isoformat()}" if day else stem
    return day, words[:1].upper() + words[1:]


def _read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar's mapping (with its file name under ``_file``), or {} when there is none."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate == path or not candidate.is_file():
            continue
        if candidate.stat().st_size > SIDECAR_MAX_BYTES:
            if suffix == ".json":
                continue  # a transcript in its own right (see _json_holds_segments)
            raise InvalidInput(f"sidecar {candidate.name} is larger than {SIDECAR_MAX_BYTES} bytes: not metadata")
        raw, _ = decode_text(candidate.read_bytes())
        try:
            data = json.loads(raw) if suffix == ".json" else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as e:
            kind = "JSON" if suffix == ".json" else "YAML"
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InvalidInput(f"sidecar {candidate.name} is not valid {kind}: {first}") from None
        if suffix == ".json" and json_has_segments(data):
            continue  # a transcript in its own right, not metadata
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidInput(f"sidecar {candidate.name} must hold a mapping (title, course, date, ...)")
        return {**data, "_file": candidate.name}
    return {}


def _parse_date(value: Any, sidecar: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{sidecar}: date {value!r} is not a date (YYYY-MM-DD)") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidInput(f"{sidecar}: date {value!r} is not a date (YYYY-MM-DD)")


def apply_speakers(segments: list[Segment], speakers: list[str] | dict[str, str] | None) -> list[Segment]:
    """A mapping renames labels (SPEAKER_00 -> a name); a single listed speaker names an unnamed monologue."""
    if isinstance(speakers, dict):
        return [Segment(s.start, s.end, s.text, speakers.get(s.speaker, s.speaker) if s.speaker else None) for s in segments]
    if speakers and len(speakers) == 1 and all(s.speaker is None for s in segments):
        return [Segment(s.start, s.end, s.text, speakers[0]) for s in segments]
    return segments
