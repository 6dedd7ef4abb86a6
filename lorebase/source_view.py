"""What a citation points at, read back from the store for a person to check: a file at its commit
with the cited lines, a commit with its diff, an issue or PR thread, or a transcript around the
cited time. Read-only; a source is found by its id, never by a path from the request, so nothing
outside the store (and the recordings the store names) can be reached through it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from sqlalchemy import select

from lorebase.citations import Citation, format_timestamp
from lorebase.errors import InvalidInput, NotFound
from lorebase.ingest.transcripts.media import AUDIO_SUFFIXES, MEDIA_SUFFIXES
from lorebase.store import Store
from lorebase.store.models import Chunk, Source

SOURCE_ID = re.compile(r"^src_[0-9a-f]{1,64}$")
_LINES = re.compile(r"^(\d{1,9})(?:-(\d{1,9}))?$")
_TIMES = re.compile(r"^(\d{1,7}(?:\.\d+)?)(?:-(\d{1,7}(?:\.\d+)?))?$")
_DIFF_START = re.compile(r"^--- (?:a/|/dev/null)", re.MULTILINE)
_THREAD_ENTRY = re.compile(r"\n\n(?=\S+ on (?:\d{4}-\d{2}-\d{2}|an unknown date)\b)")
DEFAULT_CONTEXT_LINES = 30
TRANSCRIPT_CONTEXT_S = 120.0  # shown before and after the cited span
MAX_EXCERPT_CHARS = 4000


@dataclass
class Line:
    number: int
    text: str
    cited: bool = False


@dataclass
class DiffLine:
    text: str
    kind: Literal["meta", "hunk", "add", "del", "context"]


@dataclass
class Segment:
    start: float
    end: float | None
    text: str
    cited: bool = False


@dataclass
class Post:
    text: str
    cited: bool = False


@dataclass
class SourceView:
    """One source as the viewer shows it; only the fields of its kind are filled."""

    id: str
    kind: str
    title: str
    label: str  # the span as a citation names it: `path:10-42@abc1234`, `Meeting @ 01:10`, `#12`
    repo: str | None = None
    path: str | None = None
    commit: str | None = None
    number: int | None = None
    web_url: str | None = None  # GitHub (file at the span, commit, thread) or the recording, when known
    media_url: str | None = None  # a web recording at the cited time (`#t=`)
    local_media: Literal["audio", "video"] | None = None  # a recording on this machine, served by lorebase
    span: dict[str, float] = field(default_factory=dict)  # {"start_line", "end_line"} or {"start", "end"}
    total_lines: int | None = None
    lines: list[Line] = field(default_factory=list)  # code and docs: the cited lines with context
    header: str = ""  # commits: message, author, files
    diff: list[DiffLine] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)  # issues and pull requests
    segments: list[Segment] = field(default_factory=list)  # transcripts: the cited span with context
    notes: list[str] = field(default_factory=list)


def parse_lines(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    m = _LINES.match(value.strip())
    if not m:
        raise InvalidInput(f"lines={value!r}: expected a line or a range such as 10-42")
    start = int(m[1])
    end = int(m[2]) if m[2] else start
    if start < 1 or end < start:
        raise InvalidInput(f"lines={value!r}: lines count from 1 and the range must not run backwards")
    return start, end


def parse_times(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    m = _TIMES.match(value.strip())
    if not m:
        raise InvalidInput(f"t={value!r}: expected seconds or a range such as 70-85.5")
    start = float(m[1])
    end = float(m[2]) if m[2] else start
    if end < start:
        raise InvalidInput(f"t={value!r}: the range must not run backwards")
    return start, end


def viewer_path(c: Citation) -> str:
    """The source viewer's address for a citation, scrolled to the cited place (and naming the
    citation, so the page can say which one brought the reader)."""
    query = []
    anchor = ""
    if c.start_line is not None and c.kind in ("code", "doc"):
        query.append(f"lines={c.start_line}-{c.end_line if c.end_line is not None else c.start_line}")
        anchor = f"#L{c.start_line}"
    elif c.start_time is not None and c.kind == "transcript":
        end = c.end_time if c.end_time is not None else c.start_time
        query.append(f"t={_seconds(c.start_time)}-{_seconds(end)}")
        anchor = "#cited"
    if c.commit and c.kind in ("code", "doc"):
        query.append(f"commit={c.commit}")
    query.append(f"cite={c.id}")
    return f"/sources/{c.source_id}?{'&'.join(query)}{anchor}"


def _seconds(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def local_recording(source: Source) -> Path | None:
    """The recording of a transcript when it is a media file on this machine (a file:// URL, or the
    path a transcription recorded); None for web recordings or files that are gone."""
    candidates: list[str] = []
    if source.url and source.url.startswith("file://"):
        candidates.append(unquote(urlparse(source.url).path))
    rec = (source.meta or {}).get("recording")
    if isinstance(rec, str) and not rec.startswith(("http://", "https://")):
        candidates.append(rec)
    for c in candidates:
        p = Path(c)
        if p.is_absolute() and p.suffix.lower() in MEDIA_SUFFIXES and p.is_file():
            return p
    return None


class SourceViewer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def view(
        self,
        source_id: str,
        *,
        lines: tuple[int, int] | None = None,
        times: tuple[float, float] | None = None,
        commit: str | None = None,
        context: int | None = DEFAULT_CONTEXT_LINES,
    ) -> SourceView:
        """`context`: lines shown around cited lines (None: the whole file)."""
        with self.store.session() as s:
            src = self._get(s, source_id)
            view = SourceView(id=src.id, kind=src.kind, title=src.title, label=src.title, repo=src.repo, path=src.path,
                              commit=src.commit, number=src.number)
            if src.kind in ("code", "doc"):
                self._file(view, src, lines, commit, context)
            elif src.kind == "commit":
                self._commit(view, src)
            elif src.kind in ("issue", "pull_request"):
                self._thread(view, src)
            elif src.kind == "transcript":
                self._transcript(view, src, times, s)
            else:
                view.header = src.text
            return view

    def passage(self, c: Citation) -> str:
        """The whole text of the chunk a citation names (its snippet is cut short), else the snippet."""
        if not SOURCE_ID.match(c.source_id):
            return c.snippet
        with self.store.session() as s:
            q = select(Chunk.text).where(Chunk.source_id == c.source_id)
            if c.start_line is not None:
                q = q.where(Chunk.start_line == c.start_line, Chunk.end_line == c.end_line)
            elif c.start_time is not None:
                q = q.where(Chunk.start_time == c.start_time)
                if c.end_time is not None:  # a joined window starts where its first chunk does: the end tells them apart
                    exact = s.scalar(q.where(Chunk.end_time == c.end_time).order_by(Chunk.ordinal).limit(1))
                    if exact is not None:
                        return exact[:MAX_EXCERPT_CHARS]
            else:
                text = s.scalar(select(Source.text).where(Source.id == c.source_id))
                return (text or c.snippet)[:MAX_EXCERPT_CHARS]
            text = s.scalar(q.order_by(Chunk.ordinal).limit(1))
        return (text or c.snippet)[:MAX_EXCERPT_CHARS]

    def recording(self, source_id: str) -> Path:
        with self.store.session() as s:
            src = self._get(s, source_id)
            path = local_recording(src) if src.kind == "transcript" else None
        if path is None:
            raise NotFound(f"source {source_id} has no recording on this machine")
        return path

    # --- per kind -----------------------------------------------------------------------------

    @staticmethod
    def _get(s: object, source_id: str) -> Source:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        src = s.get(Source, source_id) if SOURCE_ID.match(source_id) else None
        if src is None:
            raise NotFound(f"no source {source_id!r}")
        return src

    def _file(self, view: SourceView, src: Source, lines: tuple[int, int] | None, commit: str | None,
              context: int | None) -> None:
        all_lines = src.text.split("\n")
        if all_lines and all_lines[-1] == "":
            all_lines.pop()
        view.total_lines = len(all_lines)
        if lines is not None:
            start, end = lines[0], min(lines[1], max(len(all_lines), 1))
            if start > len(all_lines):
                raise InvalidInput(f"lines {lines[0]}-{lines[1]}: {src.path} has {len(all_lines)} lines")
            view.span = {"start_line": start, "end_line": end}
            view.label = f"{src.path}:{start}-{end}" + (f"@{src.commit[:7]}" if src.commit else "")
        else:
            start = end = 0
            view.label = f"{src.path}" + (f"@{src.commit[:7]}" if src.commit else "")
        if context is None or lines is None:
            lo, hi = 1, len(all_lines)
        else:
            lo, hi = max(1, start - context), min(len(all_lines), end + context)
        view.lines = [Line(n, all_lines[n - 1], lines is not None and start <= n <= end) for n in range(lo, hi + 1)]
        if src.url:
            view.web_url = f"{src.url}#L{start}-L{end}" if lines is not None else src.url
        if commit and src.commit and not src.commit.startswith(commit.lower()):
            view.notes.append(
                f"The citation was made at commit {commit[:7]}; the store now holds this file at commit "
                f"{src.commit[:7]} (ingested since), so the cited lines may have moved."
            )

    @staticmethod
    def _commit(view: SourceView, src: Source) -> None:
        view.label = f"commit {src.commit[:7]}" if src.commit else src.title
        view.web_url = src.url
        m = _DIFF_START.search(src.text)
        view.header = (src.text[: m.start()] if m else src.text).rstrip()
        if m is None:
            return
        for line in src.text[m.start():].split("\n"):
            if line.startswith(("--- ", "+++ ")) or (line.startswith("[") and line.endswith("trimmed]")):
                kind: Literal["meta", "hunk", "add", "del", "context"] = "meta"
            elif line.startswith("@@"):
                kind = "hunk"
            elif line.startswith("+"):
                kind = "add"
            elif line.startswith("-"):
                kind = "del"
            else:
                kind = "context"
            view.diff.append(DiffLine(line, kind))

    @staticmethod
    def _thread(view: SourceView, src: Source) -> None:
        view.label = f"#{src.number}" if src.number is not None else src.title
        view.web_url = src.url
        head, sep, discussion = src.text.partition("\n\nDiscussion:\n\n")
        view.posts = [Post(head.strip())]
        if sep:
            view.posts += [Post(p.strip()) for p in _THREAD_ENTRY.split(discussion) if p.strip()]

    def _transcript(self, view: SourceView, src: Source, times: tuple[float, float] | None, s: object) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        # Each passage once: joined windows (wider scales over the same words) are left out.
        chunks = [c for c in s.scalars(select(Chunk).where(Chunk.source_id == src.id).order_by(Chunk.ordinal))
                  if c.joins is None]
        if times is not None:
            t0, t1 = times
            # a chunk is cited when it overlaps the span; a point in time cites the chunk around it
            def cited(c: Chunk) -> bool:
                cs = c.start_time or 0.0
                ce = c.end_time if c.end_time is not None else cs
                return cs < t1 and ce > t0 if t1 > t0 else cs <= t0 <= ce

            marked = [c for c in chunks if cited(c)]
            if not marked:
                raise InvalidInput(f"t={_seconds(t0)}-{_seconds(t1)}: {src.title} has no speech at that time")
            lo = (marked[0].start_time or 0.0) - TRANSCRIPT_CONTEXT_S
            hi = (marked[-1].end_time or marked[-1].start_time or 0.0) + TRANSCRIPT_CONTEXT_S
            shown = [c for c in chunks if (c.end_time or c.start_time or 0.0) >= lo and (c.start_time or 0.0) <= hi]
            view.span = {"start": t0, "end": t1}
            view.label = f"{src.title} @ {format_timestamp(t0)}"
        else:
            marked, shown = [], chunks
        view.segments = [Segment(c.start_time or 0.0, c.end_time, c.text, c in marked) for c in shown]
        at = int(times[0]) if times is not None else None
        if src.url and src.url.startswith(("https://", "http://")):
            view.web_url = src.url
            if at is not None:
                view.media_url = f"{src.url}{'&' if '#' in src.url else '#'}t={at}"
        recording = local_recording(src)
        if recording is not None:
            view.local_media = "audio" if recording.suffix.lower() in AUDIO_SUFFIXES else "video"
