"""The adapter registry: AdapterVersion rows and their status.

Statuses: ``candidate`` (trained, not yet judged), ``rejected`` (failed the gate, or rolled back),
``promoted`` (the one served by default; at most one), ``retired`` (was promoted, replaced by a
newer promotion; kept for rollback). ``promoted_at`` records the latest promotion, which orders
the retired versions for rollback. Every change is one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from lorebase.errors import InvalidInput, NotFound
from lorebase.store import Store
from lorebase.store.models import AdapterVersion, utcnow

STATUSES = ("candidate", "promoted", "retired", "rejected")


@dataclass(frozen=True)
class Adapter:
    """A detached view of an AdapterVersion row."""

    id: int
    name: str
    path: str
    base_model: str
    data_hash: str
    status: str
    created_at: datetime
    promoted_at: datetime | None
    config: dict[str, Any]
    metrics: dict[str, Any]


def _view(row: AdapterVersion) -> Adapter:
    return Adapter(row.id, row.name, row.path, row.base_model, row.data_hash, row.status, row.created_at,
                   row.promoted_at, dict(row.config or {}), dict(row.metrics or {}))


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store

    def list(self) -> list[Adapter]:
        with self.store.session() as s:
            return [_view(r) for r in s.scalars(select(AdapterVersion).order_by(AdapterVersion.created_at, AdapterVersion.id))]

    def get(self, name: str) -> Adapter:
        with self.store.session() as s:
            row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == name))
            if row is None:
                raise NotFound(f"no adapter named {name!r}; `lorebase adapters list` shows them")
            return _view(row)

    def promoted(self) -> Adapter | None:
        with self.store.session() as s:
            row = s.scalar(select(AdapterVersion).where(AdapterVersion.status == "promoted"))
            return _view(row) if row is not None else None

    def previous(self) -> Adapter | None:
        """The version promoted before the current one: where a rollback goes."""
        with self.store.session() as s:
            row = s.scalar(
                select(AdapterVersion)
                .where(AdapterVersion.status == "retired", AdapterVersion.promoted_at.is_not(None))
                .order_by(AdapterVersion.promoted_at.desc(), AdapterVersion.id.desc())
                .limit(1)
            )
            return _view(row) if row is not None else None

    def promote(self, name: str) -> Adapter:
        """Serve ``name`` by default; the currently promoted version is retired (kept for rollback)."""
        with self.store.session() as s:
            row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == name))
            if row is None:
                raise NotFound(f"no adapter named {name!r}; `lorebase adapters list` shows them")
            if row.status == "promoted":
                return _view(row)
            for cur in s.scalars(select(AdapterVersion).where(AdapterVersion.status == "promoted")):
                cur.status = "retired"
            row.status = "promoted"
            row.promoted_at = utcnow()
            s.flush()
            return _view(row)

    def rollback(self) -> tuple[Adapter, Adapter | None]:
        """Take the promoted version out of service (it becomes ``rejected``) and promote the one
        before it again; with none before it, the base model serves. Returns (rolled back, now served)."""
        with self.store.session() as s:
            cur = s.scalar(select(AdapterVersion).where(AdapterVersion.status == "promoted"))
            if cur is None:
                raise InvalidInput("no adapter is promoted: there is nothing to roll back")
            prev = s.scalar(
                select(AdapterVersion)
                .where(AdapterVersion.status == "retired", AdapterVersion.promoted_at.is_not(None))
                .order_by(AdapterVersion.promoted_at.desc(), AdapterVersion.id.desc())
                .limit(1)
            )
            cur.status = "rejected"
            metrics = dict(cur.metrics or {})
            metrics["rolled_back_at"] = utcnow().isoformat()
            cur.metrics = metrics
            if prev is not None:
                prev.status = "promoted"  # promoted_at stays: the order of past promotions is kept
            s.flush()
            return _view(cur), (_view(prev) if prev is not None else None)

    def set_status(self, name: str, status: str, metrics: dict[str, Any] | None = None) -> Adapter:
        """Record a judgement (``rejected`` or ``candidate``) and, optionally, merge metrics in."""
        if status not in ("candidate", "rejected"):
            raise InvalidInput(f"use promote or rollback to make an adapter {status!r}")
        with self.store.session() as s:
            row = s.scalar(select(AdapterVersion).where(AdapterVersion.name == name))
            if row is None:
                raise NotFound(f"no adapter named {name!r}")
            if row.status == "promoted":
                raise InvalidInput(f"{name} is promoted: roll it back rather than rejecting it")
            row.status = status
            if metrics:
                row.metrics = {**(row.metrics or {}), **metrics}
            s.flush()
            return _view(row)
