"""Reads a git repository (a local work tree or a clone URL) into code, doc and commit sources.

Files are read as they are in the commit being ingested (the head of the branch), listed with
``git ls-tree`` so ignored and untracked files never enter, and read in bulk through one
``git cat-file --batch``. With a cursor from the last read that is an ancestor of the new head,
only what changed since is read; otherwise the whole tree is scanned and ScopeComplete lets the
service drop what is gone.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from lorebase.errors import InvalidInput
from lorebase.ingest.files.code_chunks import CONFIG_LANGUAGES, chunk_code
from lorebase.ingest.files.doc_chunks import chunk_doc
from lorebase.ingest.files.spans import text_lines
from lorebase.ingest.files.text_sniff import binary_reason
from lorebase.ingest.git.commits import commit_draft, read_commits
from lorebase.ingest.git.gitcli import (
    NETWORK_TIMEOUT_S,
    BlobReader,
    CloneUrl,
    GitError,
    git_text,
    github_repo_of,
    is_sha,
    looks_like_git_url,
    run_git,
    validate_branch,
    validate_clone_url,
)
from lorebase.ingest.git.tree import (
    TreeEntry,
    binary_by_name,
    decode_text,
    diff_names,
    kind_of,
    leave_out_of_diffs,
    ls_tree,
    safe_relative,
    shebang_language,
    vendored,
)
from lorebase.ingest.records import Cursor, Event, Fail, ReadContext, Remove, ScopeComplete, Skip, SourceDraft, Upsert
from lorebase.settings import Settings
from lorebase.store.models import SourceKind

__all__ = ["GitRepoReader", "looks_like_git_url"]

log = logging.getLogger(__name__)

CONFIG_MAX_BYTES = 100_000  # config and data files (json, yaml, ...) larger than this are skipped
BINARY_SNIFF_BYTES = 8192

@dataclass(frozen=True)
class _Repo:
    git_dir: Path  # where git commands run
    name: str  # owner/name on GitHub, else the folder name
    web_base: str | None  # https://github.com/owner/name
    branch: str
    head: str  # the commit being ingested


class GitRepoReader:
    """A local git work tree or a clone URL, read as code, doc and commit sources."""

    def __init__(self, location: str, settings: Settings, branch: str | None = None) -> None:
        self.settings = settings
        self.branch = validate_branch(branch) if branch is not None else None
        self.url: CloneUrl | None = None
        self.path: Path | None = None
        if location.startswith("-"):
            raise InvalidInput(f"repository location must not begin with '-': {location!r}")
        if looks_like_git_url(location):
            self.url = validate_clone_url(location)
            self.label = f"git repo {self.url.display}"
        else:
            path = Path(location).expanduser()
            if not path.is_dir():
                raise InvalidInput(f"{location!r} is neither a directory nor a clone URL")
            self.path = path.resolve()
            try:
                run_git(["rev-parse", "--git-dir"], self.path)
            except GitError:
                raise InvalidInput(f"{location!r} is not a git repository") from None
            self.label = f"git repo {location}"

    # --- reading --------------------------------------------------------------------------------

    def read(self, ctx: ReadContext) -> Iterator[Event]:
        try:
            repo = self._open()
        except GitError as e:
            yield Fail(self.label, str(e))
            return
        if repo is None:
            yield Skip(self.label, "the repository has no commits on this branch yet")
            return
        cursor_name = f"git:{repo.name}:{repo.branch}"
        old = ctx.cursor(cursor_name)
        if old == repo.head:
            yield Cursor(cursor_name, repo.head)
            return
        if old and self._is_ancestor(repo, old):
            yield from self._changed_files(repo, old)
            revision = f"{old}..{repo.head}"
        else:
            yield from self._all_files(repo)
            revision = repo.head
        cfg = self.settings.ingest
        for rec in read_commits(repo.git_dir, revision, cfg.max_commits, leave_out_of_diffs, cfg.max_diff_lines):
            yield Upsert(commit_draft(rec, repo.name, repo.web_base, cfg.max_diff_lines, cfg.max_chunk_lines))
        yield Cursor(cursor_name, repo.head)

    def _all_files(self, repo: _Repo) -> Iterator[Event]:
        with BlobReader(repo.git_dir) as blobs:
            for entry in ls_tree(repo.git_dir, repo.head):
                yield from self._file_events(repo, entry, blobs, incremental=False)
        yield ScopeComplete(f"code:{repo.name}:")
        yield ScopeComplete(f"doc:{repo.name}:")

    def _changed_files(self, repo: _Repo, old: str) -> Iterator[Event]:
        changes = diff_names(repo.git_dir, old, repo.head)
        if not changes:
            return
        entries = {e.path: e for e in ls_tree(repo.git_dir, repo.head)}
        with BlobReader(repo.git_dir) as blobs:
            for status, old_path, path in changes:
                if status == "D":
                    if (key := self._key(repo, path)) is not None:
                        yield Remove(key)
                    continue
                if status == "R" and old_path is not None and (key := self._key(repo, old_path)) is not None:
                    yield Remove(key)
                entry = entries.get(path)
                if entry is not None:
                    yield from self._file_events(repo, entry, blobs, incremental=True)

    def _key(self, repo: _Repo, path: str) -> str | None:
        """The key a path's source would have had (extensionless files: as a script)."""
        kind = kind_of(path)
        if kind is None and not PurePosixPath(path).suffix:
            kind = (SourceKind.code, "")
        return f"{kind[0].value}:{repo.name}:{path}" if kind else None

    def _file_events(self, repo: _Repo, entry: TreeEntry, blobs: BlobReader, incremental: bool) -> Iterator[Event]:
        path = entry.path
        ref = f"{repo.name}:{path}"
        kind = kind_of(path)
        # Extensionless files may be scripts: read them and look for a #! line.
        sniff = kind is None and not PurePosixPath(path).suffix
        if sniff:
            kind = (SourceKind.code, "")
        key = f"{kind[0].value}:{repo.name}:{path}" if kind else None
        reason = self._skip_reason(entry, kind)
        data, text, encoding = b"", "", "utf-8"
        if reason is None:
            data = blobs.read(entry.sha)
            if b"\0" in data[:BINARY_SNIFF_BYTES]:
                reason = "binary content"
        if reason is None:
            text, encoding = decode_text(data)
            if not text.strip():
                reason = "empty file"
            else:
                reason = binary_reason(text)
        if reason is None and sniff:
            lang = shebang_language(text)
            if lang is None:
                reason = "not a recognised code or documentation file"
            else:
                kind = (SourceKind.code, lang)
        if reason is not None:
            if incremental and key is not None:
                yield Remove(key)  # it may have been ingested before it became skippable
            yield Skip(ref, reason)
            return
        assert kind is not None and key is not None
        source_kind, lang = kind
        max_lines = self.settings.ingest.max_chunk_lines
        try:
            if source_kind is SourceKind.code:
                chunks = chunk_code(text, path, lang, max_lines)
            else:
                chunks = chunk_doc(text, lang, max_lines)
        except Exception as e:  # a chunker bug must not stop the rest of the repository
            log.exception("chunking %s failed", ref)
            yield Fail(ref, f"could not cut into chunks: {type(e).__name__}: {e}")
            return
        meta: dict[str, object] = {"language": lang, "size": len(data)}
        if encoding != "utf-8":
            meta["encoding"] = encoding
        url = f"{repo.web_base}/blob/{repo.head}/{quote(path)}" if repo.web_base else None
        yield Upsert(
            SourceDraft(
                key=key, kind=source_kind, title=path, text=text, chunks=chunks, repo=repo.name, path=path,
                commit=repo.head, start_line=1, end_line=len(text_lines(text)), url=url, meta=meta,
            )
        )  # fmt: skip

    def _skip_reason(self, entry: TreeEntry, kind: tuple[SourceKind, str] | None) -> str | None:
        if not safe_relative(entry.path):
            return "unsafe path"
        if any(fnmatch.fnmatchcase(entry.path, pattern) for pattern in self.settings.ingest.exclude_globs):
            return "excluded by ingest.exclude_globs"
        if entry.mode == "120000":
            return "symbolic link"
        if entry.type == "commit" or entry.mode == "160000":
            return "submodule"
        if entry.type != "blob":
            return f"not a file ({entry.type})"
        if vendored(entry.path):
            return "vendored or generated path"
        if binary_by_name(entry.path):
            return "binary file type"
        if kind is None:
            return "not a recognised code or documentation file"
        limit = self.settings.ingest.max_file_bytes
        if entry.size is not None and entry.size > limit:
            return f"larger than ingest.max_file_bytes ({entry.size} > {limit} bytes)"
        if kind[1] in CONFIG_LANGUAGES and entry.size is not None and entry.size > CONFIG_MAX_BYTES:
            return f"data or config file larger than {CONFIG_MAX_BYTES} bytes"
        return None

    # --- opening --------------------------------------------------------------------------------

    def _open(self) -> _Repo | None:
        if self.url is not None:
            git_dir = self._clone_or_fetch(self.url)
            origin: str | None = self.url.url
            fallback_name = self.url.name
            head, branch = self._remote_head(git_dir)
        else:
            assert self.path is not None
            git_dir = self.path
            top = run_git(["rev-parse", "--show-toplevel"], git_dir, ok_codes=(0, 128)).stdout.decode().strip()
            folder = Path(top) if top else git_dir  # empty for a bare repository
            fallback_name = folder.name.removesuffix(".git")
            origin = git_text(["config", "--get", "remote.origin.url"], git_dir) if self._has_origin(git_dir) else None
            head, branch = self._local_head(git_dir)
        if head is None:
            return None
        gh = github_repo_of(origin) if origin else None
        return _Repo(
            git_dir=git_dir,
            name=gh or fallback_name,
            web_base=f"https://github.com/{gh}" if gh else None,
            branch=branch,
            head=head,
        )

    @staticmethod
    def _has_origin(git_dir: Path) -> bool:
        return run_git(["config", "--get", "remote.origin.url"], git_dir, ok_codes=(0, 1)).returncode == 0

    @staticmethod
    def _resolve(git_dir: Path, ref: str) -> str | None:
        proc = run_git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], git_dir, ok_codes=(0, 1, 128)
        )
        sha = proc.stdout.decode().strip()
        return sha if proc.returncode == 0 and is_sha(sha) else None

    def _local_head(self, git_dir: Path) -> tuple[str | None, str]:
        if self.branch is not None:
            for ref in (f"refs/heads/{self.branch}", f"refs/remotes/origin/{self.branch}"):
                if (sha := self._resolve(git_dir, ref)) is not None:
                    return sha, self.branch
            if self._resolve(git_dir, "HEAD") is None:
                return None, self.branch
            raise GitError(f"branch {self.branch!r} not found in {git_dir}")
        proc = run_git(["symbolic-ref", "--quiet", "--short", "HEAD"], git_dir, ok_codes=(0, 1, 128))
        branch = proc.stdout.decode().strip() if proc.returncode == 0 else "HEAD"
        return self._resolve(git_dir, "HEAD"), branch or "HEAD"

    def _remote_head(self, git_dir: Path) -> tuple[str | None, str]:
        if self.branch is not None:
            sha = self._resolve(git_dir, f"refs/remotes/origin/{self.branch}")
            if sha is None:
                raise GitError(f"branch {self.branch!r} not found at {self.url.display if self.url else git_dir}")
            return sha, self.branch
        for attempt in range(2):
            proc = run_git(["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"], git_dir, ok_codes=(0, 1, 128))
            target = proc.stdout.decode().strip()
            if proc.returncode == 0 and target.startswith("refs/remotes/origin/"):
                return self._resolve(git_dir, target), target.removeprefix("refs/remotes/origin/")
            if attempt == 0:
                # Old clones or remotes that changed their default branch: ask the remote again.
                run_git(["remote", "set-head", "origin", "--auto"], git_dir, timeout=NETWORK_TIMEOUT_S, ok_codes=(0, 1, 128))
        return None, "HEAD"  # an empty remote

    def _clone_or_fetch(self, url: CloneUrl) -> Path:
        try:
            return self._clone_or_fetch_raw(url)
        except GitError as e:
            # git may echo the URL; keep any credentials in it out of reports and logs.
            raise GitError(str(e).replace(url.url, url.display)) from None

    def _clone_or_fetch_raw(self, url: CloneUrl) -> Path:
        repos = self.settings.repos_dir
        repos.mkdir(parents=True, exist_ok=True)
        dest = repos / url.clone_dir_name()
        if (dest / ".git").is_dir():
            run_git(["config", "remote.origin.url", url.url], dest)
            run_git(["fetch", "--prune", "--quiet", "origin"], dest, timeout=NETWORK_TIMEOUT_S)
            return dest
        if dest.exists():
            raise GitError(f"{dest} exists but is not a clone; move it away to clone {url.display} there")
        partial = repos / f".{dest.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        try:
            # --no-checkout: files are read from git objects, so no work tree is written.
            run_git(["clone", "--no-checkout", "--quiet", "--", url.url, str(partial)], timeout=NETWORK_TIMEOUT_S)
            partial.rename(dest)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        return dest

    @staticmethod
    def _is_ancestor(repo: _Repo, old: str) -> bool:
        if not is_sha(old):
            return False
        try:
            proc = run_git(["merge-base", "--is-ancestor", old, repo.head], repo.git_dir, ok_codes=(0, 1))
        except GitError:  # unknown object: history was rewritten and collected
            return False
        return proc.returncode == 0
