"""A GitHub thread as a source draft: one text that reads top to bottom, cut into chunks.

:func:`thread_draft` turns a :class:`~lorebase.ingest.github.threads.Thread` into a :class:`SourceDraft`:
title, state, labels, author, the opening post, then every comment with its author and date; the
opening post is the first chunk, then the discussion in chunks of about :data:`CHUNK_CHARS` characters,
each naming the comments it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lorebase.ingest.github.threads import Closer, Thread, ThreadError, parse_time
from lorebase.ingest.records import ChunkDraft, SourceDraft

CHUNK_CHARS = 1500  # discussion chunks stay near this size; MiniLM reads ~256 tokens of each

_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)  # pull-request templates leave these behind
_REVIEW_VERBS = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "requested changes",
    "COMMENTED": "reviewed",
    "DISMISSED": "reviewed (dismissed)",
}


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
