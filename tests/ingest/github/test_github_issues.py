"""GitHub issues and pull requests: the API reader against a local replay server, and exports."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lorebase.errors import InvalidInput, UpstreamError
from lorebase.ingest.github.api_reader import GitHubApiReader
from lorebase.ingest.github.export_reader import GitHubExportReader, is_github_export
from lorebase.ingest.github.rate_limits import rate_limit_wait
from lorebase.ingest.github.thread_drafts import CHUNK_CHARS, thread_draft
from lorebase.ingest.github.threads import Closer, Thread, closing_refs
from lorebase.ingest.records import Cursor, Event, Fail, ReadContext, Remove, ScopeComplete, SourceDraft, Upsert
from lorebase.ingest.service import IngestService
from lorebase.settings import GitHubSettings, Settings
from lorebase.store import Store
from lorebase.store.models import Source, SourceKind, SyncCursor
from tests.conftest import REPO_ROOT
from tests.ingest.github.github_replay import FIXTURES, GitHubReplay, github_replay  # noqa: F401 - fixture

TOKEN = "ghp_replay_test_token_0123456789"
REPO = "acme/widgets"
ISSUES = {1, 2, 3, 4, 5, 6, 7}
PULLS = {8, 9, 10}
DEMO = REPO_ROOT / "datasets" / "github" / "lorebase-issues.json"


def gh_settings(settings: Settings, replay: GitHubReplay, **kw: Any) -> Settings:
    cfg = {"base_url": replay.url, "per_page": 5, "token_env": "LOREBASE_TEST_GITHUB_TOKEN", **kw}
    return settings.model_copy(update={"github": GitHubSettings(**cfg)})


def ctx(cursors: dict[str, str] | None = None) -> ReadContext:
    cursors = cursors or {}
    return ReadContext(cursor=cursors.get, known_hash=lambda key: None)


def read_all(reader: Any, context: ReadContext | None = None) -> list[Event]:
    return list(reader.read(context or ctx()))


def drafts(events: list[Event]) -> dict[str, SourceDraft]:
    ups = [e.draft for e in events if isinstance(e, Upsert)]
    out = {d.key: d for d in ups}
    assert len(out) == len(ups), "a thread was emitted twice"
    return out


def key(n: int) -> str:
    return f"{'pull_request' if n in PULLS else 'issue'}:{REPO}#{n}"


def api_reader(settings: Settings, replay: GitHubReplay, sleeps: list[float] | None = None, token: str | None = TOKEN,
               **kw: Any) -> GitHubApiReader:
    pause: Callable[[float], None] = sleeps.append if sleeps is not None else (lambda s: None)
    return GitHubApiReader(REPO, gh_settings(settings, replay, **kw), token=token, sleep=pause)


# --- the API reader ---------------------------------------------------------------------------------


def test_full_read_gives_every_thread_with_its_discussion(settings: Settings, github_replay: GitHubReplay) -> None:
    events = read_all(api_reader(settings, github_replay))
    got = drafts(events)

    assert set(got) == {key(n) for n in ISSUES | PULLS}
    assert {got[key(n)].kind for n in PULLS} == {SourceKind.pull_request}
    assert {got[key(n)].kind for n in ISSUES} == {SourceKind.issue}
    d3, d8 = got[key(3)], got[key(8)]
    assert d3.url == "https://github.com/acme/widgets/issues/3"
    assert d8.url == "https://github.com/acme/widgets/pull/8"
    assert d3.title == "#3 Crash when a widget config has an empty `colors` list"
    assert d3.number == 3 and d3.repo == REPO
    assert d3.authored_at == datetime(2024, 3, 2, 8, 0, tzinfo=UTC)

    # The issue: its comments with authors, and the pull request that fixed it, with the merge commit.
    assert "henry on 2024-03-02: Reproduced with examples/empty-colors.json" in d3.text
    assert "Closed by pull request #8" in d3.text and "3f2c9a1e5b7d4c6a8e0f1b2c3d4e5f6a7b8c9d0e" in d3.text
    assert d3.meta["closed_by"] == [8] and d3.meta["linked"] == [8]
    assert d3.meta["closing_commit"] == "3f2c9a1e5b7d4c6a8e0f1b2c3d4e5f6a7b8c9d0e"
    assert d3.meta["state"] == "closed" and d3.meta["labels"] == ["bug"] and d3.meta["author"] == "carol"
    assert d3.meta["comments"] == 2

    # The pull request: its review comment with file and line, the approval, the merge.
    assert "reviewing widgets/config.py line 42: Return a copy here" in d8.text
    assert "carol on 2024-03-06 approved: Copy added, looks good." in d8.text
    assert d8.meta["merged"] is True and d8.meta["merge_commit_sha"] == "3f2c9a1e5b7d4c6a8e0f1b2c3d4e5f6a7b8c9d0e"
    assert d8.meta["closes"] == [3] and d8.meta["review_comments"] == 1
    assert "<!--" not in d8.text  # the template's HTML comment is dropped

    # An open pull request carries a test-merge sha on GitHub: it is not reported as merged.
    d9 = got[key(9)]
    assert d9.meta["merged"] is False and d9.meta["merge_commit_sha"] is None
    assert got[key(1)].meta["linked"] == [9] and got[key(1)].meta["closed_by"] == []
    assert "would close it: #9" in got[key(1)].text
    assert "closed without merging" in got[key(10)].text
    assert got[key(5)].meta["state_reason"] == "not_planned"

    d6 = got[key(6)]  # no body at all
    assert "(no description)" in d6.text and len(d6.chunks) == 1

    assert ScopeComplete(f"issue:{REPO}#") in events and ScopeComplete(f"pull_request:{REPO}#") in events
    assert [e for e in events if isinstance(e, Cursor)] == [Cursor(f"github:{REPO}", "2024-03-09T16:00:00+00:00")]


def test_chunks_are_the_post_then_bounded_discussion(settings: Settings, github_replay: GitHubReplay) -> None:
    got = drafts(read_all(api_reader(settings, github_replay)))
    d7 = got[key(7)]
    post, *discussion = d7.chunks
    assert post.meta == {"part": "post"} and "What is the recommended way" in post.text
    # dave's comment is longer than a chunk: it is split into chunks of its own, gina's follows.
    assert [c.meta["comment_ids"] for c in discussion] == [[5007], [5007], [5008]]
    assert all(len(c.text) <= CHUNK_CHARS + 100 for c in d7.chunks)
    assert "footer tells you at once" in discussion[1].text
    assert discussion[2].meta["authors"] == ["gina"]
    assert discussion[2].meta["urls"] == ["https://github.com/acme/widgets/issues/7#issuecomment-5008"]
    d8 = got[key(8)]  # short comments share one chunk
    assert [c.meta.get("comment_ids") for c in d8.chunks] == [None, [5009, 7001, 6002]]
    assert d8.chunks[1].meta["paths"] == ["widgets/config.py"]


def test_pagination_follows_link_headers(settings: Settings, github_replay: GitHubReplay) -> None:
    got = drafts(read_all(api_reader(settings, github_replay, per_page=5)))
    listing = [r.query for r in github_replay.requests if r.path == f"/repos/{REPO}/issues"]
    assert [q.get("page") for q in listing] == [None, "2"]
    assert all(q["state"] == "all" for q in listing)
    assert len(got) == 10

    github_replay.requests.clear()
    assert len(drafts(read_all(api_reader(settings, github_replay, per_page=100)))) == 10
    assert [r.query.get("page") for r in github_replay.requests if r.path == f"/repos/{REPO}/issues"] == [None]


def test_since_cursor_reads_only_what_changed(settings: Settings, github_replay: GitHubReplay) -> None:
    first = read_all(api_reader(settings, github_replay))
    cursor = next(e for e in first if isinstance(e, Cursor))
    github_replay.apply(REPO, "later")  # issue 4 gets a new comment on 2024-03-20
    github_replay.requests.clear()

    second = read_all(api_reader(settings, github_replay), ctx({cursor.name: cursor.value}))
    listing = [r.query for r in github_replay.requests if r.path == f"/repos/{REPO}/issues"]
    assert listing[0]["since"] == "2024-03-09T16:00:00Z" and listing[0]["sort"] == "updated"
    # since is inclusive: #7, the newest of the first read, comes again (and compares unchanged).
    assert set(drafts(second)) == {key(4), key(7)}
    assert "erin on 2024-03-20: Added a WIDGET_CACHE_DIR section" in drafts(second)[key(4)].text
    assert [e for e in second if isinstance(e, Cursor)] == [Cursor(cursor.name, "2024-03-20T09:00:00+00:00")]
    assert not [e for e in second if isinstance(e, ScopeComplete)]
    assert drafts(second)[key(7)].content_hash() == drafts(first)[key(7)].content_hash()


def test_primary_rate_limit_waits_and_resumes_the_page(settings: Settings, github_replay: GitHubReplay,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    github_replay.rate_limit(path=f"/repos/{REPO}/issues", query={"page": "2"}, reset_in=1)
    sleeps: list[float] = []
    got = drafts(read_all(api_reader(settings, github_replay, sleeps)))

    assert len(sleeps) == 1 and 0 < sleeps[0] <= 3  # until the reset, a second ahead, plus a margin
    pages = [r.query.get("page") for r in github_replay.requests if r.path == f"/repos/{REPO}/issues"]
    assert pages == [None, "2", "2"]  # the same request again, not a restart
    assert set(got) == {key(n) for n in ISSUES | PULLS}
    assert "rate limit" in caplog.text and "waiting" in caplog.text


def test_secondary_rate_limit_honours_retry_after(settings: Settings, github_replay: GitHubReplay) -> None:
    github_replay.retry_after(7, path=f"/repos/{REPO}/issues/3/comments")
    sleeps: list[float] = []
    got = drafts(read_all(api_reader(settings, github_replay, sleeps)))
    assert sleeps == [7.0]
    assert got[key(3)].meta["comments"] == 2 and "Fixed by #8, thanks!" in got[key(3)].text
    assert len(got) == 10
    assert github_replay.paths().count(f"/repos/{REPO}/issues/3/comments") == 2


def test_rate_limit_longer_than_the_cap_stops_with_a_clear_error(settings: Settings, github_replay: GitHubReplay) -> None:
    github_replay.retry_after(3600, path=f"/repos/{REPO}/issues")
    sleeps: list[float] = []
    with pytest.raises(UpstreamError, match=r"rate limit.*3600 s.*max_rate_limit_wait_s \(60 s\)"):
        read_all(api_reader(settings, github_replay, sleeps, max_rate_limit_wait_s=60))
    assert sleeps == []


def test_bad_token_gives_a_clear_error_without_the_token(settings: Settings, github_replay: GitHubReplay) -> None:
    wrong = "ghp_wrong_token_9876543210"
    with pytest.raises(UpstreamError, match="401") as err:
        read_all(api_reader(settings, github_replay, token=wrong))
    assert "LOREBASE_TEST_GITHUB_TOKEN" in str(err.value)
    assert wrong not in str(err.value)


def test_unknown_repository_is_a_clear_error(settings: Settings, github_replay: GitHubReplay) -> None:
    reader = GitHubApiReader("acme/nothing", gh_settings(settings, github_replay), token=TOKEN)
    with pytest.raises(UpstreamError, match="repository acme/nothing not found"):
        read_all(reader)


def test_token_never_reaches_the_logs(settings: Settings, github_replay: GitHubReplay,
                                      caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LOREBASE_TEST_GITHUB_TOKEN", TOKEN)
    github_replay.rate_limit(path=f"/repos/{REPO}/issues")
    reader = GitHubApiReader(REPO, gh_settings(settings, github_replay), sleep=lambda s: None)  # token from the env
    events = read_all(reader)
    assert len(drafts(events)) == 10
    assert {r.authorization for r in github_replay.requests} == {f"token {TOKEN}"}  # it was used...
    assert "GET" in caplog.text  # ...the HTTP layer did log at DEBUG...
    assert TOKEN not in caplog.text and TOKEN not in repr(reader) and TOKEN not in reader.label  # ...never the token


def test_thread_gone_while_reading_is_removed(settings: Settings, github_replay: GitHubReplay) -> None:
    github_replay.fail(410, "This issue was deleted", path=f"/repos/{REPO}/issues/5/comments")
    events = read_all(api_reader(settings, github_replay))
    assert Remove(key(5)) in events
    assert set(drafts(events)) == {key(n) for n in ISSUES | PULLS} - {key(5)}
    assert ScopeComplete(f"issue:{REPO}#") in events


def test_failing_thread_is_reported_and_the_cursor_waits_for_it(settings: Settings, github_replay: GitHubReplay) -> None:
    github_replay.fail(502, "Server Error", path=f"/repos/{REPO}/issues/1/comments", times=20)
    sleeps: list[float] = []
    events = read_all(api_reader(settings, github_replay, sleeps))
    fails = [e for e in events if isinstance(e, Fail)]
    assert [f.ref for f in fails] == [key(1)] and "502" in fails[0].reason
    assert len(sleeps) >= 2 and sleeps == sorted(sleeps)  # backoff through our sleep, growing
    assert set(drafts(events)) == {key(n) for n in ISSUES | PULLS} - {key(1)}
    # Issues are not declared complete (that would delete #1); pull requests are.
    assert [e.prefix for e in events if isinstance(e, ScopeComplete)] == [f"pull_request:{REPO}#"]
    assert [e for e in events if isinstance(e, Cursor)] == [Cursor(f"github:{REPO}", "2024-03-02T10:00:00+00:00")]


def test_invalid_repository_names_are_refused(settings: Settings) -> None:
    for bad in ("acme", "acme/widgets/extra", "-acme/widgets", "acme/..", "acme/wid gets", "https://github.com/acme/widgets"):
        with pytest.raises(InvalidInput):
            GitHubApiReader(bad, settings)


def test_ingest_service_stores_threads_and_a_second_sync_changes_nothing(
    settings: Settings, store: Store, github_replay: GitHubReplay
) -> None:
    service = IngestService(settings, store, progress=False)
    first = service.run([api_reader(settings, github_replay)], inputs=[f"github:{REPO}"])
    assert (first.added, first.failed) == (10, 0)
    second = service.run([api_reader(settings, github_replay)], inputs=[f"github:{REPO}"])
    assert (second.added, second.updated, second.unchanged, second.removed) == (0, 0, 1, 0)
    with store.session() as s:
        assert s.get(SyncCursor, f"github:{REPO}").value == "2024-03-09T16:00:00+00:00"
        src = s.scalar(select(Source).where(Source.key == key(8)))
        assert src.kind == "pull_request" and src.number == 8 and len(src.chunks) == 2


# --- rate-limit arithmetic --------------------------------------------------------------------------


def test_rate_limit_wait_reads_githubs_headers() -> None:
    now = 1_700_000_000.0
    assert rate_limit_wait(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 30)}, now) == 31.0
    assert rate_limit_wait(429, {"Retry-After": "12"}, now) == 12.0
    assert rate_limit_wait(429, {}, now) == 60.0  # GitHub: no header, wait at least a minute
    assert rate_limit_wait(403, {"X-RateLimit-Remaining": "12"}, now) is None  # a plain refusal
    assert rate_limit_wait(500, {"Retry-After": "5"}, now) is None
    http_date = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert rate_limit_wait(403, {"Retry-After": http_date}, now) == pytest.approx(20.0)


# --- threads ----------------------------------------------------------------------------------------


def test_closing_references_follow_githubs_keywords() -> None:
    text = (
        "Fixes #3, closes acme/widgets#4 and Resolved: https://github.com/acme/widgets/issues/5.\n"
        "Also fixes other/repo#6; prefixes #7 is not a keyword; see #8; fixed #3 again."
    )
    assert closing_refs(text, "acme/widgets") == [3, 4, 5]
    assert closing_refs(text, "ACME/Widgets") == [3, 4, 5]


def test_an_issue_body_with_fixes_links_nothing() -> None:
    issue = {"number": 2, "title": "t", "body": "fixes #1", "state": "open", "html_url": "https://github.com/o/r/issues/2"}
    d = thread_draft(Thread("o/r", issue, comments=[]))
    assert d.meta["linked"] == [] and d.kind == SourceKind.issue


def test_only_merged_or_open_pull_requests_count_as_closing() -> None:
    issue = {"number": 2, "title": "t", "body": "", "state": "open", "html_url": "https://github.com/o/r/issues/2"}
    d = thread_draft(Thread("o/r", issue, comments=[]), [Closer(4, False, None, "closed"), Closer(5, False, None, "open")])
    assert d.meta["linked"] == [4, 5] and d.meta["closed_by"] == []
    assert "would close it: #5." in d.text and "#4" not in d.text


def test_merge_state_from_the_issue_object_alone() -> None:
    base = {"number": 5, "title": "t", "body": "Fixes #2", "state": "closed", "html_url": "https://github.com/o/r/pull/5"}
    merged = {**base, "pull_request": {"merged_at": "2024-03-06T15:30:00Z"}, "merge_commit_sha": "ab" * 20}
    d = thread_draft(Thread("o/r", merged, comments=[]))
    assert d.kind == SourceKind.pull_request and d.meta["merged"] is True and d.meta["merge_commit_sha"] == "ab" * 20
    assert d.meta["merged_at"] == "2024-03-06T15:30:00+00:00"
    closed = {**base, "pull_request": {"merged_at": None}, "merge_commit_sha": "cd" * 20}
    d = thread_draft(Thread("o/r", closed, comments=[]))
    assert d.meta["merged"] is False and d.meta["merge_commit_sha"] is None and "closed without merging" in d.text


# --- exports ----------------------------------------------------------------------------------------


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / "acme-widgets" / name).read_text().replace("{base}", "https://api.github.com"))


def test_rest_export_gives_the_same_sources_as_the_api(settings: Settings, github_replay: GitHubReplay,
                                                       tmp_path: Path) -> None:
    comments, pulls = _fixture("comments.json"), _fixture("pulls.json")
    review_comments, reviews = _fixture("review_comments.json"), _fixture("reviews.json")
    items = []
    for issue in _fixture("issues.json"):
        n = str(issue["number"])
        issue["comments_data"] = comments.get(n, [])
        if n in pulls:
            issue.update(pull_data=pulls[n], review_comments_data=review_comments.get(n, []), reviews_data=reviews.get(n, []))
        items.append(issue)
    path = tmp_path / "widgets.json"
    path.write_text(json.dumps(items))

    assert is_github_export(path)
    from_export = drafts(read_all(GitHubExportReader(path)))
    from_api = drafts(read_all(api_reader(settings, github_replay)))
    assert set(from_export) == set(from_api)
    for k, d in from_api.items():
        assert from_export[k].content_hash() == d.content_hash(), k


GH_ISSUES = [
    {
        "author": {"id": "MDQ6VXNlcjE=", "is_bot": False, "login": "alice", "name": "Alice"},
        "body": "The spinner jitters on Firefox.",
        "closedAt": None,
        "comments": [
            {"id": "IC_kwDOA1", "author": {"login": "bob"}, "authorAssociation": "NONE", "body": "Same on Linux.",
             "createdAt": "2024-03-01T12:00:00Z", "includesCreatedEdit": False, "isMinimized": False,
             "minimizedReason": "", "reactionGroups": [], "url": "https://github.com/acme/widgets/issues/1#issuecomment-5001",
             "viewerDidAuthor": False},
        ],
        "createdAt": "2024-03-01T09:00:00Z",
        "labels": [{"id": "LA_1", "name": "bug", "description": "Something isn't working", "color": "d73a4a"}],
        "number": 1,
        "state": "OPEN",
        "title": "Widget spinner jitters on Firefox",
        "updatedAt": "2024-03-02T10:00:00Z",
        "url": "https://github.com/acme/widgets/issues/1",
    },
    {
        "author": {"login": "carol"}, "body": "", "closedAt": "2024-03-06T15:30:00Z", "comments": [],
        "createdAt": "2024-03-02T08:00:00Z", "labels": [], "number": 3, "state": "CLOSED",
        "title": "Crash on empty colors", "updatedAt": "2024-03-06T15:30:00Z", "url": "https://github.com/acme/widgets/issues/3",
    },
]
GH_PULLS = [
    {
        "author": {"login": "henry"}, "body": "Fixes #3", "closedAt": "2024-03-06T15:30:00Z", "comments": [],
        "createdAt": "2024-03-05T10:00:00Z", "labels": [], "number": 8, "state": "MERGED",
        "title": "Handle empty colors", "updatedAt": "2024-03-06T15:31:00Z", "url": "https://github.com/acme/widgets/pull/8",
        "mergedAt": "2024-03-06T15:30:00Z", "mergeCommit": {"oid": "3f2c9a1e5b7d4c6a8e0f1b2c3d4e5f6a7b8c9d0e"},
        "headRefName": "fix/empty-colors", "baseRefName": "main", "isDraft": False,
        "reviews": [{"id": "PRR_1", "author": {"login": "carol"}, "authorAssociation": "MEMBER", "body": "Looks right.",
                     "submittedAt": "2024-03-06T15:00:00Z", "includesCreatedEdit": False, "reactionGroups": [],
                     "state": "APPROVED"}],
    },
]


def test_gh_cli_exports(tmp_path: Path) -> None:
    issues, pulls = tmp_path / "issues.json", tmp_path / "prs.json"
    issues.write_text(json.dumps(GH_ISSUES))
    pulls.write_text(json.dumps(GH_PULLS))
    assert is_github_export(issues) and is_github_export(pulls)

    got = drafts(read_all(GitHubExportReader(issues)))
    assert set(got) == {"issue:acme/widgets#1", "issue:acme/widgets#3"}
    d1 = got["issue:acme/widgets#1"]
    assert "bob on 2024-03-01: Same on Linux." in d1.text
    assert d1.meta["state"] == "open" and d1.meta["labels"] == ["bug"] and d1.meta["comments"] == 1
    assert d1.url == "https://github.com/acme/widgets/issues/1" and d1.authored_at == datetime(2024, 3, 1, 9, tzinfo=UTC)
    assert d1.chunks[1].meta["comment_ids"] == ["IC_kwDOA1"]

    pr = drafts(read_all(GitHubExportReader(pulls)))["pull_request:acme/widgets#8"]
    assert pr.meta["merged"] is True and pr.meta["merge_commit_sha"] == "3f2c9a1e5b7d4c6a8e0f1b2c3d4e5f6a7b8c9d0e"
    assert pr.meta["state"] == "closed" and pr.meta["closes"] == [3] and pr.meta["head"] == "fix/empty-colors"
    assert "carol on 2024-03-06 approved: Looks right." in pr.text


def test_wrapper_export_links_issues_and_pulls(tmp_path: Path) -> None:
    pull8 = _fixture("pulls.json")["8"]  # a REST pull object in "pulls"
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"repo": "acme/widgets", "issues": GH_ISSUES, "pulls": [pull8]}))
    assert is_github_export(path)
    got = drafts(read_all(GitHubExportReader(path)))
    assert set(got) == {"issue:acme/widgets#1", "issue:acme/widgets#3", "pull_request:acme/widgets#8"}
    assert got["issue:acme/widgets#3"].meta["closed_by"] == [8]
    assert got["issue:acme/widgets#3"].meta["closing_commit"] == pull8["merge_commit_sha"]
    assert got["pull_request:acme/widgets#8"].meta["merged"] is True


def test_malformed_exports_fail_with_reasons(tmp_path: Path) -> None:
    not_json = tmp_path / "broken.json"
    not_json.write_text('[{"number": 1, "title": ')
    [fail] = read_all(GitHubExportReader(not_json))
    assert isinstance(fail, Fail) and fail.ref == str(not_json) and "not valid JSON" in fail.reason

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"segments": [{"start": 0, "text": "hi"}]}))
    [fail] = read_all(GitHubExportReader(wrong))
    assert isinstance(fail, Fail) and "not a GitHub export" in fail.reason

    mixed = tmp_path / "mixed.json"
    good = {"number": 2, "title": "Good one", "body": "ok", "state": "open", "html_url": "https://github.com/acme/widgets/issues/2",
            "created_at": "2024-03-01T11:00:00Z", "updated_at": "2024-03-01T11:00:00Z", "comments": 0}
    no_number = {k: v for k, v in good.items() if k != "number"}
    bad_time = {**good, "number": 3, "created_at": "yesterday"}
    mixed.write_text(json.dumps([no_number, "not an object", good, bad_time]))
    events = read_all(GitHubExportReader(mixed))
    fails = [e for e in events if isinstance(e, Fail)]
    assert [f.ref for f in fails[:2]] == [f"{mixed} item 0", f"{mixed} item 1"]
    assert "no issue number" in fails[0].reason and "expected an issue object" in fails[1].reason
    assert fails[2].ref == "issue:acme/widgets#3" and "yesterday" in fails[2].reason
    assert list(drafts(events)) == ["issue:acme/widgets#2"]


def test_export_without_a_repository_needs_one(tmp_path: Path) -> None:
    path = tmp_path / "bare.json"
    path.write_text(json.dumps([{"number": 1, "title": "t", "body": None, "state": "open", "created_at": "2024-03-01T11:00:00Z"}]))
    [fail] = read_all(GitHubExportReader(path))
    assert isinstance(fail, Fail) and "which repository" in fail.reason
    [up] = read_all(GitHubExportReader(path, repo="acme/widgets"))
    assert isinstance(up, Upsert) and up.draft.key == "issue:acme/widgets#1" and up.draft.url is None


def test_sniffing(tmp_path: Path) -> None:
    assert is_github_export(DEMO)
    for name, content in {
        "segments.json": json.dumps({"segments": [{"start": 0.0, "end": 1.0, "text": "hello"}]}),
        "numbers.json": "[1, 2, 3]",
        "text.json": "WEBVTT\n\n00:00.000 --> 00:01.000\nhello",
    }.items():
        p = tmp_path / name
        p.write_text(content)
        assert not is_github_export(p), name
    assert not is_github_export(tmp_path / "missing.json")


def test_demo_export(settings: Settings, store: Store) -> None:
    got = drafts(read_all(GitHubExportReader(DEMO)))
    kinds = [d.kind for d in got.values()]
    assert kinds.count(SourceKind.issue) == 8 and kinds.count(SourceKind.pull_request) == 4
    vtt = got["issue:lorebase/lorebase#3"]
    assert vtt.meta["closed_by"] == [10] and "lorebase/ingest/transcripts.py" in got["pull_request:lorebase/lorebase#10"].text
    assert all(d.url and d.url.startswith("https://github.com/lorebase/lorebase/") for d in got.values())
    report = IngestService(settings, store, progress=False).run([GitHubExportReader(DEMO)], inputs=[str(DEMO)])
    assert (report.added, report.failed) == (12, 0)
