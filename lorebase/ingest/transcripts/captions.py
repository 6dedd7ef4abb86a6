"""Caption files: WebVTT (cue settings, voice tags, styling) and SRT."""

from __future__ import annotations

import re
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.ingest.transcripts.segments import (
    ParsedTranscript,
    clean_text,
    finish_segments,
    parse_timestamp,
    speaker_labels,
    split_lines,
    split_speaker,
)

# --- WebVTT -------------------------------------------------------------------------------------

_VTT_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_VTT_TAG = re.compile(r"<(/?[A-Za-z][^<>\n]*|\d[\d:.]*)>")
_VTT_VOICE = re.compile(r"^v(?:\.[^\s>]*)?(?:\s+(.*))?$", re.DOTALL)


def parse_webvtt(text: str) -> ParsedTranscript:
    lines = split_lines(text)
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
        plain = [clean_text(_VTT_TAG.sub("", ln)) for ln in cue_lines]
        # Roll-up captions (YouTube) repeat the previous cue's last line first: keep it once.
        if plain and len(previous_last.split()) >= 2 and plain[0] == previous_last:
            cue_lines, kept_last = cue_lines[1:], plain[-1]
        else:
            kept_last = plain[-1] if plain else ""
        previous_last = kept_last
        raw.extend(_split_by_voice(start, end, _voice_runs("\n".join(cue_lines))))
    return finish_segments("webvtt", raw, meta, empty="no cues found in the WebVTT file")


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
            speaker = clean_text(voice.group(1) or "") or None
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
    return [(spk, clean_text(txt)) for spk, txt in merged if clean_text(txt)]


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
    lines = split_lines(text)
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

    texts = [clean_text(_SRT_TAG.sub("", ln)) for _, _, body in cues for ln in body]
    labels = speaker_labels(texts)
    raw: list[tuple[float, float, str, str | None]] = []
    speaker: str | None = None
    for start, end, body in cues:
        cue_text = " ".join(clean_text(_SRT_TAG.sub("", ln)) for ln in body)
        named, cue_text = split_speaker(cue_text, labels)
        speaker = named or speaker  # captions name a speaker when the turn changes, not on every cue
        raw.append((start, end, cue_text, speaker))
    return finish_segments("srt", raw, {}, empty="no SRT cues found (expected lines like '00:00:01,000 --> 00:00:04,000')")


def _next_is_timing(lines: list[str], n: int) -> bool:
    return n + 1 < len(lines) and bool(_SRT_TIMING.match(lines[n + 1]))
