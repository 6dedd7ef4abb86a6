"""The one citation shape shared by the CLI, the API and the UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from lorebase.store.models import Chunk, Source


class Citation(BaseModel):
    id: str = Field(description="Label used in answers, e.g. S1.")
    source_id: str
    kind: str
    title: str
    uri: str | None = Field(None, description="Web URL of the exact place when known, else a lorebase:// reference.")
    repo: str | None = None
    path: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    commit: str | None = None
    number: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    snippet: str = ""
    score: float | None = None

    @property
    def label(self) -> str:
        """A short human reference: `path:10-42@abc1234`, `#12`, `Lecture @ 03:05`, `commit abc1234`."""
        if self.kind in ("code", "doc") and self.path:
            lines = f":{self.start_line}-{self.end_line}" if self.start_line is not None else ""
            at = f"@{self.commit[:7]}" if self.commit else ""
            return f"{self.path}{lines}{at}"
        if self.kind == "commit" and self.commit:
            return f"commit {self.commit[:7]}"
        if self.kind in ("issue", "pull_request") and self.number is not None:
            return f"#{self.number}"
        if self.kind == "transcript" and self.start_time is not None:
            return f"{self.title} @ {format_timestamp(self.start_time)}"
        return self.title


def format_timestamp(seconds: float) -> str:
    """mm:ss below an hour, h:mm:ss above."""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def _uri(source: Source, chunk: Chunk | None) -> str | None:
    start_line = chunk.start_line if chunk is not None else source.start_line
    end_line = chunk.end_line if chunk is not None else source.end_line
    start_time = chunk.start_time if chunk is not None else source.start_time
    url = source.url
    if source.kind in ("code", "doc") and url and start_line is not None:
        return f"{url}#L{start_line}-L{end_line}"
    if source.kind == "transcript" and url and start_time is not None:
        sep = "&" if "#" in url else "#"
        return f"{url}{sep}t={int(start_time)}"
    if url:
        return url
    ref = f"lorebase://source/{source.id}"
    if start_line is not None:
        return f"{ref}#L{start_line}-L{end_line}"
    if start_time is not None:
        return f"{ref}#t={int(start_time)}"
    return ref


def cite(source: Source, chunk: Chunk | None, label: str, score: float | None = None, snippet_chars: int = 400) -> Citation:
    """Build the citation for a chunk (or a whole source) of the store."""
    text = chunk.text if chunk is not None else source.text
    snippet = text if len(text) <= snippet_chars else text[: snippet_chars - 1].rstrip() + "…"
    return Citation(
        id=label,
        source_id=source.id,
        kind=source.kind,
        title=source.title,
        uri=_uri(source, chunk),
        repo=source.repo,
        path=source.path,
        start_line=chunk.start_line if chunk is not None else source.start_line,
        end_line=chunk.end_line if chunk is not None else source.end_line,
        commit=source.commit,
        number=source.number,
        start_time=chunk.start_time if chunk is not None else source.start_time,
        end_time=chunk.end_time if chunk is not None else source.end_time,
        snippet=snippet,
        score=score,
    )
