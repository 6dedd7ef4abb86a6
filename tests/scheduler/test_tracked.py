"""Tracked sources: settings validation, sources added and removed through the store, and the
checks that keep bad specs, branches and names out."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import Conflict, InvalidInput, NotFound, SettingsError
from lorebase.scheduler.tracked import TrackedSources
from lorebase.settings import Settings, TrackedSourceSettings, load_settings
from lorebase.store import Store
from tests.scheduler.conftest import Corpus


def test_settings_need_exactly_one_schedule_and_unique_names(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="exactly one of interval_s and cron"):
        load_settings(home=tmp_path, scheduler={"sources": [{"name": "a", "spec": "x"}]})
    with pytest.raises(SettingsError, match="exactly one of interval_s and cron"):
        load_settings(home=tmp_path, scheduler={"sources": [{"name": "a", "spec": "x", "interval_s": 60, "cron": "0 * * * *"}]})
    with pytest.raises(SettingsError, match="five fields"):
        load_settings(home=tmp_path, scheduler={"sources": [{"name": "a", "spec": "x", "cron": "every hour"}]})
    with pytest.raises(SettingsError, match="unique: a"):
        load_settings(home=tmp_path, scheduler={"sources": [{"name": "a", "spec": "x", "interval_s": 60},
                                                            {"name": "a", "spec": "y", "interval_s": 60}]})
    with pytest.raises(SettingsError, match="scheduler.sources.0.name"):
        load_settings(home=tmp_path, scheduler={"sources": [{"name": "../up", "spec": "x", "interval_s": 60}]})


def test_environment_sets_tracked_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOREBASE_SCHEDULER__SOURCES", '[{"name": "docs", "spec": "./docs", "cron": "*/5 * * * *"}]')
    monkeypatch.setenv("LOREBASE_SCHEDULER__RETRAIN_MIN_PAIRS", "7")
    s = load_settings(home=tmp_path)
    assert [(t.name, t.cron) for t in s.scheduler.sources] == [("docs", "*/5 * * * *")]
    assert s.scheduler.retrain_min_pairs == 7


def test_added_sources_join_the_settings_ones_and_only_they_can_be_removed(
    home_settings: Settings, light_store: Store, corpus: Corpus, tmp_path: Path
) -> None:
    tracked = TrackedSources(home_settings, light_store)
    assert [(t.name, t.origin) for t in tracked.all()] == [("calc", "settings"), ("lectures", "settings")]
    extra = tmp_path / "more-lectures"
    extra.mkdir()
    added = tracked.add(TrackedSourceSettings(name="more", spec=str(extra), cron="0 * * * *"))
    assert added.job_id == "sync:more"
    again = TrackedSources(home_settings, light_store)  # read back from the database
    assert [(t.name, t.origin) for t in again.all()] == [("calc", "settings"), ("lectures", "settings"), ("more", "api")]
    assert again.get("more").source.cron == "0 * * * *"

    with pytest.raises(Conflict, match="exists already"):
        again.add(TrackedSourceSettings(name="calc", spec=str(extra), interval_s=60))
    with pytest.raises(Conflict, match="exists already"):
        again.add(TrackedSourceSettings(name="more", spec=str(extra), interval_s=60))
    with pytest.raises(InvalidInput, match="defined in settings"):
        again.remove("calc")
    again.remove("more")
    assert [t.name for t in again.all()] == ["calc", "lectures"]
    with pytest.raises(NotFound):
        again.remove("more")


def test_bad_specs_and_branches_are_refused_with_the_reason(home_settings: Settings, light_store: Store, corpus: Corpus,
                                                            tmp_path: Path) -> None:
    tracked = TrackedSources(home_settings, light_store)
    with pytest.raises(InvalidInput, match="no such file or folder"):
        tracked.add(TrackedSourceSettings(name="gone", spec=str(tmp_path / "missing"), interval_s=60))
    with pytest.raises(InvalidInput, match="git repositories only"):
        tracked.add(TrackedSourceSettings(name="lec", spec=str(corpus.lectures), branch="main", interval_s=60))
    with pytest.raises(InvalidInput, match="branch name"):
        tracked.add(TrackedSourceSettings(name="r", spec=str(corpus.repo.path), branch="--upload-pack=x", interval_s=60))
    with pytest.raises(InvalidInput, match="transport-helper"):
        tracked.add(TrackedSourceSettings(name="r", spec="ext::sh%20-c%20touch%20x", interval_s=60))
    assert [t.name for t in tracked.all()] == ["calc", "lectures"], "nothing half-added"
