"""Sources sent through the API: every way of writing a local path is resolved to the real absolute
path before the ingest.api_roots check, and the server's working directory never matters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lorebase.errors import InvalidInput
from lorebase.ingest.resolve import confine_to_roots, is_local


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A root with a lecture folder, a secret folder beside the root, and the process's working
    directory inside the root (where a careless check would resolve relative paths)."""
    root = tmp_path / "inbox"
    (root / "week1").mkdir(parents=True)
    (root / "week1" / "a.vtt").write_text("WEBVTT\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "keys.txt").write_text("not for the API")
    monkeypatch.chdir(root / "week1")
    return root, secret


@pytest.mark.parametrize("form", [
    "{secret}", "{secret}/keys.txt", "file://{secret}", "file://localhost{secret}", "FILE://LOCALHOST{secret}",
    "file:{secret}", "../../secret", "week1/../../secret", "{root}/../secret", "{root}/week1/../../secret",
    "file://{root}/../secret", "file://localhost{root}/week1/../../secret", "~", "~/", "/", "/etc/passwd",
])
def test_every_form_of_a_path_outside_the_roots_is_refused(tree: tuple[Path, Path], form: str) -> None:
    root, secret = tree
    spec = form.format(root=root, secret=secret)
    with pytest.raises(InvalidInput, match="api_roots"):
        confine_to_roots(spec, [root])


def test_a_symlink_inside_a_root_that_leads_out_is_refused(tree: tuple[Path, Path]) -> None:
    root, secret = tree
    (root / "shortcut").symlink_to(secret)
    for spec in (str(root / "shortcut"), "shortcut", f"file://localhost{root}/shortcut/keys.txt"):
        with pytest.raises(InvalidInput, match="api_roots"):
            confine_to_roots(spec, [root])


@pytest.mark.parametrize(("form", "want"), [
    ("{root}/week1", "{root}/week1"),
    ("{root}/week1/../week1/a.vtt", "{root}/week1/a.vtt"),
    ("week1", "{root}/week1"),  # relative to the root, not to the working directory (root/week1)
    ("./week1/a.vtt", "{root}/week1/a.vtt"),
    ("file://{root}/week1", "file://{root}/week1"),
    ("file://localhost{root}/week1", "file://{root}/week1"),
    ("file:{root}/week1", "{root}/week1"),
])
def test_paths_inside_a_root_become_real_absolute_paths(tree: tuple[Path, Path], form: str, want: str) -> None:
    root, _ = tree
    real = root.resolve()
    assert confine_to_roots(form.format(root=root), [root]) == want.format(root=real)


def test_a_relative_path_is_found_under_whichever_root_holds_it(tree: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = tree
    other = tmp_path / "other"
    (other / "week9").mkdir(parents=True)
    assert confine_to_roots("week9", [root, other]) == str((other / "week9").resolve())
    assert confine_to_roots("missing", [root, other]) == str(root.resolve() / "missing")  # the reader says it is missing


def test_home_is_the_server_users_and_checked_like_any_path(tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = tree
    monkeypatch.setenv("HOME", str(root))
    assert confine_to_roots("~/week1", [root]) == str(root.resolve() / "week1")
    with pytest.raises(InvalidInput, match="home folder"):
        confine_to_roots("~no-such-user-here/x", [root])


@pytest.mark.parametrize("spec", [
    "file://otherhost/{root}", "file://{root}/week1%2F..%2F..%2Fsecret", "file://{root}/week1?x=1", "file://{root}#frag",
])
def test_file_urls_that_are_not_plain_local_paths_are_refused(tree: tuple[Path, Path], spec: str) -> None:
    root, _ = tree
    with pytest.raises(InvalidInput):
        confine_to_roots(spec.format(root=root), [root])


def test_no_roots_means_no_local_paths_but_remote_sources_pass(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(InvalidInput, match="none configured"):
        confine_to_roots(str(root), [])
    for remote in ("github:o/r", "https://example.org/o/r.git", "git@example.org:o/r.git", "ssh://example.org/o/r",
                   "https://example.org/talks/lec1.mp4"):
        assert not is_local(remote)
        assert confine_to_roots(remote, []) == remote


def test_the_working_directory_does_not_change_the_answer(tree: tuple[Path, Path], tmp_path: Path) -> None:
    root, secret = tree
    first = confine_to_roots("week1", [root])
    os.chdir(secret)
    assert confine_to_roots("week1", [root]) == first
    assert confine_to_roots("keys.txt", [root]) == str(root.resolve() / "keys.txt")  # not secret/keys.txt
