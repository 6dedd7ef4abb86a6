"""GitHub issue and pull-request threads as sources, whether read from the API or from an export.

Both readers bring a thread into one shape, :class:`Thread`: the REST issue object (as listed by
``GET /repos/{owner}/{repo}/issues``), its comments, and for a pull request its review comments,
reviews and the REST pull object (merge state). :mod:`lorebase.ingest.github.thread_drafts` turns
that into a source draft.

Links between issues and pull requests come from GitHub's closing keywords (``Fixes #12``,
``closes owner/repo#12``, ``resolves https://github.com/owner/repo/issues/12``), which GitHub
honours in a pull request's description: a pull request lists what it ``closes``, and an issue
lists the pull requests that close it (``closed_by``) when the reader saw them in the same read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.store.models import SourceKind

_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# owner/name inside a github.com (or GitHub Enterprise) web URL or an API URL.
_URL_REPO_RE = re.compile(r"^https?://[^/\s]+/(?:api/v3/)?(?:repos/)?([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/(?:issues|pull|pulls)/\d+")
_CLOSING_RE = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b:?\s+"
    r"(?:(?P<repo>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)?#(?P<n>\d+)\b"
    r"|https?://[^\s/]+/(?P<urepo>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/(?:issues|pull)/(?P<un>\d+)\b)",
    re.IGNORECASE,
)


class ThreadError(ValueError):
    """The data cannot make a thread (no number, a field of the wrong type). Readers turn it into a Fail."""


def validate_repo(repo: str) -> str:
    """``owner/name`` as GitHub allows them, or InvalidInput."""
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or repo.split("/")[1] in (".", ".."):
        raise InvalidInput(f"{repo!r} is not a GitHub repository name: expected OWNER/NAME")
    return repo


def repo_from_url(url: Any) -> str | None:
    """``owner/name`` from an issue or pull-request URL (web or API), else None."""
    if not isinstance(url, str):
        return None
    m = _URL_REPO_RE.match(url)
    return m.group(1) if m else None


def closing_refs(text: str | None, repo: str) -> list[int]:
    """Numbers in ``repo`` that ``text`` closes with a GitHub closing keyword, in order, without repeats."""
    out: list[int] = []
    for m in _CLOSING_RE.finditer(text or ""):
        other = m.group("repo") or m.group("urepo")
        if other and other.lower() != repo.lower():
            continue
        n = int(m.group("n") or m.group("un"))
        if n not in out:
            out.append(n)
    return out


def parse_time(value: Any, what: str = "time") -> datetime | None:
    """A GitHub timestamp (``2024-03-01T10:00:00Z``) as an aware UTC datetime; None when absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ThreadError(f"{what} {value!r} is not an ISO 8601 timestamp")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ThreadError(f"{what} {value!r} is not an ISO 8601 timestamp") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


@dataclass(frozen=True)
class Closer:
    """A pull request whose description closes an issue, with what is known of its merge."""

    number: int
    merged: bool | None = None
    merge_commit_sha: str | None = None
    state: str | None = None  # "open" or "closed"; a closed, unmerged pull request closes nothing


@dataclass
class Thread:
    """One issue or pull request with its discussion, as REST JSON objects.

    ``pull`` is the REST pull object (``GET /pulls/{n}``) when known; a pull request is recognised
    by it or by the issue object's ``pull_request`` key.
    """

    repo: str
    issue: dict[str, Any]
    comments: list[dict[str, Any]] | None = None  # None: not fetched; the issue's count still shows
    review_comments: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    pull: dict[str, Any] | None = None

    @property
    def number(self) -> int:
        n = self.issue.get("number") if isinstance(self.issue, dict) else None
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ThreadError("item has no issue number" if n is None else f"issue number {n!r} is not a positive integer")
        return n

    @property
    def is_pull(self) -> bool:
        return self.pull is not None or "pull_request" in self.issue

    @property
    def kind(self) -> SourceKind:
        return SourceKind.pull_request if self.is_pull else SourceKind.issue

    @property
    def key(self) -> str:
        return thread_key(self.repo, self.number, self.is_pull)

    def closes(self) -> list[int]:
        """Issues this pull request's description closes (GitHub ignores the keywords elsewhere)."""
        if not self.is_pull:
            return []
        body = self.issue.get("body")
        if self.pull is not None and isinstance(self.pull.get("body"), str):
            body = self.pull["body"]
        return [n for n in closing_refs(body if isinstance(body, str) else None, self.repo) if n != self.number]

    def merge_state(self) -> tuple[bool | None, str | None]:
        """(merged, merge commit sha) for a pull request; (None, None) for an issue or when unknown."""
        if not self.is_pull:
            return None, None
        merged = self._merge_field("merged")
        if not isinstance(merged, bool):
            merged = None
            for src in (self.pull or {}, self.issue, self._pr_link()):
                if "merged_at" in src:
                    merged = src["merged_at"] is not None
                    break
        sha = self._merge_field("merge_commit_sha")
        # GitHub fills merge_commit_sha with a test merge for open pull requests: only a merge counts.
        return merged, (sha if merged and isinstance(sha, str) and sha else None)

    def closer(self) -> Closer:
        """This pull request as the closer of the issues it names."""
        merged, sha = self.merge_state()
        state = self.issue.get("state")
        return Closer(self.number, merged, sha, state.lower() if isinstance(state, str) else None)

    def merged_at(self) -> datetime | None:
        return parse_time(self._merge_field("merged_at") or self._pr_link().get("merged_at"), "merged_at")

    def _merge_field(self, name: str) -> Any:
        """A pull-request field from the pull object, else from the item itself (hand-made exports)."""
        value = (self.pull or {}).get(name)
        return value if value is not None else self.issue.get(name)

    def _pr_link(self) -> dict[str, Any]:
        link = self.issue.get("pull_request")
        return link if isinstance(link, dict) else {}


def thread_key(repo: str, number: int, is_pull: bool) -> str:
    kind = SourceKind.pull_request if is_pull else SourceKind.issue
    return f"{kind.value}:{repo}#{number}"
