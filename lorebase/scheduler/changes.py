"""The sync step: what changed in a tracked source since its last ingest, found without ingesting.

- ``git`` (a clone URL or a local repository): a clone URL's copy in the data home is fetched (the
  same copy the ingest then reads); the branch head is compared with the git reader's own cursor.
  A local repository is read as it is: lorebase never fetches into someone's work tree.
- ``files`` (a folder of transcripts or recordings, one such file, a GitHub export file): each
  file's size and modification time, compared with the listing saved after the last clean ingest.
- ``github`` (issues and pull requests) and ``recording`` (an http(s) URL of one): always checked;
  their readers ask only for what changed (GitHub's ``since`` cursor; the recording's ETag).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lorebase.errors import InvalidInput
from lorebase.settings import Settings, TrackedSourceSettings
from lorebase.store import Store
from lorebase.store.models import SyncCursor, utcnow

Kind = Literal["git", "files", "github", "recording"]
LISTING_CURSOR = "scheduler:files:"  # + tracked source name: the file listing of the last clean ingest


@dataclass
class Change:
    source: str
    kind: Kind
    changed: bool
    counts: dict[str, Any] = field(default_factory=dict)
    listing: str | None = None  # files: saved once the ingest of this change went through cleanly

    def as_counts(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "changed": self.changed, **self.counts}


def source_kind(spec: str) -> Kind:
    """The same reading of a spec as lorebase.ingest.resolve.reader_for, in four kinds."""
    from lorebase.ingest.git.gitcli import looks_like_git_url
    from lorebase.ingest.transcripts.media_download import is_media_url

    if spec.startswith("github:"):
        return "github"
    if is_media_url(spec):
        return "recording"
    if looks_like_git_url(spec):
        return "git"
    path = Path(spec).expanduser()
    if path.is_dir() and (path / ".git").exists():
        return "git"
    return "files"


def probe(source: TrackedSourceSettings, settings: Settings, store: Store) -> Change:
    kind = source_kind(source.spec)
    if kind == "git":
        return _probe_git(source, settings, store)
    if kind == "files":
        return _probe_files(source, store)
    counts: dict[str, Any] = {}
    if kind == "github":
        counts["since"] = _cursor(store, "github:" + source.spec.removeprefix("github:"))
    return Change(source.name, kind, True, counts)


def save_listing(store: Store, change: Change) -> None:
    if change.listing is not None:
        with store.session() as s:
            s.merge(SyncCursor(name=LISTING_CURSOR + change.source, value=change.listing, updated_at=utcnow()))


def forget_listing(store: Store, name: str) -> None:
    with store.session() as s:
        row = s.get(SyncCursor, LISTING_CURSOR + name)
        if row is not None:
            s.delete(row)


def _cursor(store: Store, name: str) -> str | None:
    with store.session() as s:
        row = s.get(SyncCursor, name)
        return row.value if row is not None else None


# --- git --------------------------------------------------------------------------------------------


def _probe_git(source: TrackedSourceSettings, settings: Settings, store: Store) -> Change:
    from lorebase.ingest.git.gitcli import is_sha, run_git
    from lorebase.ingest.git.repo import GitRepoReader
    from lorebase.ingest.git.tree import diff_names, ls_tree

    reader = GitRepoReader(source.spec, settings, branch=source.branch)
    # The reader's own opening: it fetches a clone URL, and names the repository and branch exactly
    # as its cursor does, so "changed" here means "the ingest will read something".
    repo = reader._open()
    if repo is None:
        return Change(source.name, "git", False, {"empty": True})
    old = _cursor(store, f"git:{repo.name}:{repo.branch}")
    counts: dict[str, Any] = {"repo": repo.name, "branch": repo.branch, "head": repo.head}
    if old == repo.head:
        return Change(source.name, "git", False, counts)
    ancestor = bool(old) and is_sha(old or "") and run_git(
        ["merge-base", "--is-ancestor", old or "", repo.head], repo.git_dir, ok_codes=(0, 1, 128)
    ).returncode == 0
    if ancestor:
        assert old is not None
        counts["commits"] = int(run_git(["rev-list", "--count", f"{old}..{repo.head}"], repo.git_dir).stdout.decode().strip())
        counts["files"] = len(diff_names(repo.git_dir, old, repo.head))
    else:  # first read, or history rewritten: the whole tree
        counts["commits"] = int(run_git(["rev-list", "--count", repo.head], repo.git_dir).stdout.decode().strip())
        counts["files"] = sum(1 for e in ls_tree(repo.git_dir, repo.head) if e.type == "blob")
        counts["full"] = True
    return Change(source.name, "git", True, counts)


# --- files ------------------------------------------------------------------------------------------


def listing_of(root: Path) -> dict[str, str]:
    """``{relative path: "size:mtime_ns"}`` of the regular files under root (or of root itself),
    hidden files and folders and symbolic links left out, as the transcript reader leaves them."""
    if root.is_file():
        st = root.stat()
        return {root.name: f"{st.st_size}:{st.st_mtime_ns}"}
    if not root.is_dir():
        raise InvalidInput(f"{root}: no such file or folder")
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:  # gone while we looked: the next probe sees it gone
                continue
            if not path.is_symlink():
                out[path.relative_to(root).as_posix()] = f"{st.st_size}:{st.st_mtime_ns}"
    return out


def _probe_files(source: TrackedSourceSettings, store: Store) -> Change:
    now = listing_of(Path(source.spec).expanduser())
    saved = _cursor(store, LISTING_CURSOR + source.name)
    before: dict[str, str] = json.loads(saved) if saved else {}
    new = sum(1 for k in now if k not in before)
    deleted = sum(1 for k in before if k not in now)
    modified = sum(1 for k, v in now.items() if k in before and before[k] != v)
    counts = {"files": len(now), "new": new, "modified": modified, "deleted": deleted}
    changed = saved is None or bool(new or deleted or modified)
    return Change(source.name, "files", changed, counts, json.dumps(now, sort_keys=True, separators=(",", ":")))
