"""Schedules for the scheduler's jobs: APScheduler triggers from a cron line or an interval, how two
triggers compare, and how a schedule reads in a job listing."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lorebase.errors import InvalidInput
from lorebase.settings import TrackedSourceSettings

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger


def trigger_for(cron: str | None, interval_s: float | None, timezone: str | None) -> BaseTrigger:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    try:
        if cron is not None:
            return CronTrigger.from_crontab(cron, timezone=timezone)
        assert interval_s is not None
        return IntervalTrigger(seconds=interval_s, timezone=timezone)
    except (ValueError, LookupError) as e:  # a bad field, or an unknown time zone
        raise InvalidInput(f"invalid schedule {cron or interval_s!r}: {e}") from None


def source_trigger(source: TrackedSourceSettings, timezone: str | None) -> BaseTrigger:
    return trigger_for(source.cron, source.interval_s, timezone)


def trigger_key(trigger: Any) -> str:
    """What makes two triggers the same schedule (an interval trigger's start time does not)."""
    interval = getattr(trigger, "interval", None)
    if isinstance(interval, timedelta):
        return f"interval:{interval.total_seconds()}"
    return f"{trigger}:{getattr(trigger, 'timezone', '')}"


def schedule_text(trigger: Any) -> str:
    """``every 0:10:00`` or ``cron 0 3 * * *`` (crontab order), ``once`` for a one-off run."""
    interval = getattr(trigger, "interval", None)
    if isinstance(interval, timedelta):
        return f"every {interval}"
    fields = {f.name: str(f) for f in getattr(trigger, "fields", [])}
    if fields:
        return "cron " + " ".join(fields.get(n, "*") for n in ("minute", "hour", "day", "month", "day_of_week"))
    return "once"
