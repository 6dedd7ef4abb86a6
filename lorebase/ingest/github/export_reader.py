"""GitHub issues and pull requests from an exported JSON file (saved from the REST API or the gh CLI).

The accepted shapes are described on :class:`GitHubExportReader`; each item becomes a :class:`Thread`,
as the API reader's items do, and from there the same draft.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lorebase.errors import InvalidInput
from lorebase.ingest.github.thread_drafts import thread_draft
from lorebase.ingest.github.threads import (
    Closer,
    Thread,
    ThreadError,
    repo_from_url,
    validate_repo,
)
from lorebase.ingest.records import Event, Fail, ReadContext, Upsert

_GH_KEYS = ("createdAt", "updatedAt", "closedAt", "author")
_GH_PR_KEYS = ("mergedAt", "mergeCommit", "headRefName", "baseRefName", "isDraft", "reviewDecision")
_REPOSITORY_URL_RE = re.compile(r"/repos/([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)/?$")


def is_github_export(path: Path) -> bool:
    """Whether ``path`` looks like a GitHub issues export, from its first 64 KiB only."""
    try:
        with path.open("rb") as f:
            head = f.read(65536).decode("utf-8", errors="ignore")
    except OSError:
        return False
    s = head.lstrip("\ufeff \t\r\n")
    if s.startswith("{"):
        return bool(re.search(r'"(?:issues|pulls)"\s*:\s*\[', s))
    if not s.startswith("["):
        return False
    return bool(re.search(r'"number"\s*:\s*\d', s)) and bool(
        re.search(r'"(?:html_url|comments_url|repository_url|pull_request|createdAt)"\s*:', s)
    )


class GitHubExportReader:
    """Issues and pull requests from a JSON file.

    Accepted shapes:

    * A list of REST issue objects (``GET /repos/{o}/{r}/issues``; pull requests are the items with
      a ``pull_request`` key). Each may embed ``comments_data`` (REST issue comments),
      ``review_comments_data`` (REST review comments), ``reviews_data`` (REST reviews) and
      ``pull_data`` (the REST pull object); merge state may also sit on the item itself
      (``merged``, ``merged_at``, ``merge_commit_sha``) or in ``pull_request.merged_at``.
    * A list saved from the gh CLI: ``gh issue list --json
      number,title,body,state,labels,comments,author,createdAt,updatedAt,url,closedAt`` and
      ``gh pr list --json`` with the same fields plus optionally ``mergedAt,mergeCommit,
      headRefName,baseRefName,isDraft,reviews``.
    * ``{"repo": "owner/name", "issues": [...], "pulls": [...]}`` with items of either shape;
      ``pulls`` may hold REST pull objects, merged with the issue item of the same number.

    The repository is ``repo`` if given, else the wrapper's ``repo``, else read from each item's
    URL. An export may be partial (gh lists 30 open items by default), so it never removes sources.
    """

    def __init__(self, path: Path, repo: str | None = None) -> None:
        self.path = Path(path)
        self.repo = validate_repo(repo) if repo is not None else None
        self.label = f"github export {self.path}"

    def read(self, ctx: ReadContext) -> Iterator[Event]:
        ref = str(self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            yield Fail(ref, f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})")
            return
        except (OSError, UnicodeDecodeError) as e:
            yield Fail(ref, f"cannot read the export: {e}")
            return
        try:
            repo_hint, items = self._items(data)
        except (ThreadError, InvalidInput) as e:
            yield Fail(ref, str(e))
            return

        threads: dict[tuple[str, int], Thread] = {}
        for where, item, from_pulls in items:
            try:
                t = _thread_from_export(item, repo_hint, from_pulls)
                ident = (t.repo.lower(), t.number)
                if ident in threads:
                    _merge(threads[ident], t)
                else:
                    threads[ident] = t
            except (ThreadError, InvalidInput) as e:
                n = item.get("number") if isinstance(item, dict) else None
                yield Fail(f"{ref} {where}" + (f" (#{n})" if isinstance(n, int) else ""), str(e))

        closers_of: dict[tuple[str, int], list[Closer]] = {}
        for t in threads.values():
            for n in t.closes():
                closers_of.setdefault((t.repo.lower(), n), []).append(t.closer())
        for ident, t in threads.items():
            try:
                yield Upsert(thread_draft(t, [] if t.is_pull else closers_of.get(ident, [])))
            except ThreadError as e:
                yield Fail(t.key, str(e))

    def _items(self, data: Any) -> tuple[str | None, list[tuple[str, Any, bool]]]:
        if isinstance(data, list):
            return self.repo, [(f"item {i}", item, False) for i, item in enumerate(data)]
        if isinstance(data, dict) and ("issues" in data or "pulls" in data):
            repo = self.repo
            if repo is None and data.get("repo") is not None:
                repo = validate_repo(data["repo"]) if isinstance(data["repo"], str) else validate_repo(repr(data["repo"]))
            items: list[tuple[str, Any, bool]] = []
            for name in ("issues", "pulls"):
                part = data.get(name) or []
                if not isinstance(part, list):
                    raise ThreadError(f"{name!r} should be a list, not {type(part).__name__}")
                items.extend((f"{name}[{i}]", item, name == "pulls") for i, item in enumerate(part))
            return repo, items
        shape = type(data).__name__ if not isinstance(data, dict) else f"an object with keys {sorted(data)[:6]}"
        raise ThreadError(f"not a GitHub export: expected a list of issues or an object with 'issues'/'pulls' lists, got {shape}")


def _thread_from_export(item: Any, repo_hint: str | None, from_pulls: bool) -> Thread:
    if not isinstance(item, dict):
        raise ThreadError(f"expected an issue object, got {type(item).__name__}")
    if any(k in item for k in _GH_KEYS) and "created_at" not in item:
        issue, comments, reviews, pull = _from_gh_cli(item, from_pulls)
        review_comments: Any = []
    else:
        issue = item
        comments = item.get("comments_data")
        review_comments = item.get("review_comments_data") or []
        reviews = item.get("reviews_data") or []
        pull = item.get("pull_data")
        if pull is None and from_pulls:
            pull = item  # a REST pull object is an issue object plus merge state
        if pull is not None and not isinstance(pull, dict):
            raise ThreadError("'pull_data' should be an object")
    repo = repo_hint or repo_from_url(issue.get("html_url")) or repo_from_url(issue.get("url"))
    if repo is None and isinstance(issue.get("repository_url"), str):
        m = _REPOSITORY_URL_RE.search(issue["repository_url"])
        repo = m.group(1) if m else None
    if repo is None:
        raise ThreadError("cannot tell which repository this item belongs to: give the export a \"repo\" or pass repo=")
    t = Thread(validate_repo(repo), issue, comments, review_comments, reviews, pull)
    t.number  # noqa: B018 - validates the number now, so the item fails here with its position
    return t


def _merge(kept: Thread, other: Thread) -> None:
    """The same number twice: allowed once as an issue item and once as a pull object, else an error."""
    if (kept.pull is not None and other.pull is not None) or not (kept.is_pull and other.is_pull):
        raise ThreadError(f"#{other.number} appears twice in the export; the first one is kept")
    if kept.pull is None:
        kept.pull = other.pull
    for name in ("review_comments", "reviews"):
        if not getattr(kept, name):
            setattr(kept, name, getattr(other, name))
    if kept.comments is None:
        kept.comments = other.comments


def _gh_user(author: Any) -> dict[str, Any] | None:
    login = author.get("login") if isinstance(author, dict) else None
    return {"login": login} if isinstance(login, str) else None


def _from_gh_cli(item: dict[str, Any], from_pulls: bool) -> tuple[dict[str, Any], Any, list[dict[str, Any]], dict[str, Any] | None]:
    """A gh CLI item (camelCase, GraphQL names) in the REST shape."""
    state = str(item.get("state") or "OPEN").upper()
    url = item.get("url") if isinstance(item.get("url"), str) else None
    issue: dict[str, Any] = {
        "number": item.get("number"),
        "title": item.get("title"),
        "body": item.get("body"),
        "state": "open" if state == "OPEN" else "closed",
        "labels": item.get("labels") or [],
        "user": _gh_user(item.get("author")),
        "created_at": item.get("createdAt"),
        "updated_at": item.get("updatedAt"),
        "closed_at": item.get("closedAt"),
        "html_url": url,
    }
    if isinstance(item.get("stateReason"), str) and item["stateReason"]:
        issue["state_reason"] = item["stateReason"].lower()
    raw = item.get("comments")
    comments: Any = None
    if isinstance(raw, list):
        if not all(isinstance(c, dict) for c in raw):
            raise ThreadError("comments should be a list of objects")
        comments = [
            {"id": c.get("id"), "user": _gh_user(c.get("author")), "body": c.get("body"), "created_at": c.get("createdAt"),
             "html_url": c.get("url")}
            for c in raw
        ]
    elif isinstance(raw, int):
        issue["comments"] = raw
    is_pr = from_pulls or (url is not None and "/pull/" in url) or any(k in item for k in _GH_PR_KEYS)
    if not is_pr:
        return issue, comments, [], None
    merged_at = item.get("mergedAt")
    commit = item.get("mergeCommit")
    issue["pull_request"] = {"html_url": url, "merged_at": merged_at}
    pull: dict[str, Any] = {
        "merged": state == "MERGED" or bool(merged_at),
        "merged_at": merged_at,
        "merge_commit_sha": commit.get("oid") if isinstance(commit, dict) else None,
        "draft": bool(item.get("isDraft")),
    }
    for side in ("head", "base"):
        ref = item.get(f"{side}RefName")
        if isinstance(ref, str):
            pull[side] = {"ref": ref}
    reviews_raw = item.get("reviews") or []
    if not isinstance(reviews_raw, list) or not all(isinstance(r, dict) for r in reviews_raw):
        raise ThreadError("reviews should be a list of objects")
    reviews = [
        {"id": r.get("id"), "user": _gh_user(r.get("author")), "body": r.get("body"), "state": r.get("state"),
         "submitted_at": r.get("submittedAt")}
        for r in reviews_raw
    ]
    return issue, comments, reviews, pull

