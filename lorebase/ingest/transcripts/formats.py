"""Parsing lecture transcripts into timed segments.

Formats: WebVTT, SRT, plain text (with or without timestamps) and JSON segment lists (Whisper,
caption-style lists, YouTube json3). Every parser returns a :class:`ParsedTranscript` or raises
:class:`~lorebase.errors.InvalidInput` with a one-line reason; the reader turns that into a Fail.
"""

from __future__ import annotations

from collections.abc import Callable

from lorebase.errors import InvalidInput, NotText
from lorebase.ingest.files.text_sniff import binary_reason
from lorebase.ingest.transcripts.captions import parse_srt, parse_webvtt
from lorebase.ingest.transcripts.json_segments import parse_json_transcript
from lorebase.ingest.transcripts.plain_text import parse_plain_text
from lorebase.ingest.transcripts.segments import ParsedTranscript

# Preference when one lecture exists in several formats: an edited VTT beats a machine transcript.
FORMAT_PREFERENCE = (".vtt", ".srt", ".json", ".txt")


# --- bytes to text ------------------------------------------------------------------------------


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
