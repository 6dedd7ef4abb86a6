"""Real git repositories built in temp folders with the git CLI, for the git reader's tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from lorebase.ingest.records import Cursor, Event, ReadContext, Remove, ScopeComplete, Skip, Upsert

AUTHOR = "Ada Lovelace"


def git_env(date: str = "2024-03-05T10:20:30+02:00") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME=AUTHOR,
        GIT_AUTHOR_EMAIL="ada@example.org",
        GIT_COMMITTER_NAME=AUTHOR,
        GIT_COMMITTER_EMAIL="ada@example.org",
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
        GIT_CONFIG_GLOBAL="/dev/null",  # the developer's own git config must not change the repos
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def git(cwd: Path, *args: str, date: str = "2024-03-05T10:20:30+02:00", stdin: bytes | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=git_env(date), input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "replace").strip()


class TempRepo:
    """A work tree with helpers to write files and commit them."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", branch)

    def write(self, rel: str, content: str | bytes) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
        return p

    def commit(self, message: str, date: str = "2024-03-05T10:20:30+02:00", paths: Iterable[str] = ("-A",)) -> str:
        git(self.path, "add", *paths)
        git(self.path, "commit", "-q", "--allow-empty", "-m", message, date=date)
        return self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD")

    def git(self, *args: str, date: str = "2024-03-05T10:20:30+02:00") -> str:
        return git(self.path, *args, date=date)


def read_events(reader: object, cursors: dict[str, str] | None = None) -> list[Event]:
    cursors = cursors or {}
    ctx = ReadContext(cursor=lambda name: cursors.get(name), known_hash=lambda key: None)
    return list(reader.read(ctx))  # type: ignore[attr-defined]


def upserts(events: list[Event]) -> dict[str, Upsert]:
    return {e.draft.key: e for e in events if isinstance(e, Upsert)}


def skips(events: list[Event]) -> dict[str, str]:
    return {e.ref: e.reason for e in events if isinstance(e, Skip)}


def removes(events: list[Event]) -> list[str]:
    return [e.key for e in events if isinstance(e, Remove)]


def scopes(events: list[Event]) -> list[str]:
    return [e.prefix for e in events if isinstance(e, ScopeComplete)]


def cursor_of(events: list[Event]) -> Cursor:
    last = events[-1]
    assert isinstance(last, Cursor), f"last event is {last!r}, not the cursor"
    return last
