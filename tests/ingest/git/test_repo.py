from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lorebase.errors import InvalidInput
from lorebase.ingest.git.repo import GitRepoReader
from lorebase.ingest.records import Cursor, Fail, ScopeComplete, Skip, Upsert
from lorebase.ingest.service import IngestService
from lorebase.settings import Settings, load_settings
from lorebase.store import Store
from lorebase.store.models import SourceKind
from tests.ingest.gitrepo_helpers import (
    AUTHOR,
    TempRepo,
    cursor_of,
    git,
    read_events,
    removes,
    scopes,
    skips,
    upserts,
)

APP_PY = '''"""The app."""

import sys


def main(argv: list[str]) -> int:
    """Run it."""
    return len(argv)


class Widget:
    def spin(self) -> None:
        pass
'''

README = """# Widgets

Widgets spin.

## Install

pip install widgets
"""


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    s = load_settings(home=tmp_path / "home", ingest={"max_file_bytes": 4000, "max_diff_lines": 6})
    s.ensure_home()
    return s


def _widgets(tmp_path: Path) -> TempRepo:
    repo = TempRepo(tmp_path / "widgets")
    repo.git("remote", "add", "origin", "https://github.com/acme/widgets.git")
    repo.write("src/app.py", APP_PY)
    repo.write("README.md", README)
    repo.write("docs/guide.rst", "Guide\n=====\n\nRead me.\n")
    repo.write("config.yaml", "name: widgets\nsize: 3\n")
    repo.write("bin/tool", "#!/usr/bin/env python3\nprint('tool')\n")
    repo.write("vendor/lib.py", "x = 1\n")
    repo.write("web/node_modules/pkg/index.js", "module.exports = 1;\n")
    repo.write("web/dist/app.min.js", "var a=1;\n")
    repo.write("package-lock.json", "{}\n")
    repo.write("poetry.lock", "# lock\n")
    repo.write("logo.png", b"\x89PNG\r\n\x1a\n")
    repo.write("notes/blob.txt", b"text\x00with a NUL\n")
    repo.write("notes/noise.md", bytes((7 * i * i + 13 * i) % 255 + 1 for i in range(3000)))  # bytes 1..255, no NUL
    repo.write("src/huge.py", "x = 1\n" * 1000)  # 6000 bytes > max_file_bytes 4000
    repo.write("docs/legacy.txt", b"caf\xe9 na\xefve \x93quoted\x94\n")  # cp1252 bytes
    repo.write("src/__init__.py", "")
    repo.write(".gitignore", "ignored.py\n")
    repo.write("ignored.py", "SECRET = 1\n")
    (repo.path / "link.py").symlink_to("src/app.py")
    repo.commit("Add widgets", date="2024-03-05T10:20:30+02:00")
    # A submodule entry (gitlink) without a real submodule repository.
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{repo.head()},extern/sub")
    repo.git("commit", "-q", "-m", "Add submodule")
    repo.write("untracked.py", "NOT_COMMITTED = 1\n")
    return repo


def test_full_scan_events(tmp_path: Path, small_settings: Settings) -> None:
    repo = _widgets(tmp_path)
    head = repo.head()
    events = read_events(GitRepoReader(str(repo.path), small_settings))

    ups = upserts(events)
    files = {k for k, u in ups.items() if u.draft.kind in (SourceKind.code, SourceKind.doc)}
    assert files == {
        "code:acme/widgets:src/app.py",
        "code:acme/widgets:config.yaml",
        "code:acme/widgets:bin/tool",
        "doc:acme/widgets:README.md",
        "doc:acme/widgets:docs/guide.rst",
        "doc:acme/widgets:docs/legacy.txt",
    }
    app = ups["code:acme/widgets:src/app.py"].draft
    assert app.kind is SourceKind.code and app.repo == "acme/widgets" and app.path == "src/app.py"
    assert app.commit == head and app.title == "src/app.py"
    assert app.url == f"https://github.com/acme/widgets/blob/{head}/src/app.py"
    assert app.text == APP_PY
    assert (app.start_line, app.end_line) == (1, APP_PY.count("\n"))
    assert app.meta["language"] == "python" and app.meta["size"] == len(APP_PY.encode())
    assert {c.meta.get("symbol") for c in app.chunks} >= {"main", "Widget"}
    assert ups["code:acme/widgets:bin/tool"].draft.meta["language"] == "python"  # from its #! line

    readme = ups["doc:acme/widgets:README.md"].draft
    assert [c.meta["heading_path"] for c in readme.chunks] == [["Widgets"], ["Widgets", "Install"]]

    legacy = ups["doc:acme/widgets:docs/legacy.txt"].draft
    assert legacy.text == "café naïve “quoted”\n" and legacy.meta["encoding"] == "cp1252"

    sk = skips(events)
    assert sk["acme/widgets:link.py"] == "symbolic link"
    assert sk["acme/widgets:extern/sub"] == "submodule"
    for vendored in ("vendor/lib.py", "web/node_modules/pkg/index.js", "web/dist/app.min.js", "package-lock.json", "poetry.lock"):
        assert sk[f"acme/widgets:{vendored}"] == "vendored or generated path", vendored
    assert sk["acme/widgets:logo.png"] == "binary file type"
    assert sk["acme/widgets:notes/blob.txt"] == "binary content"
    assert sk["acme/widgets:notes/noise.md"].startswith("binary content:") and "control characters" in sk["acme/widgets:notes/noise.md"]
    assert "max_file_bytes" in sk["acme/widgets:src/huge.py"]
    assert sk["acme/widgets:src/__init__.py"] == "empty file"
    refs = {e.draft.key for e in events if isinstance(e, Upsert)} | set(sk)
    assert not any("ignored.py" in r or "untracked.py" in r for r in refs)
    assert not any(isinstance(e, Fail) for e in events)

    assert scopes(events) == ["code:acme/widgets:", "doc:acme/widgets:"]
    cur = cursor_of(events)
    assert cur.name == "git:acme/widgets:main" and cur.value == head


def test_commit_sources(tmp_path: Path, small_settings: Settings) -> None:
    repo = TempRepo(tmp_path / "widgets")
    repo.git("remote", "add", "origin", "git@github.com:acme/widgets.git")
    repo.write("a.py", "".join(f"v{i} = {i}\n" for i in range(10)))
    first = repo.commit("Add a\n\nWith ten values.", date="2024-03-05T10:20:30+02:00")
    repo.write("a.py", "".join(f"v{i} = {i + 100}\n" for i in range(10)))
    repo.write("b.md", "# B\n")
    repo.write("img.png", b"\x89PNG\x00\x00")
    repo.write("vendor/x.py", "y = 2\n")
    second = repo.commit("Double the values", date="2024-04-01T08:00:00-05:00")

    events = read_events(GitRepoReader(str(repo.path), small_settings))
    commits = [e.draft for e in events if isinstance(e, Upsert) and e.draft.kind is SourceKind.commit]
    assert [c.commit for c in commits] == [second, first]  # newest first
    c2 = commits[0]
    assert c2.key == f"commit:acme/widgets:{second}"
    assert c2.url == f"https://github.com/acme/widgets/commit/{second}"
    assert c2.title == "Double the values" and c2.number is None
    assert c2.authored_at == datetime(2024, 4, 1, 8, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert c2.authored_at.utcoffset() is not None
    assert c2.meta["author"] == AUTHOR and c2.meta["parents"] == [first]
    # +/- counts agree with git's own numstat.
    numstat = {}
    for line in git(repo.path, "show", "--numstat", "--format=", second).splitlines():
        added, deleted, path = line.split("\t")
        numstat[path] = (added, deleted)
    files = {f["path"]: f for f in c2.meta["files"]}
    assert set(files) == set(numstat)
    for path, (added, deleted) in numstat.items():
        if added == "-":
            assert files[path]["binary"] is True
        else:
            assert (str(files[path]["added"]), str(files[path]["deleted"])) == (added, deleted)
    assert files["b.md"]["status"] == "A" and files["a.py"]["status"] == "M"
    # The diff keeps max_diff_lines (6) lines and says how many were trimmed; binary and vendored left out.
    a_diff_lines = 1 + 10 + 10  # hunk header, 10 removed, 10 added
    b_diff_lines = 1 + 1
    trimmed = a_diff_lines + b_diff_lines - 6
    assert f"[{trimmed} diff lines trimmed]" in c2.text
    assert c2.meta["diff_lines_trimmed"] == trimmed
    assert "y = 2" not in c2.text and "vendor/x.py" in c2.text
    assert set(c2.meta["diff_left_out"]) == {"img.png", "vendor/x.py"}
    assert c2.text.startswith("Double the values\n") and f"Author: {AUTHOR}" in c2.text
    assert c2.chunks[0].meta["part"] == "message" and "M a.py (+10 -10)" in c2.chunks[0].text
    diff_chunks = [c for c in c2.chunks if c.meta["part"] == "diff"]
    assert {c.meta["path"] for c in diff_chunks} <= {"a.py", "b.md"} and diff_chunks
    c1 = commits[1]
    assert "With ten values." in c1.text and c1.meta["parents"] == []


def _incremental_repo(tmp_path: Path) -> TempRepo:
    repo = TempRepo(tmp_path / "tools")
    repo.write("keep.py", "def keep():\n    return 1\n")
    repo.write("change.py", "def change():\n    return 1\n")
    repo.write("gone.md", "# Gone\n\nSoon.\n")
    repo.write("old_name.py", "def moved():\n    return 'same content, new place'\n")
    repo.commit("Start")
    return repo


def test_incremental_read_emits_only_changes(tmp_path: Path, settings: Settings) -> None:
    repo = _incremental_repo(tmp_path)
    first = read_events(GitRepoReader(str(repo.path), settings))
    cur = cursor_of(first)
    assert cur.name == "git:tools:main"

    repo.write("change.py", "def change():\n    return 2\n")
    (repo.path / "gone.md").unlink()
    repo.git("mv", "old_name.py", "new_name.py")
    new_head = repo.commit("Change, delete and rename")

    events = read_events(GitRepoReader(str(repo.path), settings), {cur.name: cur.value})
    ups = upserts(events)
    assert set(ups) == {"code:tools:change.py", "code:tools:new_name.py", f"commit:tools:{new_head}"}
    assert "return 2" in ups["code:tools:change.py"].draft.text
    assert sorted(removes(events)) == ["code:tools:old_name.py", "doc:tools:gone.md"]
    assert not any(isinstance(e, (ScopeComplete, Skip, Fail)) for e in events)
    assert cursor_of(events).value == new_head
    assert sum(isinstance(e, Cursor) for e in events) == 1


def test_unchanged_head_gives_only_the_cursor(tmp_path: Path, settings: Settings) -> None:
    repo = _incremental_repo(tmp_path)
    cur = cursor_of(read_events(GitRepoReader(str(repo.path), settings)))
    started = time.perf_counter()
    events = read_events(GitRepoReader(str(repo.path), settings), {cur.name: cur.value})
    assert events == [Cursor(cur.name, repo.head())]
    assert time.perf_counter() - started < 5


def test_force_push_falls_back_to_full_scan(tmp_path: Path, settings: Settings) -> None:
    repo = _incremental_repo(tmp_path)
    repo.write("extra.py", "E = 1\n")
    repo.commit("Extra")
    cur = cursor_of(read_events(GitRepoReader(str(repo.path), settings)))
    repo.git("reset", "-q", "--hard", "HEAD~1")
    repo.write("other.py", "O = 1\n")
    new_head = repo.commit("Rewritten history")

    events = read_events(GitRepoReader(str(repo.path), settings), {cur.name: cur.value})
    ups = upserts(events)
    assert {"code:tools:keep.py", "code:tools:change.py", "code:tools:other.py", "doc:tools:gone.md"} <= set(ups)
    assert "code:tools:extra.py" not in ups
    assert scopes(events) == ["code:tools:", "doc:tools:"]
    assert cursor_of(events).value == new_head


def test_cursor_that_is_not_a_commit_means_full_scan(tmp_path: Path, settings: Settings) -> None:
    repo = _incremental_repo(tmp_path)
    events = read_events(GitRepoReader(str(repo.path), settings), {"git:tools:main": "not-a-sha; rm -rf /"})
    assert scopes(events) == ["code:tools:", "doc:tools:"]


def test_other_branch_and_plain_repo_name(tmp_path: Path, settings: Settings) -> None:
    repo = _incremental_repo(tmp_path)
    repo.git("checkout", "-q", "-b", "feature/x")
    repo.write("feature.py", "F = 1\n")
    feature_head = repo.commit("Feature")
    repo.git("checkout", "-q", "main")
    events = read_events(GitRepoReader(str(repo.path), settings, branch="feature/x"))
    ups = upserts(events)
    assert "code:tools:feature.py" in ups and ups["code:tools:feature.py"].draft.url is None
    assert cursor_of(events) == Cursor("git:tools:feature/x", feature_head)
    missing = read_events(GitRepoReader(str(repo.path), settings, branch="nope"))
    assert len(missing) == 1 and isinstance(missing[0], Fail) and "nope" in missing[0].reason


def test_clone_from_file_url_then_fetch(tmp_path: Path, settings: Settings) -> None:
    work = _incremental_repo(tmp_path)
    bare = tmp_path / "remote" / "tools.git"
    git(tmp_path, "clone", "-q", "--bare", str(work.path), str(bare))
    url = f"file://{bare}"

    events = read_events(GitRepoReader(url, settings))
    clones = [p for p in settings.repos_dir.iterdir() if not p.name.startswith(".")]
    assert len(clones) == 1 and (clones[0] / ".git").is_dir()
    assert not any(clones[0].glob("*.py")), "the clone needs no checked-out files"
    assert {"code:tools:keep.py", "doc:tools:gone.md"} <= set(upserts(events))
    cur = cursor_of(events)
    assert cur == Cursor("git:tools:main", work.head())

    work.write("keep.py", "def keep():\n    return 'kept'\n")
    new_head = work.commit("Keep it")
    git(work.path, "push", "-q", str(bare), "main")
    events = read_events(GitRepoReader(url, settings), {cur.name: cur.value})
    assert set(upserts(events)) == {"code:tools:keep.py", f"commit:tools:{new_head}"}
    assert cursor_of(events).value == new_head


def test_clone_failure_is_a_fail_event(tmp_path: Path, settings: Settings) -> None:
    events = read_events(GitRepoReader(f"file://{tmp_path}/no/such/repo.git", settings))
    assert len(events) == 1 and isinstance(events[0], Fail)
    assert not [p for p in settings.repos_dir.iterdir()], "a failed clone leaves nothing behind"


@pytest.mark.parametrize(
    ("location", "branch"),
    [
        ("--upload-pack=touch {marker}", None),
        ("-oProxyCommand=touch {marker}", None),
        ("ext::sh -c touch% {marker}", None),
        ("ssh://-oProxyCommand=touch%20{marker}/x/y", None),
        ("{repo}", "--help"),
        ("{repo}", "a;rm -rf /"),
        ("{repo}", "a;touch {marker}"),
    ],
)
def test_malicious_inputs_are_rejected(tmp_path: Path, settings: Settings, location: str, branch: str | None) -> None:
    repo = _incremental_repo(tmp_path)
    marker = tmp_path / "marker"
    with pytest.raises(InvalidInput):
        GitRepoReader(
            location.format(marker=marker, repo=repo.path),
            settings,
            branch=None if branch is None else branch.format(marker=marker),
        )
    assert not marker.exists()
    assert not list(settings.repos_dir.iterdir())


def test_not_a_repository_is_invalid_input(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(InvalidInput, match="not a git repository"):
        GitRepoReader(str(tmp_path / "plain"), settings)
    with pytest.raises(InvalidInput):
        GitRepoReader(str(tmp_path / "missing"), settings)


def test_empty_repository_is_skipped(tmp_path: Path, settings: Settings) -> None:
    repo = TempRepo(tmp_path / "empty")
    events = read_events(GitRepoReader(str(repo.path), settings))
    assert len(events) == 1 and isinstance(events[0], Skip)


def _fast_import_history(path: Path, n: int) -> None:
    """n commits, each changing one of 50 files, written in one fast-import stream."""
    out = []
    for i in range(n):
        body = f"def f{i}():\n    return {i}\n".encode()
        when = 1_700_000_000 + i * 60
        msg = f"Change {i}\n".encode()
        out.append(b"commit refs/heads/main\n")
        out.append(f"committer Ada <ada@example.org> {when} +0000\n".encode())
        out.append(b"data %d\n%s\n" % (len(msg), msg))
        out.append(b"M 100644 inline mod_%d.py\ndata %d\n%s\n" % (i % 50, len(body), body))
    git(path, "fast-import", "--quiet", stdin=b"".join(out))


def test_two_thousand_commits_read_quickly(tmp_path: Path) -> None:
    repo = TempRepo(tmp_path / "big")
    _fast_import_history(repo.path, 2000)
    s = load_settings(home=tmp_path / "home", ingest={"max_commits": 5000})
    started = time.perf_counter()
    events = read_events(GitRepoReader(str(repo.path), s))
    elapsed = time.perf_counter() - started
    commits = [e for e in events if isinstance(e, Upsert) and e.draft.kind is SourceKind.commit]
    assert len(commits) == 2000
    assert elapsed < 30, f"2,000 commits took {elapsed:.1f} s"
    assert commits[-1].draft.authored_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_max_commits_limits_first_read(tmp_path: Path) -> None:
    repo = TempRepo(tmp_path / "hist")
    _fast_import_history(repo.path, 30)
    s = load_settings(home=tmp_path / "home", ingest={"max_commits": 7})
    events = read_events(GitRepoReader(str(repo.path), s))
    commits = [e.draft for e in events if isinstance(e, Upsert) and e.draft.kind is SourceKind.commit]
    assert [c.title for c in commits] == [f"Change {i}" for i in range(29, 22, -1)]


def test_commit_paths_with_spaces_quotes_and_renames(tmp_path: Path, settings: Settings) -> None:
    repo = TempRepo(tmp_path / "odd")
    repo.write("docs/my notes.md", "# Notes\n\n" + "".join(f"line {i}\n" for i in range(20)))
    repo.write('src/say "hi".py', "print('hi')\n")
    repo.write("src/ünï.py", "X = 1\n")
    repo.commit("Odd names")
    repo.git("mv", "docs/my notes.md", "docs/our notes.md")
    repo.write("docs/our notes.md", "# Notes\n\n" + "".join(f"line {i}\n" for i in range(20)) + "one more\n")
    repo.write('src/say "hi".py', "print('hello')\n")
    head = repo.commit("Rename notes")

    events = read_events(GitRepoReader(str(repo.path), settings))
    commit = upserts(events)[f"commit:odd:{head}"].draft
    files = {f["path"]: f for f in commit.meta["files"]}
    assert set(files) == {"docs/our notes.md", 'src/say "hi".py'}
    assert files["docs/our notes.md"]["status"] == "R"
    assert files["docs/our notes.md"]["old_path"] == "docs/my notes.md"
    assert (files["docs/our notes.md"]["added"], files["docs/our notes.md"]["deleted"]) == (1, 0)
    assert (files['src/say "hi".py']["added"], files['src/say "hi".py']["deleted"]) == (1, 1)
    assert "docs/my notes.md -> docs/our notes.md" in commit.chunks[0].text
    assert "code:odd:src/ünï.py" in upserts(events)
    first = next(e.draft for e in events if isinstance(e, Upsert) and e.draft.title == "Odd names")
    assert {f["path"] for f in first.meta["files"]} == {"docs/my notes.md", 'src/say "hi".py', "src/ünï.py"}


def test_incremental_file_that_becomes_too_large_is_removed(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path / "home", ingest={"max_file_bytes": 200})
    repo = _incremental_repo(tmp_path)
    cur = cursor_of(read_events(GitRepoReader(str(repo.path), s)))
    repo.write("keep.py", "x = 1\n" * 100)
    repo.commit("Grow keep.py")
    events = read_events(GitRepoReader(str(repo.path), s), {cur.name: cur.value})
    assert removes(events) == ["code:tools:keep.py"]
    assert "max_file_bytes" in skips(events)["tools:keep.py"]


def test_through_the_ingest_service(tmp_path: Path, settings: Settings, store: Store) -> None:
    """The reader's events, applied by the real service to a real SQLite store."""
    repo = _incremental_repo(tmp_path)
    service = IngestService(settings, store, progress=False)
    first = service.ingest([str(repo.path)])
    assert first.ok and first.added == 5  # 4 files + 1 commit
    again = service.ingest([str(repo.path)])
    assert (again.added, again.updated, again.removed) == (0, 0, 0)

    (repo.path / "gone.md").unlink()
    repo.write("keep.py", "def keep():\n    return 2\n")
    repo.commit("Drop gone.md")
    third = service.ingest([str(repo.path)])
    assert (third.added, third.updated, third.removed) == (1, 1, 1)  # the commit, keep.py, gone.md


def test_message_without_final_newline(tmp_path: Path, settings: Settings) -> None:
    repo = TempRepo(tmp_path / "raw")
    repo.write("a.py", "A = 1\n")
    repo.commit("Base")
    tree = repo.git("write-tree")
    sha = git(repo.path, "commit-tree", tree, "-p", "HEAD", stdin=b"No newline at the end")
    repo.git("update-ref", "refs/heads/main", sha)
    events = read_events(GitRepoReader(str(repo.path), settings))
    titles = [e.draft.title for e in events if isinstance(e, Upsert) and e.draft.kind is SourceKind.commit]
    assert titles == ["No newline at the end", "Base"]


def test_exclude_globs_skip_matching_paths(tmp_path: Path, settings: Settings) -> None:
    repo = TempRepo(tmp_path / "excl")
    repo.write("src/app.py", APP_PY)
    repo.write("datasets/lectures/l1.json", '{"segments": []}\n')
    repo.write("datasets/README.md", "# Data\n")
    repo.commit("add files")
    s = load_settings(home=settings.home, ingest={"exclude_globs": ["datasets/*"]})
    events = read_events(GitRepoReader(str(repo.path), s))
    files = {u.draft.path for u in upserts(events).values() if u.draft.kind != SourceKind.commit}
    assert files == {"src/app.py"}
    assert skips(events)["excl:datasets/lectures/l1.json"] == "excluded by ingest.exclude_globs"
