"""The scheduler (lorebase.scheduler): tracked sources, their schedules, retraining and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from lorebase.settings.section import Section

_TRACKED_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _no_nul(spec: str) -> str:
    # A NUL cannot be in a path, URL or name; the OS refuses it ("embedded null byte") deep inside.
    if "\0" in spec:
        raise ValueError("a source must not contain a NUL character (\\u0000)")
    return spec


SourceSpec = Annotated[str, AfterValidator(_no_nul)]
MAX_INTERVAL_S = 366 * 86400.0


class TrackedSourceSettings(Section):
    """One tracked source: what `lorebase ingest` would be given, and how often to sync it."""

    name: str = Field(pattern=_TRACKED_NAME, description="Short unique name; the job is `sync:<name>`.")
    spec: SourceSpec = Field(min_length=1, max_length=2048, description="What `lorebase ingest` accepts: a folder, a repository path or clone URL, github:OWNER/REPO, an export file.")
    branch: str | None = Field(None, max_length=255, description="Git sources: the branch to follow (default: the repository's own HEAD).")
    interval_s: float | None = Field(None, ge=1.0, le=MAX_INTERVAL_S, description="Sync every this many seconds, at most a year (or give cron).")
    cron: str | None = Field(None, description="Sync on this crontab schedule, five fields: minute hour day month weekday.")

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError("a crontab schedule has five fields: minute hour day month weekday")
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> TrackedSourceSettings:
        if (self.interval_s is None) == (self.cron is None):
            raise ValueError(f"tracked source {self.name!r}: give exactly one of interval_s and cron")
        return self


class SchedulerSettings(Section):
    """Scheduled sync, ingest, QA generation, retraining and evaluation (see docs/scheduler.md)."""

    enabled: bool = Field(False, description="Run the scheduler inside `lorebase serve`; `lorebase scheduler run` runs it on its own.")
    sources: list[TrackedSourceSettings] = Field(
        default_factory=list, description="Tracked sources: [{name, spec, branch, interval_s or cron}]; more can be added through the API."
    )
    retrain_min_pairs: int = Field(50, ge=1, description="Retrain once this many validated QA pairs (feedback corrections included) are newer than the last training.")
    eval_cron: str | None = Field("0 3 * * *", description="Crontab schedule of the evaluation job (`lorebase eval` on eval_set); unset: none.")
    eval_set: Path | None = Field(None, description="Question set of the scheduled evaluation; unset: eval.default_set.")
    eval_judge: bool = Field(True, description="Score the scheduled evaluation with the RAGAS judge too (slow on CPU).")
    embedder_cron: str | None = Field(
        None, description="Crontab schedule of the embedder-tuning job (tune, gate, re-embed and swap); unset: never (opt-in)."
    )
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts of a failing step before it is recorded as failed for good.")
    backoff_s: float = Field(30.0, ge=0.0, description="Wait before the first retry of a failed step; doubled for each further one.")
    backoff_max_s: float = Field(900.0, ge=0.0, description="Longest wait between two attempts.")
    misfire_grace_s: int = Field(3600, ge=1, description="A run missed (the process was down or busy) still starts if at most this late; several missed runs coalesce into one.")
    timezone: str | None = Field(None, description="Time zone of cron schedules (e.g. Europe/Berlin); unset: the machine's.")
    poll_s: float = Field(30.0, ge=1.0, description="How often a running scheduler picks up sources and pauses changed by other processes.")
    standby_poll_s: float = Field(
        5.0, gt=0.0, description="How often a `lorebase scheduler run` standing by (another process runs the jobs) checks whether it may take over."
    )

    @field_validator("eval_cron")
    @classmethod
    def _eval_five_fields(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError("a crontab schedule has five fields: minute hour day month weekday")
        return v

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[TrackedSourceSettings]) -> list[TrackedSourceSettings]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"tracked source names must be unique: {', '.join(dup)}")
        return v
