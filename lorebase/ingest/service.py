"""The ingest service: applies readers' events to the store, incrementally and crash-safely.

Each source is written in its own transaction (its row, its chunks, and tombstones for the chunk
ids it drops), so a crash leaves every source either wholly old or wholly new. Cursors are saved
only after a reader finishes, so an interrupted read is simply redone; unchanged sources compare
equal by content hash and are not touched, which makes the redo cheap and duplicate-free.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lorebase.errors import LorebaseError
from lorebase.ingest.records import (
    Cursor,
    Fail,
    ReadContext,
    Reader,
    Remove,
    ScopeComplete,
    Skip,
    SourceDraft,
    Upsert,
)
from lorebase.progress import Progress
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.locks import JobLock, held_elsewhere
from lorebase.store.models import (
    Chunk,
    IndexTombstone,
    IngestRun,
    Source,
    SourceKind,
    SyncCursor,
    source_id_for,
    utcnow,
)

log = logging.getLogger(__name__)

Outcome = Literal["added", "updated", "unchanged"]

HEARTBEAT_S = 5.0  # how often a running ingest records that it is alive (and its counts so far)


def run_lock_name(run_id: int) -> str:
    """The lock an ingest run's process holds while it runs; nobody holding it means the process ended."""
    return f"ingest-run-{run_id}"


class IndexSync(Protocol):
    """The dense index side: brings the index in line with the store (lorebase.index.sync.IndexSyncer)."""

    def sync(self) -> Any: ...  # a dataclass of counts


@dataclass
class IngestReport:
    run_id: int
    status: str
    inputs: list[str]
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    skips: list[dict[str, str]] = field(default_factory=list)
    index: dict[str, Any] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["seconds"] = round((self.finished_at - self.started_at).total_seconds(), 3) if self.started_at and self.finished_at else None
        return d


class IngestService:
    def __init__(self, settings: Settings, store: Store, index: IndexSync | None = None, progress: bool | None = None) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._run_locks: dict[int, JobLock] = {}  # the runs this process is running
        self._last_beat = 0.0

    # --- entry points -------------------------------------------------------------------------

    def ingest(self, specs: Sequence[str], run_id: int | None = None) -> IngestReport:
        """Ingest each SOURCE spec (path, clone URL, github:owner/repo, export file). One bad spec
        is reported and the others go on."""
        from lorebase.ingest.resolve import reader_for

        readers: list[Reader] = []
        failures: list[dict[str, str]] = []
        for spec in specs:
            try:
                readers.append(reader_for(spec, self.settings))
            except LorebaseError as e:
                failures.append({"source": spec, "reason": str(e)})
        return self.run(readers, inputs=list(specs), early_failures=failures, run_id=run_id)

    def open_run(self, inputs: list[str]) -> int:
        """Record a run as started (so callers can report its id before the work is done). Its lock
        is taken before the row is committed, so no other process can see the row without it."""
        self.mark_interrupted()
        with self.store.session() as s:
            now = utcnow()
            run = IngestRun(inputs=inputs, status="running", started_at=now, last_seen_at=now)
            s.add(run)
            s.flush()
            self._hold(run.id)
            return run.id

    def _hold(self, run_id: int) -> None:
        lock = JobLock(self.settings, run_lock_name(run_id))
        if not lock.acquire():  # ids are never reused: only a bug could get here
            raise RuntimeError(f"the lock of ingest run {run_id} is held by another process")
        self._run_locks[run_id] = lock

    def _let_go(self, run_id: int) -> None:
        lock = self._run_locks.pop(run_id, None)
        if lock is not None:
            lock.release(remove=True)

    def mark_interrupted(self) -> list[int]:
        """Mark runs left "running" by a process that has ended (killed, or a server stopped mid-run)
        as ``interrupted``, ending at the time they were last seen. Called on every start (the
        services are built, a run opens). Returns the ids marked."""
        with self.store.session() as s:
            running = list(s.scalars(select(IngestRun.id).where(IngestRun.status == "running")))
        marked: list[int] = []
        for run_id in running:
            if run_id in self._run_locks or held_elsewhere(self.settings, run_lock_name(run_id)):
                continue  # still running, here or in another process
            with self.store.session() as s:
                run = s.get(IngestRun, run_id)
                if run is None or run.status != "running":  # it finished meanwhile
                    continue
                seen = run.last_seen_at or run.started_at
                run.status = "interrupted"
                run.finished_at = seen
                reason = (f"the process running it ended before it finished; last seen {_iso(seen)}, "
                          f"found by process {os.getpid()} at {_iso(utcnow())}")
                run.errors = [*(run.errors or []), {"source": "run", "reason": reason}]
            log.warning("ingest run %d was interrupted (last seen %s)", run_id, _iso(seen))
            marked.append(run_id)
        return marked

    def run(
        self,
        readers: Iterable[Reader],
        inputs: list[str],
        early_failures: Sequence[dict[str, str]] = (),
        run_id: int | None = None,
    ) -> IngestReport:
        readers = list(readers)
        run_id = run_id if run_id is not None else self.open_run(inputs)
        if run_id not in self._run_locks:  # opened by the caller without open_run's lock
            self._hold(run_id)
        with self.store.session() as s:
            started = s.get(IngestRun, run_id).started_at  # type: ignore[union-attr]
        if started.tzinfo is None:  # SQLite hands datetimes back without their (UTC) offset
            started = started.replace(tzinfo=UTC)
        report = IngestReport(run_id=run_id, status="running", inputs=inputs, started_at=started)
        report.errors.extend(early_failures)
        report.failed += len(early_failures)
        try:
            for reader in readers:
                self._run_reader(reader, report)
            if self.index is not None:
                try:
                    result = self.index.sync()
                    report.index = asdict(result) if is_dataclass(result) and not isinstance(result, type) else dict(result)
                except LorebaseError as e:
                    report.errors.append({"source": "index", "reason": str(e)})
                    report.failed += 1
            report.status = "ok" if report.failed == 0 else "partial"
        except BaseException as e:  # recorded, not left "running"; Ctrl-C is an interruption
            report.status = "failed" if isinstance(e, Exception) else "interrupted"
            report.errors.append({"source": "run", "reason": f"{type(e).__name__}: {e}"})
            raise
        finally:
            report.finished_at = utcnow()
            try:
                self._save_run(report)
            finally:
                self._let_go(run_id)
        return report

    # --- one reader ---------------------------------------------------------------------------

    def _run_reader(self, reader: Reader, report: IngestReport) -> None:
        ctx = ReadContext(cursor=self._get_cursor, known_hash=self._known_hash)
        seen: set[str] = set()
        scopes: list[str] = []
        cursors: list[Cursor] = []
        bar = self._bar(reader.label)
        try:
            for event in reader.read(ctx):
                self._heartbeat(report)
                match event:
                    case Upsert(draft=draft):
                        seen.add(draft.key)
                        self._count_upsert(report, draft)
                        bar.update(1)
                    case Remove(key=key):
                        self._count_remove(report, key)
                    case Skip(ref=ref, reason=reason):
                        report.skipped += 1
                        report.skips.append({"source": ref, "reason": reason})
                        log.info("skipped %s: %s", ref, reason)
                    case Fail(ref=ref, reason=reason):
                        # A source that exists but cannot be read now keeps its last good version.
                        seen.add(ref)
                        report.failed += 1
                        report.errors.append({"source": ref, "reason": reason})
                        log.warning("failed %s: %s", ref, reason)
                    case ScopeComplete(prefix=prefix):
                        scopes.append(prefix)
                    case Cursor():
                        cursors.append(event)
        except Exception as e:  # a reader that dies leaves its cursor unsaved: the next run redoes it
            log.exception("reader %s failed", reader.label)
            report.failed += 1
            report.errors.append({"source": reader.label, "reason": f"{type(e).__name__}: {e}"})
            return
        finally:
            bar.close()
        for prefix in scopes:
            for key in self._keys_with_prefix(prefix) - seen:
                self._count_remove(report, key)
        with self.store.session() as s:
            for c in cursors:
                s.merge(SyncCursor(name=c.name, value=c.value, updated_at=utcnow()))

    def _count_upsert(self, report: IngestReport, draft: SourceDraft) -> None:
        try:
            outcome, added, removed = self.upsert(draft)
        except Exception as e:  # one bad source never stops the batch
            log.exception("could not store %s", draft.key)
            report.failed += 1
            report.errors.append({"source": draft.key, "reason": f"{type(e).__name__}: {e}"})
            return
        setattr(report, outcome, getattr(report, outcome) + 1)
        report.chunks_added += added
        report.chunks_removed += removed

    def _count_remove(self, report: IngestReport, key: str) -> None:
        removed = self.remove(key)
        if removed is not None:
            report.removed += 1
            report.chunks_removed += removed

    # --- store writes -------------------------------------------------------------------------

    def upsert(self, draft: SourceDraft) -> tuple[Outcome, int, int]:
        """Write one source and its chunks. Returns (outcome, chunks added, chunks removed)."""
        digest = draft.content_hash()
        sid = source_id_for(draft.key)
        with self.store.session() as s:
            src = s.get(Source, sid)
            if src is not None and src.content_hash == digest:
                return "unchanged", 0, 0
            removed = self._drop_chunks(s, sid) if src is not None else 0
            outcome: Outcome = "updated" if src is not None else "added"
            if src is None:
                src = Source(id=sid, key=draft.key, first_ingested_at=utcnow())
                s.add(src)
            for name in ("kind", "title", "text", "repo", "path", "commit", "start_line", "end_line", "number", "url",
                         "lecture", "start_time", "end_time", "authored_at", "meta"):
                value = getattr(draft, name)
                if name == "kind":
                    value = SourceKind(value).value
                elif name == "authored_at" and value is not None and value.tzinfo is not None:
                    value = value.astimezone(UTC)  # SQLite keeps no offset: store UTC
                setattr(src, name, value)
            src.content_hash = digest
            src.last_ingested_at = utcnow()
            s.flush()
            for i, c in enumerate(draft.chunks):
                s.add(Chunk(
                    source_id=sid, ordinal=i, text=c.text, start_line=c.start_line, end_line=c.end_line,
                    start_time=c.start_time, end_time=c.end_time, content_hash=c.content_hash(), meta=c.meta,
                    indexed=False,
                ))
            return outcome, len(draft.chunks), removed

    def remove(self, key: str) -> int | None:
        """Delete a source and its chunks; None when there was no such source."""
        sid = source_id_for(key)
        with self.store.session() as s:
            if s.get(Source, sid) is None:
                return None
            n = self._drop_chunks(s, sid)
            s.execute(delete(Source).where(Source.id == sid))
            return n

    @staticmethod
    def _drop_chunks(s: Session, source_id: str) -> int:
        ids = list(s.scalars(select(Chunk.id).where(Chunk.source_id == source_id)))
        if ids:
            # Same transaction as the delete: the index syncer removes these vectors later.
            s.add_all(IndexTombstone(chunk_id=i) for i in ids)
            s.execute(delete(Chunk).where(Chunk.source_id == source_id))
        return len(ids)

    # --- reads for readers --------------------------------------------------------------------

    def _get_cursor(self, name: str) -> str | None:
        with self.store.session() as s:
            c = s.get(SyncCursor, name)
            return c.value if c else None

    def _known_hash(self, key: str) -> str | None:
        with self.store.session() as s:
            return s.scalar(select(Source.content_hash).where(Source.id == source_id_for(key)))

    def _keys_with_prefix(self, prefix: str) -> set[str]:
        with self.store.session() as s:
            return set(s.scalars(select(Source.key).where(Source.key.startswith(prefix, autoescape=True))))

    def _save_run(self, report: IngestReport) -> None:
        with self.store.session() as s:
            run = s.get(IngestRun, report.run_id)
            assert run is not None
            for name in ("status", "added", "updated", "unchanged", "removed", "skipped", "failed", "chunks_added",
                         "chunks_removed", "errors", "skips"):
                setattr(run, name, getattr(report, name))
            run.finished_at = report.finished_at
            run.last_seen_at = report.finished_at or utcnow()

    def _heartbeat(self, report: IngestReport) -> None:
        """Every HEARTBEAT_S at most: the run is alive, with its counts so far (progress for the API)."""
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = now
        with self.store.session() as s:
            run = s.get(IngestRun, report.run_id)
            if run is None:
                return
            for name in ("added", "updated", "unchanged", "removed", "skipped", "failed", "chunks_added", "chunks_removed"):
                setattr(run, name, getattr(report, name))
            run.last_seen_at = utcnow()

    def _bar(self, label: str) -> Progress:
        return Progress(label, "sources", bar=self.progress, log=log)


def _iso(t: datetime) -> str:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat(timespec="seconds")
