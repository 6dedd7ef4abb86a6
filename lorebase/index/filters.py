"""Search filters: parsed and checked once, then turned into the set of chunk ids they allow.

Both retrievers search only within that set, so a selective filter still yields k results
whenever k matching chunks exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Select, select

from lorebase.errors import InvalidInput
from lorebase.store.models import SOURCE_KINDS, Chunk, Source

if TYPE_CHECKING:
    from lorebase.store import Store

FILTER_KEYS = ("kind", "repo", "path_prefix", "lecture", "since", "until")


@dataclass(frozen=True)
class Filters:
    kinds: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    path_prefix: str | None = None
    lectures: tuple[str, ...] = ()
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC

    @property
    def empty(self) -> bool:
        return not (self.kinds or self.repos or self.path_prefix or self.lectures or self.since or self.until)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not values or not all(isinstance(v, str) and v for v in values):
        raise InvalidInput(f"filter {key!r} takes a non-empty string or a list of them, got {value!r}")
    return tuple(values)


def _instant(key: str, value: Any, end: bool) -> datetime:
    """A date or datetime (ISO string or object) as a UTC bound: ``since`` inclusive, ``until``
    exclusive internally, so a bare ``until`` date includes that whole day and a datetime itself."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"filter {key!r} needs an ISO date or datetime (e.g. 2024-05-01), got {value!r}") from None
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return (dt + timedelta(microseconds=1) if end else dt).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1) if end else value, time(), tzinfo=UTC)
    raise InvalidInput(f"filter {key!r} needs an ISO date or datetime, got {value!r}")


def parse_filters(raw: dict[str, Any] | None) -> Filters:
    """Check and normalise a filter mapping; unknown keys and bad values raise InvalidInput."""
    if not raw:
        return Filters()
    if not isinstance(raw, dict):
        raise InvalidInput(f"filters must be a mapping, got {type(raw).__name__}")
    unknown = sorted(k for k in raw if k not in FILTER_KEYS)
    if unknown:
        raise InvalidInput(f"unknown filter key {unknown[0]!r}; known keys: {', '.join(FILTER_KEYS)}")
    vals = {k: v for k, v in raw.items() if v is not None}
    kinds = _strings("kind", vals["kind"]) if "kind" in vals else ()
    bad = [k for k in kinds if k not in SOURCE_KINDS]
    if bad:
        raise InvalidInput(f"unknown kind {bad[0]!r} in filter 'kind'; kinds: {', '.join(SOURCE_KINDS)}")
    prefix = vals.get("path_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix):
        raise InvalidInput(f"filter 'path_prefix' takes a non-empty string, got {prefix!r}")
    f = Filters(
        kinds=kinds,
        repos=_strings("repo", vals["repo"]) if "repo" in vals else (),
        path_prefix=prefix,
        lectures=_strings("lecture", vals["lecture"]) if "lecture" in vals else (),
        since=_instant("since", vals["since"], end=False) if "since" in vals else None,
        until=_instant("until", vals["until"], end=True) if "until" in vals else None,
    )
    if f.since and f.until and f.since >= f.until:
        raise InvalidInput("filter 'since' must come before 'until'")
    return f


def _utc(dt: datetime) -> datetime:
    # Ingest writes UTC. SQLite keeps the wall time as text (the offset is dropped, so it must be
    # UTC's); PostgreSQL compares the instant.
    return dt.astimezone(UTC)


def chunk_query(f: Filters) -> Select[int]:
    q = select(Chunk.id).join(Source, Chunk.source_id == Source.id)
    if f.kinds:
        q = q.where(Source.kind.in_(f.kinds))
    if f.repos:
        q = q.where(Source.repo.in_(f.repos))
    if f.path_prefix:
        q = q.where(Source.path.startswith(f.path_prefix, autoescape=True))
    if f.lectures:
        # A lecture is named by its title or by its id (the key without "transcript:", e.g.
        # "meetings/education_4", the folder and file it was ingested from).
        keys = [f"transcript:{name.strip('/')}" for name in f.lectures]
        q = q.where(Source.lecture.in_(f.lectures) | Source.key.in_(keys))
    if f.since:
        q = q.where(Source.authored_at >= _utc(f.since))
    if f.until:
        q = q.where(Source.authored_at < _utc(f.until))
    return q


def allowed_chunk_ids(store: Store, f: Filters) -> np.ndarray | None:
    """Sorted ids of the chunks the filters allow; None when there are no filters (everything)."""
    if f.empty:
        return None
    with store.session() as s:
        ids = s.scalars(chunk_query(f).order_by(Chunk.id)).all()
    return np.asarray(ids, dtype=np.int64)
