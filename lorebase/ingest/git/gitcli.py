"""A small, safe wrapper over the git command line.

Every call is an argument list (never a shell), runs with prompts disabled and a fixed locale,
and user-supplied refs or paths are validated here and passed after ``--`` or ``--end-of-options``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self
from urllib.parse import urlsplit

from lorebase.errors import InvalidInput, LorebaseError

GIT_TIMEOUT_S = 120.0  # local commands
NETWORK_TIMEOUT_S = 1800.0  # clone / fetch of a large repository

_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_HOST_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_USER_RE = re.compile(r"^[A-Za-z0-9._~][A-Za-z0-9._~-]*$")
# scp-like syntax: user@host:path (the user part is required so local paths with ':' are not URLs)
_SCP_RE = re.compile(r"^(?P<user>[^@/:]+)@(?P<host>[^@/:]+):(?P<path>.+)$")
_SCHEME_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
ALLOWED_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})


class GitError(LorebaseError):
    """A git command failed; the message carries git's own explanation."""

    code = "git_error"


def git_env() -> dict[str, str]:
    """The environment for every git process: never prompt, never page, parse-stable output."""
    env = dict(os.environ)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/true",
        SSH_ASKPASS="/bin/true",
        LC_ALL="C",
        LANG="C",
        GIT_PAGER="cat",
        PAGER="cat",
        GIT_OPTIONAL_LOCKS="0",  # reads must not take the index lock of a work tree in use
    )
    # BatchMode makes ssh fail instead of asking for a password or a host-key confirmation.
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


# Options put before every subcommand: no transport helpers such as ext::, no colour.
_BASE = ("git", "-c", "protocol.ext.allow=never", "-c", "color.ui=never", "-c", "core.quotepath=false")


def _cmd(args: Sequence[str], cwd: Path | None) -> list[str]:
    cmd = list(_BASE)
    if cwd is not None:
        cmd += ["-C", str(cwd)]
    return cmd + list(args)


def run_git(
    args: Sequence[str],
    cwd: Path | None = None,
    *,
    timeout: float = GIT_TIMEOUT_S,
    ok_codes: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run one git command to completion; raise GitError with git's stderr on an unexpected exit."""
    cmd = _cmd(args, cwd)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=git_env(), timeout=timeout, check=False)
    except FileNotFoundError as e:
        raise GitError("git is not installed or not on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise GitError(f"git {args[0]} took longer than {timeout:.0f} s") from e
    if proc.returncode not in ok_codes:
        raise GitError(f"git {args[0]} failed (exit {proc.returncode}): {_stderr(proc.stderr)}")
    return proc


def git_text(args: Sequence[str], cwd: Path | None = None, *, timeout: float = GIT_TIMEOUT_S) -> str:
    """stdout of a git command, decoded, trailing newline removed."""
    return run_git(args, cwd, timeout=timeout).stdout.decode("utf-8", "replace").rstrip("\n")


def _stderr(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text[-2000:] if text else "(no message)"


@contextmanager
def git_stream(args: Sequence[str], cwd: Path | None = None) -> Iterator[IO[bytes]]:
    """Run a git command and yield its stdout to read as it streams. The process is ended when the
    block exits early, and a failure exit after a full read raises GitError."""
    cmd = _cmd(args, cwd)
    # stderr goes to a file: a pipe nobody reads until the end could fill up and stall git.
    with tempfile.TemporaryFile() as errfile:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errfile, env=git_env())
        except FileNotFoundError as e:
            raise GitError("git is not installed or not on PATH") from e
        assert proc.stdout is not None
        finished = False
        try:
            yield proc.stdout
            finished = True
        finally:
            if not finished:
                proc.kill()
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errfile.seek(0)
            raise GitError(f"git {args[0]} failed (exit {code}): {_stderr(errfile.read())}")


class BlobReader:
    """Reads many objects through one ``git cat-file --batch`` process, one request at a time."""

    def __init__(self, git_dir: Path) -> None:
        self._proc = subprocess.Popen(
            _cmd(["cat-file", "--batch"], git_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )

    def read(self, sha: str) -> bytes:
        if not is_sha(sha):
            raise GitError(f"not an object id: {sha!r}")
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(sha.encode("ascii") + b"\n")
            stdin.flush()
        except BrokenPipeError as e:
            raise GitError("git cat-file ended unexpectedly") from e
        header = stdout.readline()
        parts = header.split()
        if len(parts) != 3:
            if header.endswith(b" missing\n"):
                raise GitError(f"object {sha} is missing from the repository")
            raise GitError(f"git cat-file gave an unexpected answer: {header[:200]!r}")
        size = int(parts[2])
        data = stdout.read(size)
        stdout.read(1)  # the newline after each object
        if len(data) != size:
            raise GitError("git cat-file ended in the middle of an object")
        return data

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        if self._proc.stdout:
            self._proc.stdout.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- validation ---------------------------------------------------------------------------------


def is_sha(value: str) -> bool:
    return bool(_SHA_RE.match(value))


def _reject_unsafe_chars(value: str, what: str) -> None:
    if not value:
        raise InvalidInput(f"{what} is empty")
    if value.startswith("-"):
        raise InvalidInput(f"{what} must not begin with '-': {value!r}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"{what} must not contain whitespace or control characters: {value!r}")


def validate_branch(name: str) -> str:
    """A branch name git would accept (``git check-ref-format --branch``), with no option or
    ``@{...}`` syntax smuggled in."""
    _reject_unsafe_chars(name, "branch name")
    if "@{" in name or len(name) > 255:
        raise InvalidInput(f"not a valid branch name: {name!r}")
    try:
        run_git(["check-ref-format", "--branch", name])
    except GitError:
        raise InvalidInput(f"not a valid branch name: {name!r}") from None
    return name


@dataclass(frozen=True)
class CloneUrl:
    """A validated clone URL and the parts lorebase uses from it."""

    url: str
    scheme: str  # https, http, ssh, git, file, or "scp" for user@host:path
    host: str  # lower-case; "" for file://
    path: str  # the repository path on the host, without leading "/" or trailing ".git"

    @property
    def display(self) -> str:
        """The URL without any credentials, for labels and logs."""
        if self.scheme in ("https", "http"):
            parts = urlsplit(self.url)
            if parts.username or parts.password:
                netloc = parts.hostname or ""
                if parts.port:
                    netloc += f":{parts.port}"
                return parts._replace(netloc=netloc).geturl()
        return self.url

    @property
    def name(self) -> str:
        """Last path component, as a plain ``git clone`` would name the folder."""
        return self.path.rsplit("/", 1)[-1] or "repo"

    def clone_dir_name(self) -> str:
        """A folder name for ``repos_dir``: host and path, made filesystem-safe."""
        host = self.host or "local"
        raw = [host, *[p for p in self.path.split("/") if p]]
        safe = [re.sub(r"[^A-Za-z0-9._-]", "-", p).lstrip(".") or "_" for p in raw]
        name = "__".join(safe)
        # Local paths are long and may collide once flattened; a short hash keeps them apart.
        if self.scheme == "file" or safe != raw or len(name) > 120:
            digest = hashlib.sha256(f"{host}/{self.path}".lower().encode()).hexdigest()[:10]
            name = f"{'__'.join(safe[-2:])[:100]}-{digest}"
        return name


def looks_like_git_url(spec: str) -> bool:
    """True when ``spec`` is meant as a remote (scheme://, transport::address or user@host:path)
    rather than a local path. It says nothing about validity: see :func:`validate_clone_url`."""
    return bool(_SCHEME_RE.match(spec)) or "::" in spec or bool(_SCP_RE.match(spec))


def _check_repo_path(path: str, url: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise InvalidInput(f"URL names no repository: {url!r}")
    if any(p in (".", "..") or p.startswith("-") for p in parts):
        raise InvalidInput(f"URL path must not contain '.', '..' or parts beginning with '-': {url!r}")
    joined = "/".join(parts)
    return joined.removesuffix(".git")


def validate_clone_url(url: str) -> CloneUrl:
    """Accept only https/http/ssh/git/file URLs and user@host:path, with nothing git or ssh could
    take as an option or a transport helper. Raises InvalidInput otherwise."""
    _reject_unsafe_chars(url, "repository URL")
    if len(url) > 2048:
        raise InvalidInput("repository URL is too long")
    if "::" in url:
        raise InvalidInput(f"transport-helper URLs (such as ext::) are not allowed: {url!r}")
    m = _SCHEME_RE.match(url)
    if m is None:
        scp = _SCP_RE.match(url)
        if scp is None:
            raise InvalidInput(f"not a clone URL (use https://, ssh://, git@host:owner/repo or file://): {url!r}")
        user, host, path = scp["user"], scp["host"], scp["path"]
        if not _USER_RE.match(user) or not _HOST_RE.match(host):
            raise InvalidInput(f"invalid user or host in {url!r}")
        if path.startswith("-"):
            raise InvalidInput(f"repository path must not begin with '-': {url!r}")
        return CloneUrl(url, "scp", host.lower(), _check_repo_path(path, url))
    scheme = m["scheme"].lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidInput(f"unsupported URL scheme {scheme!r} (allowed: {', '.join(sorted(ALLOWED_SCHEMES))})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"malformed URL {url!r}: {e}") from None
    if parts.query or parts.fragment:
        raise InvalidInput(f"a clone URL has no query or fragment: {url!r}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"file:// URLs must name a local path: {url!r}")
        if not parts.path.startswith("/"):
            raise InvalidInput(f"file:// URL needs an absolute path: {url!r}")
        return CloneUrl(url, "file", "", _check_repo_path(parts.path, url))
    host = parts.hostname or ""
    if not _HOST_RE.match(host):
        raise InvalidInput(f"invalid host in {url!r}")
    if parts.username is not None and not _USER_RE.match(parts.username):
        raise InvalidInput(f"invalid user name in {url!r}")
    del port  # validated above by reading it
    return CloneUrl(url, scheme, host.lower(), _check_repo_path(parts.path, url))


def github_repo_of(url: str) -> str | None:
    """``owner/name`` when ``url`` points at a repository on github.com (https or ssh), else None."""
    try:
        parsed = validate_clone_url(url)
    except InvalidInput:
        return None
    if parsed.host not in ("github.com", "www.github.com"):
        return None
    parts = parsed.path.split("/")
    return "/".join(parts) if len(parts) == 2 else None
