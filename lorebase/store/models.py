"""The persisted data model. Every row that answers a question traces back to a Source.

Schema changes go through Alembic migrations in ``lorebase/store/migrations``; a test checks that
these classes and the migrations agree.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lorebase.store.base import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class SourceKind(str, enum.Enum):
    transcript = "transcript"
    code = "code"
    doc = "doc"
    commit = "commit"
    issue = "issue"
    pull_request = "pull_request"


SOURCE_KINDS = tuple(k.value for k in SourceKind)


def source_id_for(key: str) -> str:
    """The stable id of a source, derived from its natural key so re-ingesting keeps identity."""
    return "src_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


class Source(Base):
    """One traceable origin: a file at a commit, a commit, an issue or PR thread, a lecture."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Natural key, e.g. "code:owner/repo:src/m.py", "transcript:course/lecture-01". Unique.
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(1024), default="")
    text: Mapped[str] = mapped_column(Text, default="")  # the whole source, for summaries
    repo: Mapped[str | None] = mapped_column(String(512), index=True)
    path: Mapped[str | None] = mapped_column(String(2048))
    commit: Mapped[str | None] = mapped_column(String(64))
    start_line: Mapped[int | None] = mapped_column(Integer)
    end_line: Mapped[int | None] = mapped_column(Integer)
    number: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(2048))
    lecture: Mapped[str | None] = mapped_column(String(1024), index=True)
    start_time: Mapped[float | None] = mapped_column(Float)
    end_time: Mapped[float | None] = mapped_column(Float)
    authored_at: Mapped[datetime | None] = mapped_column(index=True)  # commit/issue/lecture date
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    first_ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_ingested_at: Mapped[datetime] = mapped_column(default=utcnow)

    chunks: Mapped[list[Chunk]] = relationship(
        back_populates="source", cascade="all, delete-orphan", passive_deletes=True, order_by="Chunk.ordinal"
    )


class Chunk(Base):
    """A retrievable piece of a source, with its exact position (lines or seconds)."""

    __tablename__ = "chunks"
    # AUTOINCREMENT so SQLite never reuses the id of a deleted chunk: ids are also FAISS ids.
    __table_args__ = (
        UniqueConstraint("source_id", "ordinal", name="uq_chunk_position"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start_line: Mapped[int | None] = mapped_column(Integer)
    end_line: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[float | None] = mapped_column(Float)
    end_time: Mapped[float | None] = mapped_column(Float)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # False until the dense index holds this chunk; the index syncer flips it after persisting.
    indexed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    source: Mapped[Source] = relationship(back_populates="chunks")

    @property
    def joins(self) -> tuple[int, int] | None:
        """For a window of a transcript's second scale: the ordinals (first, last) of the chunks it
        joins; None for every other chunk. Readers that want each passage once skip these."""
        j = (self.meta or {}).get("joins")
        return (int(j[0]), int(j[1])) if isinstance(j, list) and len(j) == 2 else None


class IndexTombstone(Base):
    """A chunk id removed from the store whose vector may still be in the index.

    Written in the same transaction that deletes the chunk, cleared once the index is saved
    without it, so a crash between the two never leaves a vector pointing at nothing.
    """

    __tablename__ = "index_tombstones"

    chunk_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IndexChange(Base):
    """One chunk added to or removed from the store: the ordered change log every replica's index
    follows (lorebase.index.sync), remembering the last ``seq`` it applied.

    Rows are written by database triggers on ``chunks`` (migration 0006), so every writer, raw SQL
    and foreign-key cascades included, logs its changes in the same transaction. On PostgreSQL
    the trigger also takes a transaction-level advisory lock (``CHANGE_LOG_KEY``) until commit:
    sequence numbers then become visible in the order they were given, so a reader that has seen
    ``seq`` N has seen every change numbered below it. A later migration that rebuilds ``chunks``
    on SQLite (batch mode copies the table) must create the triggers again; a test checks them.
    Old rows are pruned (index.change_log_max_entries, index.change_log_max_age_days); the
    ``index_changes:pruned_through`` cursor says how far, and a replica behind it rebuilds.
    """

    __tablename__ = "index_changes"
    __table_args__ = {"sqlite_autoincrement": True}

    # BIGINT on PostgreSQL; SQLite's AUTOINCREMENT needs the column declared INTEGER (64-bit there anyway).
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    chunk_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))  # add | remove
    created_at: Mapped[datetime] = mapped_column(server_default=func.current_timestamp(), index=True)


class QAPair(Base):
    __tablename__ = "qa_pairs"
    __table_args__ = (Index("ix_qa_split_valid", "split", "validated"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    chunk_ids: Mapped[list[Any]] = mapped_column(default=list)
    source_ids: Mapped[list[Any]] = mapped_column(default=list)
    kind: Mapped[str | None] = mapped_column(String(32))  # source kind it was made from
    category: Mapped[str] = mapped_column(String(64), default="")  # e.g. "code.purpose", "abstention"
    method: Mapped[str] = mapped_column(String(32))  # template | self_instruct | feedback | manual
    validated: Mapped[bool] = mapped_column(Boolean, default=False)
    validation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    split: Mapped[str | None] = mapped_column(String(16))  # train | validation | test
    provenance: Mapped[dict[str, Any]] = mapped_column(default=dict)  # path/lines/sha/number/time per source
    question_hash: Mapped[str] = mapped_column(String(64), index=True)
    source_hash: Mapped[str | None] = mapped_column(String(64))  # content hash of the source when made
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column()


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rating: Mapped[int] = mapped_column(Integer)  # +1 or -1
    comment: Mapped[str | None] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[Any]] = mapped_column(default=list)  # citations as shown
    model: Mapped[str] = mapped_column(String(256))
    adapter: Mapped[str | None] = mapped_column(String(256))
    channel: Mapped[str] = mapped_column(String(32), default="api")  # api | ui
    external_id: Mapped[str | None] = mapped_column(String(256), index=True)  # e.g. the UI message id
    review_status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | rejected
    correction: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    # Who reviewed it and what came of it: the QA pair made, or why none was (lorebase.feedback.review).
    review: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    # The answer's Verdict as it was shown (lorebase.verdict), and whether it was verified; None when the
    # client did not send it (feedback from before 0007, or an API client that kept only the text).
    verdict: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    verified: Mapped[bool | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AdapterVersion(Base):
    __tablename__ = "adapter_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    path: Mapped[str] = mapped_column(String(2048))
    base_model: Mapped[str] = mapped_column(String(1024))
    data_hash: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="candidate")  # candidate | promoted | retired | rejected
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column()


class EvalRun(Base):
    __tablename__ = "eval_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    eval_set: Mapped[str] = mapped_column(String(2048))
    eval_set_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(1024))
    adapter: Mapped[str | None] = mapped_column(String(256))
    embedder: Mapped[str] = mapped_column(String(1024))
    index_size: Mapped[int] = mapped_column(Integer, default=0)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    judge: Mapped[str | None] = mapped_column(String(1024))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_path: Mapped[str | None] = mapped_column(String(2048))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class IngestRun(Base):
    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inputs: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | partial | failed | interrupted
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    chunks_added: Mapped[int] = mapped_column(Integer, default=0)
    chunks_removed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)  # [{"source": ..., "reason": ...}]
    skips: Mapped[list[Any]] = mapped_column(default=list)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    # Written as the run goes (a heartbeat): when its process was last known to be alive.
    last_seen_at: Mapped[datetime | None] = mapped_column()


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | ok | failed
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class SyncCursor(Base):
    """Where an incremental reader left off: last ingested commit, GitHub `since`, and so on."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(1024), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TrackedSource(Base):
    """A source the scheduler syncs on a schedule, added through the API (settings name the others)."""

    __tablename__ = "tracked_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[str] = mapped_column(String(2048))
    branch: Mapped[str | None] = mapped_column(String(255))
    interval_s: Mapped[float | None] = mapped_column(Float)
    cron: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# APScheduler's SQLAlchemyJobStore table, declared here with the same columns so the migrations
# create it and a models-vs-database comparison does not take it for a stranger to drop.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)

