"""The sync step's view of a tracked source: what changed since its last ingest, found without
ingesting (git heads against the reader's cursor, file listings against the last clean ingest)."""

from __future__ import annotations

import json
from pathlib import Path

from lorebase.scheduler.changes import LISTING_CURSOR, listing_of, probe, save_listing, source_kind
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import Store
from lorebase.store.models import SyncCursor
from tests.ingest.gitrepo_helpers import TempRepo
from tests.scheduler.conftest import ISSUES, Corpus


def _set_cursor(store: Store, name: str, value: str) -> None:
    with store.session() as s:
        s.merge(SyncCursor(name=name, value=value))


def test_kinds_follow_the_ingest_reading_of_a_spec(corpus: Corpus) -> None:
    assert source_kind(str(corpus.repo.path)) == "git"
    assert source_kind(f"file://{corpus.repo.path}") == "git"
    assert source_kind("git@github.com:o/r.git") == "git"
    assert source_kind("github:o/r") == "github"
    assert source_kind("https://example.org/cs101/lec1.mp4") == "recording"
    assert source_kind(str(corpus.lectures)) == "files"
    assert source_kind(str(ISSUES)) == "files"


def test_a_fetched_clone_url_is_changed_until_its_cursor_reaches_the_new_head(
    home_settings: Settings, light_store: Store, corpus: Corpus
) -> None:
    source = home_settings.scheduler.sources[0]  # file://…/calc, branch main
    first = probe(source, home_settings, light_store)
    assert first.changed and first.counts["full"] is True
    assert first.counts["commits"] == 2 and first.counts["files"] == 2
    assert first.counts["head"] == corpus.repo.head()
    clone = home_settings.repos_dir
    assert any(clone.iterdir()), "the clone URL was fetched into the data home"

    _set_cursor(light_store, "git:calc:main", corpus.repo.head())  # as the git reader leaves it
    assert not probe(source, home_settings, light_store).changed

    old = corpus.repo.head()
    corpus.repo.write("calc/more.py", "def mul(a, b):\n    return a * b\n")
    corpus.repo.write("README.md", "# Calc\n\nChanged.\n")
    new = corpus.repo.commit("Add mul", date="2024-03-03T10:00:00+00:00")
    found = probe(source, home_settings, light_store)
    assert found.changed and found.counts["head"] == new != old, "the probe fetched the new commit"
    assert found.counts["commits"] == 1 and found.counts["files"] == 2 and "full" not in found.counts


def test_a_local_repository_branch_is_read_as_it_is(home_settings: Settings, light_store: Store, tmp_path: Path) -> None:
    repo = TempRepo(tmp_path / "local")
    repo.write("a.py", "x = 1\n")
    main = repo.commit("one")
    repo.git("checkout", "-q", "-b", "topic")
    repo.write("b.py", "y = 2\n")
    topic = repo.commit("two")
    on_main = TrackedSourceSettings(name="m", spec=str(repo.path), branch="main", interval_s=60)
    assert probe(on_main, home_settings, light_store).counts["head"] == main
    assert probe(TrackedSourceSettings(name="t", spec=str(repo.path), interval_s=60), home_settings, light_store).counts["head"] == topic


def test_file_listings_count_new_modified_and_deleted_files(home_settings: Settings, light_store: Store, corpus: Corpus) -> None:
    source = home_settings.scheduler.sources[1]  # the lectures folder
    first = probe(source, home_settings, light_store)
    assert first.changed and first.counts == {"files": 1, "new": 1, "modified": 0, "deleted": 0}
    # Until the ingest saves the listing, the same change is seen again (nothing is lost to a crash).
    assert probe(source, home_settings, light_store).changed
    save_listing(light_store, first)
    assert not probe(source, home_settings, light_store).changed

    (corpus.lectures / "two.vtt").write_text("WEBVTT\n", encoding="utf-8")
    (corpus.lectures / ".hidden.vtt").write_text("WEBVTT\n", encoding="utf-8")  # left out, as the reader leaves it
    (corpus.lectures / "scheduler.vtt").write_text("WEBVTT\n\nchanged\n", encoding="utf-8")
    second = probe(source, home_settings, light_store)
    assert second.changed and second.counts == {"files": 2, "new": 1, "modified": 1, "deleted": 0}
    save_listing(light_store, second)
    (corpus.lectures / "two.vtt").unlink()
    third = probe(source, home_settings, light_store)
    assert third.changed and third.counts == {"files": 1, "new": 0, "modified": 0, "deleted": 1}
    with light_store.session() as s:
        saved = json.loads(s.get(SyncCursor, LISTING_CURSOR + "lectures").value)
    assert set(saved) == {"scheduler.vtt", "two.vtt"}, "the listing of the last clean ingest, not of the last look"


def test_a_single_file_is_listed_by_itself(tmp_path: Path) -> None:
    f = tmp_path / "export.json"
    f.write_text("{}", encoding="utf-8")
    assert list(listing_of(f)) == ["export.json"]
