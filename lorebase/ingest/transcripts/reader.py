"""The lecture-transcript reader: files and folders of transcripts into timed sources and chunks.

One lecture is one source, keyed ``transcript:{lecture_id}``. Its metadata comes from a sidecar
(``<stem>.yaml``, ``.yml`` or ``.json`` beside the transcript), else from the file name
(``2024-03-05_intro-to-rag.vtt``: date and title) and the folder (course). When one lecture exists
in several formats, the preferred one (vtt > srt > json > txt) is read and the others skipped, so
an edited VTT export replaces a machine transcript under the same key.

Recordings (audio and video, or an http(s) URL of one) are lectures too: they are transcribed
offline (lorebase.ingest.transcripts.recordings) and then take the same path as a text transcript. A text
transcript beside a recording of the same stem supersedes it and cites the recording's timeline.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorebase.citations import format_timestamp
from lorebase.errors import InvalidInput, LorebaseError, NotText
from lorebase.ingest.records import Event, Fail, ReadContext, ScopeComplete, Skip, SourceDraft, Upsert
from lorebase.ingest.transcripts.chunks import chunk_segments, joined_windows
from lorebase.ingest.transcripts.formats import FORMAT_PREFERENCE, decode_text, parse_transcript
from lorebase.ingest.transcripts.json_segments import json_has_segments
from lorebase.ingest.transcripts.lecture_meta import SIDECAR_MAX_BYTES, LectureMeta, apply_speakers, from_file_name, lecture_meta
from lorebase.ingest.transcripts.media import MEDIA_SUFFIXES, is_media_file
from lorebase.ingest.transcripts.segments import ParsedTranscript, speakers_of
from lorebase.settings import Settings
from lorebase.store.models import SourceKind

if TYPE_CHECKING:
    from lorebase.ingest.transcripts.recordings import Transcriber

log = logging.getLogger(__name__)

TRANSCRIPT_SUFFIXES = frozenset(FORMAT_PREFERENCE)
LECTURE_SUFFIXES = TRANSCRIPT_SUFFIXES | frozenset(MEDIA_SUFFIXES)


def is_transcript_file(path: Path) -> bool:
    """By extension; a JSON file is a sidecar instead when a transcript of the same stem sits
    beside it and the JSON holds no segments."""
    suffix = path.suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        return False
    if suffix != ".json":
        return True
    try:
        names = {p.name for p in path.parent.iterdir()}
    except OSError:
        names = set()
    return not _has_transcript_sibling(path, names) or _json_holds_segments(path)


def _json_holds_segments(path: Path) -> bool:
    try:
        if path.stat().st_size > SIDECAR_MAX_BYTES:
            return True  # no sidecar is this large: a transcript (which the size limit may skip)
        text, _ = decode_text(path.read_bytes())
        return json_has_segments(json.loads(text))
    except (OSError, ValueError, InvalidInput):
        return False  # unreadable: with a transcript beside it, reading that one reports the bad sidecar


class TranscriptReader:
    """Reads transcript and recording files and folders (recursively, sorted; hidden files and
    symlinks left out), and recordings named by http(s) URLs."""

    def __init__(
        self,
        paths: Sequence[Path],
        settings: Settings,
        *,
        urls: Sequence[str] = (),
        transcriber: Transcriber | None = None,
        progress: bool | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.urls = list(urls)
        self.settings = settings
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._transcriber = transcriber
        self.label = "transcripts " + ", ".join([str(p) for p in self.paths] + self.urls)

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:  # the model itself loads only when a recording needs it
            from lorebase.ingest.transcripts.recordings import Transcriber

            self._transcriber = Transcriber(self.settings, progress=self.progress)
        return self._transcriber

    def read(self, ctx: ReadContext) -> Iterator[Event]:
        for path in self.paths:
            if path.is_dir():
                yield from self._read_folder(path)
            elif path.is_file():
                yield from self._read_single(path)
            else:
                yield Fail(str(path), f"{path}: no such file or folder")
        for url in self.urls:
            yield self._read_url(url)

    # --- inputs -------------------------------------------------------------------------------

    def _read_single(self, path: Path) -> Iterator[Event]:
        if not is_transcript_file(path) and not is_media_file(path):
            if path.suffix.lower() == ".json":
                yield Skip(str(path), "metadata sidecar of a transcript beside it, not a transcript")
            else:
                yield Fail(str(path), f"{path.name}: not a transcript or recording ({_EXPECTED})")
            return
        event, _ = self._read_file(path, default_id=path.stem, rel=path.name)
        yield event

    def _read_folder(self, root: Path) -> Iterator[Event]:
        name = root.resolve().name
        groups: dict[tuple[str, str], list[Path]] = {}
        for path, skip_reason in _walk(root):
            rel = path.relative_to(root).as_posix()
            if skip_reason:
                yield Skip(rel, skip_reason)
                continue
            groups.setdefault((path.parent.relative_to(root).as_posix(), path.stem), []).append(path)

        keys: dict[str, str] = {}  # source key -> file that claimed it
        ordered = sorted(groups.values(), key=lambda files: _preferred(files)[0].relative_to(root).as_posix())
        for files in ordered:
            chosen, *others = _preferred(files)
            rel = chosen.relative_to(root).as_posix()
            default_id = f"{name}/{chosen.relative_to(root).with_suffix('').as_posix()}"
            recording = next((p for p in others if is_media_file(p)), None) if not is_media_file(chosen) else None
            event, key = self._read_file(chosen, default_id=default_id, rel=rel, recording=recording)
            if isinstance(event, Upsert) and key in keys:
                event = Fail(key, f"{rel}: lecture id {key.removeprefix('transcript:')!r} is already used by {keys[key]}")
            if not isinstance(event, Fail):
                keys[key] = rel
            yield event
            for other in others:
                superseded = is_media_file(other) and not is_media_file(chosen)
                reason = f"transcript {chosen.name} supersedes the recording" if superseded else f"duplicate of {chosen.name}"
                yield Skip(other.relative_to(root).as_posix(), reason)
        # Failed files are listed too (their Fail carries the key): the service keeps their last
        # good version, so the scope is complete either way.
        yield ScopeComplete(prefix=f"transcript:{name}/")

    # --- one lecture --------------------------------------------------------------------------

    def _read_file(self, path: Path, default_id: str, rel: str, recording: Path | None = None) -> tuple[Event, str]:
        key = f"transcript:{default_id}"
        try:
            meta = lecture_meta(path)
            if meta.lecture_id:
                key = f"transcript:{meta.lecture_id}"
            if is_media_file(path):
                return self._read_recording(path, key, meta, rel), key
            limit = self.settings.ingest.max_transcript_bytes
            size = path.stat().st_size
            if size > limit:
                return Skip(rel, f"transcript larger than ingest.max_transcript_bytes ({size} > {limit} bytes)"), key
            text, encoding = decode_text(path.read_bytes())
            parsed = parse_transcript(text, path.suffix)
            if encoding != "utf-8":
                parsed.meta["encoding"] = encoding
            if recording is not None:  # a corrected transcript still points into the recording
                meta.url = meta.url or recording.resolve().as_uri()
                parsed.meta["recording"] = str(recording.resolve())
            return Upsert(self._draft(key, parsed, meta, rel)), key
        except NotText as e:  # deliberately not ingested, like a binary file in a repository
            return Skip(rel, str(e)), key
        except InvalidInput as e:
            return Fail(key, f"{rel}: {e}"), key
        except OSError as e:
            return Fail(key, f"{rel}: cannot read: {e.strerror or e}"), key
        except Exception as e:  # a bug must not stop the batch; the run report names it
            log.exception("could not read %s", path)
            return Fail(key, f"{rel}: unexpected error: {type(e).__name__}: {e}"), key

    # --- recordings ---------------------------------------------------------------------------

    def _read_recording(self, path: Path, key: str, meta: LectureMeta, rel: str, url: str | None = None) -> Event:
        """Transcribe (or take from the cache), then the same draft as a text transcript. A file
        that cannot be decoded, or a missing speech model, is a Fail with a one-line reason."""
        from lorebase.ingest.transcripts.export import write_exports
        from lorebase.ingest.transcripts.recordings import to_parsed, transcripts_dir

        try:
            transcript = self.transcriber.transcribe(path)
        except LorebaseError as e:
            return Fail(key, f"{rel}: {e}")
        if not transcript.segments:
            return Skip(rel, f"no speech found in the recording ({format_timestamp(transcript.duration)} of audio)")
        recording = url or str(path.resolve())
        meta.url = meta.url or url or path.resolve().as_uri()
        parsed = to_parsed(transcript, recording)
        draft = self._draft(key, parsed, meta, rel)
        lecture_id = key.removeprefix("transcript:")
        sidecar = {"title": meta.title, "course": meta.course, "url": meta.url,
                   "date": meta.moment.isoformat() if meta.moment else None, "licence": meta.licence}
        try:
            write_exports(transcripts_dir(self.settings), lecture_id, parsed.segments, sidecar, overwrite=transcript.fresh)
        except (OSError, InvalidInput) as e:  # the source is good; only its editable copy is missing
            log.warning("could not export the transcript of %s: %s", rel, e)
        return Upsert(draft)

    def _read_url(self, url: str) -> Event:
        from lorebase.ingest.transcripts.media_download import fetch_recording, url_lecture_id

        lecture_id = url_lecture_id(url)
        key = f"transcript:{lecture_id}"
        try:
            path = fetch_recording(url, self.settings)
        except LorebaseError as e:
            return Fail(key, f"{url}: {e}")
        day, title = from_file_name(Path(lecture_id).name)
        course = Path(lecture_id).parent.name or None
        moment = datetime.combine(day, time(), tzinfo=UTC) if day else None
        meta = LectureMeta(title, course, day, moment, url, None, None, None)
        try:
            return self._read_recording(path, key, meta, url, url=url)
        except Exception as e:  # a bug must not stop the batch; the run report names it
            log.exception("could not read %s", url)
            return Fail(key, f"{url}: unexpected error: {type(e).__name__}: {e}")

    def _draft(self, key: str, parsed: ParsedTranscript, meta: LectureMeta, rel: str) -> SourceDraft:
        segments = apply_speakers(parsed.segments, meta.speakers)
        named = {s.speaker for s in segments if s.speaker}
        label = len(named) > 1 or (len(named) == 1 and any(s.speaker is None for s in segments))
        chunks = chunk_segments(
            segments,
            min_s=self.settings.ingest.transcript_window_min_s,
            max_s=self.settings.ingest.transcript_window_max_s,
            label_speakers=label,
        )
        # Chunk texts only carry names when several people speak; the readable text always does.
        only = next(iter(named)) if len(named) == 1 and not label else None
        text = "\n\n".join(
            f"[{format_timestamp(c.start_time or 0.0)}] {only + ': ' if only else ''}{c.text}" for c in chunks
        )
        # The base chunks come first (ordinals 0..n-1), so a joined window's "joins" are ordinals.
        chunks = chunks + joined_windows(chunks, self.settings.ingest.transcript_scales)
        detected = speakers_of(segments)
        if isinstance(meta.speakers, dict):  # labels renamed: the order they speak in
            speakers = list(dict.fromkeys(detected + list(meta.speakers.values())))
        else:  # a list is given in the order its author meant
            speakers = list(dict.fromkeys(list(meta.speakers or []) + detected))
        source_meta: dict[str, Any] = {
            "course": meta.course,
            "licence": meta.licence,
            "format": parsed.format,
            "speakers": speakers,
            "file": rel,
            "segments": len(segments),
            **parsed.meta,
        }
        return SourceDraft(
            key=key,
            kind=SourceKind.transcript,
            title=meta.title,
            text=text,
            chunks=chunks,
            url=meta.url,
            lecture=meta.title,
            start_time=segments[0].start,
            end_time=segments[-1].end,
            authored_at=meta.moment,
            meta=source_meta,
        )


# --- discovery ----------------------------------------------------------------------------------


def _walk(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Transcript and recording files under root in sorted order, with a skip reason for symlinks.
    Hidden files and folders are left out silently; so are sidecars and files of other kinds."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        kept = []
        for d in sorted(dirnames):
            if d.startswith("."):
                continue
            if (here / d).is_symlink():
                yield here / d, "symbolic link, not followed"
                continue
            kept.append(d)
        dirnames[:] = kept
        names = set(filenames)
        for f in sorted(filenames):
            p = here / f
            suffix = p.suffix.lower()
            if f.startswith(".") or suffix not in LECTURE_SUFFIXES:
                continue
            if p.is_symlink():
                yield p, "symbolic link, not followed"
                continue
            if suffix == ".json" and _has_transcript_sibling(p, names) and not _json_holds_segments(p):
                continue  # the sidecar of that transcript
            yield p, None


def _has_transcript_sibling(path: Path, names: set[str]) -> bool:
    return any(
        Path(n).stem == path.stem and Path(n).suffix.lower() in LECTURE_SUFFIXES - {".json"} for n in names
    )


_PREFERENCE = FORMAT_PREFERENCE + MEDIA_SUFFIXES  # any text transcript > any recording
_EXPECTED = "expected " + " ".join(_PREFERENCE)


def _preferred(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda p: (_PREFERENCE.index(p.suffix.lower()), p.name))
