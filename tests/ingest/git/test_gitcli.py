from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import InvalidInput
from lorebase.ingest.git.gitcli import (
    BlobReader,
    GitError,
    git_env,
    git_stream,
    github_repo_of,
    looks_like_git_url,
    run_git,
    validate_branch,
    validate_clone_url,
)
from tests.ingest.gitrepo_helpers import TempRepo, git


@pytest.mark.parametrize(
    ("url", "scheme", "host", "path"),
    [
        ("https://github.com/acme/widgets.git", "https", "github.com", "acme/widgets"),
        ("https://GitHub.com/acme/widgets/", "https", "github.com", "acme/widgets"),
        ("ssh://git@github.com:22/acme/widgets.git", "ssh", "github.com", "acme/widgets"),
        ("git@github.com:acme/widgets.git", "scp", "github.com", "acme/widgets"),
        ("git@gitlab.example.org:group/sub/proj", "scp", "gitlab.example.org", "group/sub/proj"),
        ("file:///srv/git/tools.git", "file", "", "srv/git/tools"),
    ],
)
def test_valid_clone_urls_parse(url: str, scheme: str, host: str, path: str) -> None:
    parsed = validate_clone_url(url)
    assert (parsed.scheme, parsed.host, parsed.path) == (scheme, host, path)
    assert looks_like_git_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "--upload-pack=touch /tmp/x",
        "-oProxyCommand=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
        "ext::sh",
        "fd::17",
        "ssh://-oProxyCommand=touch/x/repo",
        "ssh://git@-oProxyCommand=x/repo",
        "git@-oProxyCommand=x:acme/repo",
        "git@github.com:-acme/repo",
        "ftp://example.org/repo.git",
        "javascript://x/y",
        "https://github.com/acme/wid gets",
        "https://github.com/acme/widgets\n",
        "https://github.com/acme/\x00widgets",
        "https://github.com/",
        "https://github.com/acme/../etc",
        "https://github.com/acme/widgets?x=1",
        "file://remote-host/srv/repo.git",
        "file:///srv/../etc/repo",
        "",
    ],
)
def test_unsafe_or_unknown_urls_are_rejected(url: str) -> None:
    with pytest.raises(InvalidInput):
        validate_clone_url(url)


def test_display_url_drops_credentials() -> None:
    parsed = validate_clone_url("https://user:s3cret@github.com/acme/widgets.git")
    assert "s3cret" not in parsed.display and "user" not in parsed.display
    assert parsed.display == "https://github.com/acme/widgets.git"


def test_looks_like_git_url_tells_paths_from_remotes() -> None:
    assert not looks_like_git_url("./widgets")
    assert not looks_like_git_url("/srv/widgets")
    assert not looks_like_git_url("notes/lecture:1.vtt")
    assert looks_like_git_url("ext::sh -c x")  # so the URL validator, not the path code, rejects it
    assert looks_like_git_url("git@host:owner/repo")


def test_github_repo_of() -> None:
    assert github_repo_of("https://github.com/acme/widgets.git") == "acme/widgets"
    assert github_repo_of("git@github.com:acme/widgets.git") == "acme/widgets"
    assert github_repo_of("ssh://git@github.com/acme/widgets") == "acme/widgets"
    assert github_repo_of("https://gitlab.com/acme/widgets.git") is None
    assert github_repo_of("https://github.com/acme/widgets/extra") is None
    assert github_repo_of("/local/path") is None


def test_clone_dir_names_are_safe_and_distinct() -> None:
    a = validate_clone_url("https://github.com/acme/widgets.git").clone_dir_name()
    b = validate_clone_url("git@github.com:acme/widgets").clone_dir_name()
    c = validate_clone_url("https://github.com/acme/gadgets").clone_dir_name()
    d = validate_clone_url("file:///one/x/repo.git").clone_dir_name()
    e = validate_clone_url("file:///two/x/repo.git").clone_dir_name()
    assert a == b  # one repository, one clone, whichever protocol names it
    assert len({a, c, d, e}) == 4
    for name in (a, c, d, e):
        assert "/" not in name and not name.startswith((".", "-")) and ".." not in name


@pytest.mark.parametrize("name", ["main", "feature/login", "release-1.2", "ümlaut"])
def test_valid_branch_names(name: str) -> None:
    assert validate_branch(name) == name


@pytest.mark.parametrize("name", ["--help", "-b", "a;rm -rf /", "a b", "a..b", "@{-1}", "x@{u}", "HEAD^", "a:b", "", "end.lock"])
def test_invalid_branch_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_branch(name)


def test_malicious_inputs_run_no_program(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no git on PATH, anything that ran git would fail with GitError: these fail before."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for url in ("--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/x", "ssh://-oProxyCommand=x/y"):
        with pytest.raises(InvalidInput):
            validate_clone_url(url)
    for name in ("--help", "a;rm -rf /"):
        with pytest.raises(InvalidInput):
            validate_branch(name)
    with pytest.raises(GitError, match="not installed"):
        run_git(["--version"])  # the check above is meaningful: git really is unreachable here


def test_git_environment_never_prompts() -> None:
    env = git_env()
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"] == "/bin/true"
    assert env["LC_ALL"] == "C"


def test_run_git_reports_git_message(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        run_git(["rev-parse", "HEAD"], tmp_path)


def test_blob_reader_returns_exact_bytes(tmp_path: Path) -> None:
    repo = TempRepo(tmp_path / "r")
    repo.write("a.txt", "hello\n")
    repo.write("b.bin", b"\x00\x01\xff\n\n")
    repo.commit("add")
    sha_a = git(repo.path, "rev-parse", "HEAD:a.txt")
    sha_b = git(repo.path, "rev-parse", "HEAD:b.bin")
    with BlobReader(repo.path) as blobs:
        assert blobs.read(sha_b) == b"\x00\x01\xff\n\n"
        assert blobs.read(sha_a) == b"hello\n"
        with pytest.raises(GitError, match="missing"):
            blobs.read("0" * 40)
        with pytest.raises(GitError):
            blobs.read("HEAD")  # only object ids, never revision syntax


def test_git_stream_reads_and_reports_failure(tmp_path: Path) -> None:
    repo = TempRepo(tmp_path / "r")
    repo.write("a.txt", "x\n")
    head = repo.commit("one")
    with git_stream(["rev-list", head], repo.path) as out:
        assert out.read().decode().split() == [head]
    with pytest.raises(GitError, match="rev-list"), git_stream(["rev-list", "--no-such-option"], repo.path) as out:
        out.read()
