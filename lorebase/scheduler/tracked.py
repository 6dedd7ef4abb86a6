"""Tracked sources: those in settings (``scheduler.sources``) and those added through the API
(table ``tracked_sources``). Names are unique across both; settings win a clash, and only API ones
can be removed through the API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from lorebase.errors import Conflict, InvalidInput, NotFound
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import Store
from lorebase.store.models import TrackedSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tracked:
    source: TrackedSourceSettings
    origin: Literal["settings", "api"]

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def job_id(self) -> str:
        return f"sync:{self.source.name}"

    def as_dict(self) -> dict[str, Any]:
        return {**self.source.model_dump(), "origin": self.origin, "job": self.job_id}


def check_spec(source: TrackedSourceSettings, settings: Settings) -> None:
    """The spec must name something `lorebase ingest` can read, and a branch only a git source."""
    from lorebase.ingest.resolve import reader_for
    from lorebase.scheduler.changes import source_kind

    kind = source_kind(source.spec)
    if source.branch is not None:
        if kind != "git":
            raise InvalidInput(f"tracked source {source.name!r}: a branch applies to git repositories only")
        from lorebase.ingest.git.repo import GitRepoReader

        GitRepoReader(source.spec, settings, branch=source.branch)  # validates both
        return
    reader_for(source.spec, settings)


class TrackedSources:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def all(self) -> list[Tracked]:
        found = [Tracked(s, "settings") for s in self.settings.scheduler.sources]
        taken = {t.name for t in found}
        with self.store.session() as s:
            rows = list(s.scalars(select(TrackedSource).order_by(TrackedSource.name)))
        for row in rows:
            if row.name in taken:
                log.warning("tracked source %r is defined in settings too; the settings win", row.name)
                continue
            try:
                source = TrackedSourceSettings(name=row.name, spec=row.spec, branch=row.branch, interval_s=row.interval_s,
                                               cron=row.cron)
            except ValidationError as e:  # edited by hand into something invalid: leave it out, say why
                log.warning("tracked source %r in the database is invalid, left out: %s", row.name, e)
                continue
            found.append(Tracked(source, "api"))
        return found

    def get(self, name: str) -> Tracked:
        for t in self.all():
            if t.name == name:
                return t
        raise NotFound(f"no tracked source named {name!r}")

    def add(self, source: TrackedSourceSettings) -> Tracked:
        if any(t.name == source.name for t in self.all()):
            raise Conflict(f"a tracked source named {source.name!r} exists already")
        check_spec(source, self.settings)
        try:
            with self.store.session() as s:
                s.add(TrackedSource(name=source.name, spec=source.spec, branch=source.branch, interval_s=source.interval_s,
                                    cron=source.cron))
        except IntegrityError:  # added by another request meanwhile
            raise Conflict(f"a tracked source named {source.name!r} exists already") from None
        return Tracked(source, "api")

    def remove(self, name: str) -> None:
        tracked = self.get(name)
        if tracked.origin == "settings":
            raise InvalidInput(f"tracked source {name!r} is defined in settings (scheduler.sources): remove it there")
        with self.store.session() as s:
            s.execute(delete(TrackedSource).where(TrackedSource.name == name))
