"""Writing a machine transcript out as WebVTT and SRT, for a person to correct and re-ingest.

Exports go to ``<data home>/transcripts/<lecture id>.vtt|.srt`` with a ``.yaml`` sidecar that
names the lecture id (and title, course, date, url), so ingesting the corrected file, alone or
with its folder, replaces the machine transcript under the same source key. The cues are the
same timed sentences the source was chunked from, so an untouched export reads back to the
same chunks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.segments import Segment


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_webvtt(segments: Sequence[Segment]) -> str:
    cues = [f"{i}\n{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text}\n" for i, s in enumerate(segments, 1)]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_srt(segments: Sequence[Segment]) -> str:
    cues = [f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text}\n" for i, s in enumerate(segments, 1)]
    return "\n".join(cues)


def export_base(transcripts_dir: Path, lecture_id: str) -> Path:
    """``transcripts_dir/<lecture id>`` without a suffix; an id cannot climb out of the folder."""
    parts = [p for p in lecture_id.split("/") if p]
    if not parts or any(p in (".", "..") or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        raise InvalidInput(f"lecture id {lecture_id!r} cannot name an export file")
    return transcripts_dir.joinpath(*parts)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_exports(
    transcripts_dir: Path, lecture_id: str, segments: Sequence[Segment], sidecar: dict[str, Any], overwrite: bool
) -> list[Path]:
    """Write ``.vtt``, ``.srt`` and the ``.yaml`` sidecar. Unless ``overwrite`` (a transcript just
    made), files already there are kept: they may hold a person's corrections."""
    base = export_base(transcripts_dir, lecture_id)
    base.parent.mkdir(parents=True, exist_ok=True)
    files = {
        base.with_name(base.name + ".vtt"): to_webvtt(segments),
        base.with_name(base.name + ".srt"): to_srt(segments),
        base.with_name(base.name + ".yaml"): yaml.safe_dump(
            {"id": lecture_id, **{k: v for k, v in sidecar.items() if v is not None}}, sort_keys=False, allow_unicode=True
        ),
    }
    written = []
    for path, text in files.items():
        if overwrite or not path.exists():
            _write_atomic(path, text)
            written.append(path)
    return written
