"""What readers produce: source drafts and the events of one read.

A reader (transcripts, a git repository, GitHub issues) turns its input into a stream of events;
the ingest service alone writes them to the store. Readers never touch the database, so each can
be tested on its own, and the service alone decides what is new, changed, unchanged or gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lorebase.store.models import SourceKind


@dataclass
class ChunkDraft:
    text: str
    start_line: int | None = None
    end_line: int | None = None
    start_time: float | None = None
    end_time: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        return _sha256(json.dumps(asdict(self), sort_keys=True, default=str))


@dataclass
class SourceDraft:
    """One source as a reader sees it. ``key`` is its natural key, unique across the store:

    ``code:{repo}:{path}``, ``doc:{repo}:{path}``, ``commit:{repo}:{sha}``, ``issue:{repo}#{n}``,
    ``pull_request:{repo}#{n}``, ``transcript:{lecture_id}``.
    """

    key: str
    kind: SourceKind
    title: str
    text: str
    chunks: list[ChunkDraft]
    repo: str | None = None
    path: str | None = None
    commit: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    number: int | None = None
    url: str | None = None
    lecture: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    authored_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        """What decides "changed". For files, the commit and URL are left out: a file whose bytes did
        not change between two commits keeps its chunks (its old ``@sha`` still shows those bytes)."""
        data = asdict(self)
        data["kind"] = SourceKind(self.kind).value
        if data["kind"] in ("code", "doc"):
            for k in ("commit", "url", "authored_at"):
                data.pop(k)
        return _sha256(json.dumps(data, sort_keys=True, default=str))


def _sha256(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


# --- events -------------------------------------------------------------------------------------


@dataclass
class Upsert:
    """This source exists now with this content."""

    draft: SourceDraft


@dataclass
class Remove:
    """This source is gone (a deleted file, an issue that no longer exists)."""

    key: str


@dataclass
class Skip:
    """Deliberately not ingested (binary, vendored, too large, ignored). Not an error."""

    ref: str
    reason: str


@dataclass
class Fail:
    """Could not be read (malformed, unreadable). The batch goes on; the run reports it.

    ``ref`` is the source key when the reader knows it: that source then counts as listed for a
    ScopeComplete, so a file that turned malformed keeps its last good version in the store."""

    ref: str
    reason: str


@dataclass
class ScopeComplete:
    """Every source whose key starts with ``prefix`` was listed in this read (upserted or unchanged);
    the others under that prefix are gone. Sent by readers that scan a whole scope."""

    prefix: str


@dataclass
class Cursor:
    """Where to resume next time. Saved only when the read ends without an exception."""

    name: str
    value: str


Event = Upsert | Remove | Skip | Fail | ScopeComplete | Cursor


@dataclass
class ReadContext:
    """What a reader may ask of the store, without holding it."""

    cursor: Callable[[str], str | None]
    known_hash: Callable[[str], str | None]  # source key -> stored content hash, or None


class Reader(Protocol):
    """Anything that turns an input into events."""

    label: str  # e.g. "git repo ./src" for logs and the IngestRun

    def read(self, ctx: ReadContext) -> Iterator[Event]: ...
