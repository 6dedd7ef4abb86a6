"""GitHub issue and pull-request threads as sources, whether read from the API or from an export.

Both readers bring a thread into one shape, :class:`Thread`: the REST issue object (as listed by
``GET /repos/{owner}/{repo}/issues``), its comments, and for a pull request its review comments,
reviews and the REST pull object (merge state). :func:`thread_draft` turns that into a
:class:`SourceDraft`: one text that reads top to bottom (title, state, labels, author, the opening
post, then every comment with its author and date), the opening post as the first chunk, then the
discussion in chunks of about :data:`CHUNK_CHARS` characters, each naming the comments it holds.

Links between issues and pull requests come from GitHub's closing keywords (``Fixes #12``,
``closes owner/repo#12``, ``resolves https://github.com/owner/repo/issues/12``), which GitHub
honours in a pull request's description: a pull request lists what it ``closes``, and an issue
lists the pull requests that close it (``closed_by``) when the reader saw them in the same read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.ingest.records import ChunkDraft, SourceDraft
from lorebase.store.models import SourceKind

CHUNK_CHARS = 1500  # discussion chunks stay near this size; MiniLM reads ~256 tokens of each

_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# owner/name inside a github.com (or GitHub Enterprise) web URL or an API URL.
_URL_REPO_RE = re.compile(r"^https?://[^/\s]+/(?:api/v3/)?(?:repos/)?([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/(?:issues|pull|pulls)/\d+")
_CLOSING_RE = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b:?\s+"
    r"(?:(?P<repo>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)?#(?P<n>\d+)\b"
    r"|https?://[^\s/]+/(?P<urepo>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/(?:issues|pull)/(?P<un>\d+)\b)",
    re.IGNORECASE,
)
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)  # pull-request templates leave these behind
_REVIEW_VERBS = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "requested changes",
    "COMMENTED": "reviewed",
    "DISMISSED": "reviewed (dismissed)",
}


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


# --- building the draft ---------------------------------------------------------------------------


@dataclass
class _Entry:
    """One comment, review comment or review, ready to print."""

    kind: str
    id: Any
    author: str
    at: datetime | None
    text: str
    url: str | None
    path: str | None = None


def _str(obj: dict[str, Any], name: str, what: str) -> str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ThreadError(f"{what} field {name!r} should be text, not {type(value).__name__}")


def _login(obj: dict[str, Any]) -> str:
    user = obj.get("user")
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) and login else "ghost"  # GitHub's name for deleted accounts


def _clean_body(body: str | None) -> str:
    text = _HTML_COMMENT_RE.sub("", (body or "").replace("\r\n", "\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _day(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d") if dt else "an unknown date"


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _labels(issue: dict[str, Any]) -> list[str]:
    raw = issue.get("labels") or []
    if not isinstance(raw, list):
        raise ThreadError("field 'labels' should be a list")
    names = []
    for label in raw:
        name = label.get("name") if isinstance(label, dict) else label
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _dicts(items: Any, what: str) -> list[dict[str, Any]]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ThreadError(f"{what} should be a list of objects")
    return items


def _entries(thread: Thread) -> list[_Entry]:
    out: list[_Entry] = []
    for c in _dicts(thread.comments, "comments"):
        at = parse_time(c.get("created_at"), "comment created_at")
        body = _clean_body(_str(c, "body", "comment"))
        text = f"{_login(c)} on {_day(at)}: {body or '(no text)'}"
        out.append(_Entry("comment", c.get("id"), _login(c), at, text, _str(c, "html_url", "comment")))
    for c in _dicts(thread.review_comments, "review comments"):
        at = parse_time(c.get("created_at"), "review comment created_at")
        path = _str(c, "path", "review comment")
        line = c.get("line") if isinstance(c.get("line"), int) else c.get("original_line")
        where = f"{path} line {line}" if path and isinstance(line, int) else (path or "the diff")
        body = _clean_body(_str(c, "body", "review comment"))
        text = f"{_login(c)} on {_day(at)}, reviewing {where}: {body or '(no text)'}"
        out.append(_Entry("review_comment", c.get("id"), _login(c), at, text, _str(c, "html_url", "review comment"), path))
    for r in _dicts(thread.reviews, "reviews"):
        state = str(r.get("state") or "COMMENTED").upper()
        body = _clean_body(_str(r, "body", "review"))
        if state == "PENDING" or (not body and state in ("COMMENTED", "DISMISSED")):
            continue  # an empty review only wraps its line comments, which are listed already
        at = parse_time(r.get("submitted_at"), "review submitted_at")
        verb = _REVIEW_VERBS.get(state, "reviewed")
        text = f"{_login(r)} on {_day(at)} {verb}" + (f": {body}" if body else ".")
        out.append(_Entry("review", r.get("id"), _login(r), at, text, _str(r, "html_url", "review")))
    far = datetime.max.replace(tzinfo=UTC)
    order = sorted(range(len(out)), key=lambda i: (out[i].at or far, i))
    return [out[i] for i in order]


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a paragraph, else a line, else a word."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > limit // 3:
                break
        if cut <= limit // 3:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _header(thread: Thread, closers: Sequence[Closer]) -> tuple[list[str], dict[str, Any]]:
    issue = thread.issue
    n, repo, pull = thread.number, thread.repo, thread.pull or {}
    title = _str(issue, "title", "item") or ""
    author = _login(issue)
    created = parse_time(issue.get("created_at"), "created_at")
    closed = parse_time(issue.get("closed_at"), "closed_at")
    state = str(issue.get("state") or "open").lower()
    reason = issue.get("state_reason") if isinstance(issue.get("state_reason"), str) else None
    labels = _labels(issue)
    meta: dict[str, Any] = {"state": state, "labels": labels, "author": author}

    if thread.is_pull:
        merged, sha = thread.merge_state()
        merged_at = thread.merged_at()
        head = (pull.get("head") or {}).get("ref") if isinstance(pull.get("head"), dict) else None
        base = (pull.get("base") or {}).get("ref") if isinstance(pull.get("base"), dict) else None
        draft = bool(pull.get("draft") or issue.get("draft"))
        if merged:
            status = f"merged on {_day(merged_at or closed)}" + (f" as commit {sha}" if sha else "")
        elif state == "closed":
            status = f"closed without merging on {_day(closed)}"
        else:
            status = "open (draft)" if draft else "open"
        branches = f" · {head} into {base}" if head and base else ""
        line2 = f"Pull request {repo}#{n} · {status}{branches} · opened by {author} on {_day(created)}"
        closes = thread.closes()
        links = [f"Closes {', '.join(f'#{c}' for c in closes)}."] if closes else []
        meta.update(merged=merged, merge_commit_sha=sha, merged_at=_iso(merged_at), draft=draft, head=head, base=base,
                    closes=closes, closed_by=[], linked=sorted(set(closes)))
    else:
        if state == "closed":
            status = f"closed on {_day(closed)}" + (" as not planned" if reason == "not_planned" else "")
        else:
            status = "open"
        line2 = f"Issue {repo}#{n} · {status} · opened by {author} on {_day(created)}"
        done = [c for c in closers if c.merged]
        pending = [c for c in closers if not c.merged and c.state != "closed"]
        links = []
        if done:
            parts = [f"#{c.number}" + (f" (merged as commit {c.merge_commit_sha})" if c.merge_commit_sha else "") for c in done]
            links.append(f"Closed by pull request {', '.join(parts)}.")
        if pending:
            links.append(f"Pull requests that would close it: {', '.join(f'#{c.number}' for c in pending)}.")
        closing_commit = next((c.merge_commit_sha for c in done if c.merge_commit_sha), None)
        meta.update(merged=None, merge_commit_sha=None, closing_commit=closing_commit, closes=[],
                    closed_by=[c.number for c in done], linked=sorted({c.number for c in closers}))
    if reason:
        meta["state_reason"] = reason
    if labels:
        line2 += f" · labels: {', '.join(labels)}"
    meta.update(closed_at=_iso(closed), updated_at=_iso(parse_time(issue.get("updated_at"), "updated_at")))
    return [f"#{n} {title}".rstrip(), line2, *links], meta


def thread_draft(thread: Thread, closers: Iterable[Closer] = (), chunk_chars: int = CHUNK_CHARS) -> SourceDraft:
    """The source for one thread. ``closers`` are the pull requests known to close this issue."""
    if not isinstance(thread.issue, dict):
        raise ThreadError(f"item should be an object, not {type(thread.issue).__name__}")
    n = thread.number
    closers = sorted({c.number: c for c in closers if c.number != n}.values(), key=lambda c: c.number)
    head_lines, meta = _header(thread, closers)
    body = _clean_body(_str(thread.issue, "body", "item"))
    entries = _entries(thread)

    comments = sum(e.kind == "comment" for e in entries)
    if thread.comments is None and isinstance(thread.issue.get("comments"), int):
        comments = thread.issue["comments"]
    meta["comments"] = comments
    if thread.is_pull:
        meta["review_comments"] = sum(e.kind == "review_comment" for e in entries)

    title_line = head_lines[0]
    post = "\n".join(head_lines) + "\n\n" + (body or "(no description)")
    text = post
    if entries:
        text += "\n\nDiscussion:\n\n" + "\n\n".join(e.text for e in entries)

    chunks = [
        ChunkDraft(text=piece if i == 0 else f"{title_line} (continued)\n\n{piece}", meta={"part": "post"})
        for i, piece in enumerate(split_text(post, chunk_chars))
    ]
    chunks.extend(_discussion_chunks(title_line, entries, chunk_chars))
    created = parse_time(thread.issue.get("created_at"), "created_at")
    return SourceDraft(
        key=thread.key,
        kind=thread.kind,
        title=title_line,
        text=text,
        chunks=chunks,
        repo=thread.repo,
        number=n,
        url=_str(thread.issue, "html_url", "item") or (thread.pull or {}).get("html_url"),
        authored_at=created,
        meta=meta,
    )


def _discussion_chunks(title_line: str, entries: list[_Entry], limit: int) -> list[ChunkDraft]:
    prefix = f"{title_line}: discussion\n\n"
    chunks: list[ChunkDraft] = []
    group: list[_Entry] = []
    size = 0

    def emit(items: list[_Entry], text: str) -> None:
        meta: dict[str, Any] = {
            "part": "discussion",
            "comment_ids": [e.id for e in items],
            "authors": list(dict.fromkeys(e.author for e in items)),
        }
        urls = [e.url for e in items if e.url]
        if urls:
            meta["urls"] = urls
        paths = list(dict.fromkeys(e.path for e in items if e.path))
        if paths:
            meta["paths"] = paths
        chunks.append(ChunkDraft(text=prefix + text, meta=meta))

    for e in entries:
        if len(e.text) > limit:  # a long comment gets chunks of its own
            if group:
                emit(group, "\n\n".join(g.text for g in group))
                group, size = [], 0
            for piece in split_text(e.text, limit):
                emit([e], piece)
            continue
        if group and size + 2 + len(e.text) > limit:
            emit(group, "\n\n".join(g.text for g in group))
            group, size = [], 0
        group.append(e)
        size += len(e.text) + (2 if size else 0)
    if group:
        emit(group, "\n\n".join(g.text for g in group))
    return chunks
