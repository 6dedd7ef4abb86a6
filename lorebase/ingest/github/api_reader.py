"""Readers for GitHub issues and pull requests: the REST API, incrementally, and exported JSON.

``GitHubApiReader`` lists a repository's issues (pull requests included, as GitHub lists them),
fetches each thread's comments, and for pull requests the pull object, review comments and
reviews. A first read covers everything and ends with ``ScopeComplete`` for both kinds, so issues
deleted or transferred since are removed; later reads ask only for what changed since the cursor
(the newest ``updated_at`` seen; GitHub's ``since`` is inclusive, so the item at the cursor is read
again and compares unchanged).

Rate limits: PyGithub 2.10's own ``GithubRetry`` retries a 403 only when it has ``Retry-After`` or
its body says "rate limit", does not retry a 429 that has ``X-RateLimit-Reset`` but no
``Retry-After``, and sleeps with ``time.sleep`` inside urllib3. So we hand PyGithub (its ``retry=``
parameter) our own urllib3 ``Retry`` that reads GitHub's headers and waits through an injected
``sleep``: the HTTP layer re-sends the very same request, so pagination and the items already read
are untouched. PyGithub's fixed pause between requests (``seconds_between_requests``, also
``time.sleep``) is turned off: we send one request at a time and only GETs, as GitHub asks.

``GitHubExportReader`` reads JSON saved from the REST API or from the gh CLI; the accepted shapes
are described on the class.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from lorebase.errors import InvalidInput, UpstreamError
from lorebase.ingest.github.threads import (
    Closer,
    Thread,
    ThreadError,
    parse_time,
    repo_from_url,
    thread_draft,
    validate_repo,
)
from lorebase.ingest.records import Cursor, Event, Fail, ReadContext, Remove, ScopeComplete, Upsert
from lorebase.settings import GitHubSettings, Settings
from lorebase.store.models import SourceKind

if TYPE_CHECKING:
    from github import Github

log = logging.getLogger(__name__)

DEFAULT_RATE_WAIT_S = 60.0  # GitHub's advice when a rate-limited answer names no time
_RETRIED_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


# --- rate limits ----------------------------------------------------------------------------------


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    lowered = name.lower()
    for k, v in headers.items():
        if k.lower() == lowered:
            return str(v)
    return None


def rate_limit_wait(status: int, headers: Mapping[str, Any], now: float) -> float | None:
    """Seconds GitHub asks us to wait before trying again, or None when the answer is no rate limit.

    GitHub signals a rate limit with 403 or 429 and either ``Retry-After`` (seconds or an HTTP
    date) or ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (epoch seconds). A 403
    with neither is a plain refusal.
    """
    if status not in (403, 429):
        return None
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RATE_WAIT_S
        return max(when.timestamp() - now, 0.0)
    if _header(headers, "X-RateLimit-Remaining") == "0":
        reset = _header(headers, "X-RateLimit-Reset")
        if reset and reset.strip().isdigit():
            return max(int(reset) - now, 0.0) + 1.0  # +1: the reset happens somewhere in that second
        return DEFAULT_RATE_WAIT_S
    return DEFAULT_RATE_WAIT_S if status == 429 else None


class GitHubRetry(Retry):
    """urllib3 retry policy for GitHub: waits out rate limits and brief server errors.

    A 403 or 429 that is a rate limit is retried after the wait GitHub names, if that is at most
    ``max_wait``; any other 403/429, or a longer wait, is handed back unretried, so PyGithub raises
    its usual exception and the reader reports it. 5xx answers and dropped connections are retried
    with exponential backoff. Every wait goes through ``pause``, so tests need no real sleeping.
    """

    def __init__(
        self,
        *,
        pause: Callable[[float], None] = time.sleep,
        max_wait: float = 900.0,
        clock: Callable[[], float] = time.time,
        wait: float | None = None,
        **kw: Any,
    ) -> None:
        kw.setdefault("total", 5)
        kw.setdefault("backoff_factor", 1.0)
        kw.setdefault("status_forcelist", _RETRIED_STATUSES)
        kw.setdefault("allowed_methods", frozenset({"GET", "HEAD"}))
        kw["raise_on_status"] = False  # an unretried answer goes back to PyGithub, which raises the right error
        super().__init__(**kw)
        self.pause = pause
        self.max_wait = max_wait
        self.clock = clock
        self.wait = wait  # the rate-limit wait decided by increment(), used by sleep()

    def new(self, **kw: Any) -> GitHubRetry:
        kw.setdefault("pause", self.pause)
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("clock", self.clock)
        return super().new(**kw)  # type: ignore[return-value]

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        wait = None
        if response is not None and response.status in (403, 429):
            wait = rate_limit_wait(response.status, response.headers, self.clock())
            if wait is None or wait > self.max_wait:
                raise MaxRetryError(_pool, url or "", ResponseError(f"{response.status} is not retried"))
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(new, GitHubRetry)
        new.wait = wait
        if wait is not None:
            log.warning("GitHub rate limit reached (%s on %s): waiting %.0f s, then retrying", response.status, url, wait)
        return new

    def sleep(self, response: Any = None) -> None:
        wait = self.wait if self.wait is not None else self.get_backoff_time()
        if wait > 0:
            if self.wait is None:
                log.info("GitHub request failed; retrying in %.0f s", wait)
            self.pause(wait)


# --- the API reader -------------------------------------------------------------------------------


class _Json:
    """A PaginatedList item that keeps the JSON object as it came: no model, no completion requests."""

    def __init__(self, requester: Any, headers: Any, attributes: dict[str, Any], *_: Any) -> None:
        self.data = attributes


class _Gone(Exception):
    """The thread answered 404 or 410 while being read: deleted or moved away."""


class _ThreadFailed(Exception):
    """One thread could not be read (a 5xx after retries, a 403 on it alone): a Fail, and the read goes on."""


class GitHubApiReader:
    """Issues and pull requests of one repository through the GitHub REST API (PyGithub)."""

    def __init__(
        self,
        repo: str,
        settings: Settings,
        token: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repo = validate_repo(repo)
        self._cfg: GitHubSettings = settings.github
        # None: take it from the environment; "" means anonymous on purpose.
        self._token = token if token is not None else (os.environ.get(self._cfg.token_env) or "")
        self._sleep = sleep
        self.label = f"github:{self.repo}"

    def __repr__(self) -> str:  # never the token
        return f"GitHubApiReader({self.repo!r}, base_url={self._cfg.base_url!r}, token={'set' if self._token else 'none'})"

    def _client(self) -> Github:
        from github import Auth, Github

        retry = GitHubRetry(pause=self._sleep, max_wait=self._cfg.max_rate_limit_wait_s)
        return Github(
            base_url=self._cfg.base_url.rstrip("/"),
            auth=Auth.Token(self._token) if self._token else None,
            per_page=self._cfg.per_page,
            retry=retry,
            seconds_between_requests=None,
            seconds_between_writes=None,
            user_agent="lorebase",
        )

    def read(self, ctx: ReadContext) -> Iterator[Event]:
        gh = self._client()
        try:
            yield from self._read(gh, ctx)
        finally:
            gh.close()

    # One request, one list. ``thread`` marks requests for one thread, whose failures need not end the read.
    def _get(self, gh: Github, path: str, doing: str, thread: bool = False) -> dict[str, Any]:
        try:
            _, data = gh.requester.requestJsonAndCheck("GET", path)
        except Exception as e:
            raise self._upstream(e, doing, thread) from None
        if not isinstance(data, dict):
            raise UpstreamError(f"GitHub answered {path} with {type(data).__name__}, not an object")
        return data

    def _list(
        self, gh: Github, path: str, doing: str, params: dict[str, Any] | None = None, thread: bool = False
    ) -> list[dict[str, Any]]:
        from github.PaginatedList import PaginatedList

        try:
            pages = PaginatedList(_Json, gh.requester, path, dict(params or {}))
            return [item.data for item in pages]  # Link rel="next" is followed by PaginatedList
        except Exception as e:
            raise self._upstream(e, doing, thread) from None

    def _upstream(self, err: Exception, doing: str, thread: bool) -> Exception:
        """A clear error for a failed request. Bad credentials, rate limits and an unreachable server
        end the read (UpstreamError); within one thread, 404/410 mean it is gone and others fail it alone."""
        from github import GithubException

        where = self._cfg.base_url
        if isinstance(err, GithubException):
            status = err.status
            data = err.data if isinstance(err.data, dict) else {}
            message = data.get("message") or err.message or ""
            wait = rate_limit_wait(status, err.headers or {}, time.time())
            if status == 401:
                return UpstreamError(
                    f"GitHub at {where} rejected the credentials while {doing} (401 {message}). "
                    f"Check the token in the environment variable {self._cfg.token_env}."
                )
            if wait is not None:
                why = (
                    f"it resets in about {wait:.0f} s, longer than github.max_rate_limit_wait_s "
                    f"({self._cfg.max_rate_limit_wait_s:.0f} s)"
                    if wait > self._cfg.max_rate_limit_wait_s
                    else "it was still limited after several waits"
                )
                hint = "" if self._token else f", or put a token in {self._cfg.token_env} for a higher limit"
                return UpstreamError(f"GitHub rate limit reached while {doing}: {why}. Try again later{hint}.")
            if thread and status in (404, 410):
                return _Gone(doing)
            if status == 404 and not thread:
                return UpstreamError(
                    f"repository {self.repo} not found at {where} (or the token cannot see it; a private repository "
                    f"needs a token with read access in {self._cfg.token_env})"
                )
            text = f"GitHub answered {status} while {doing}: {message or 'no message'}"
            return _ThreadFailed(text) if thread else UpstreamError(text)
        if isinstance(err, UpstreamError):
            return err
        import requests

        if isinstance(err, requests.RequestException):
            return UpstreamError(f"cannot reach GitHub at {where} while {doing}: {type(err).__name__}: {err}")
        return err

    def _read(self, gh: Github, ctx: ReadContext) -> Iterator[Event]:
        info = self._get(gh, f"/repos/{self.repo}", f"looking up repository {self.repo}")
        full = info.get("full_name")
        repo = full if isinstance(full, str) and full.lower() == self.repo.lower() else self.repo
        cursor_name = f"github:{repo}"
        since = self._since(ctx.cursor(cursor_name))

        params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "asc"}
        if since is not None:
            params["since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        listed = self._list(gh, f"/repos/{repo}/issues", f"listing issues of {repo}", params)
        log.info("GitHub %s: %d issues and pull requests to read%s", repo, len(listed), f" (updated since {since:%Y-%m-%d %H:%M:%S}Z)" if since else "")

        threads: list[tuple[Thread, datetime]] = []
        failed_at: list[datetime] = []
        failed_kinds: set[SourceKind] = set()
        for i, item in enumerate(listed):
            try:
                t = Thread(repo, item if isinstance(item, dict) else {})
                t.number  # noqa: B018 - validates it
                updated = parse_time(t.issue.get("updated_at"), "updated_at")
                if updated is None:
                    raise ThreadError("item has no updated_at")
            except ThreadError as e:
                yield Fail(f"{self.label} issue list item {i}", str(e))
                failed_kinds.update((SourceKind.issue, SourceKind.pull_request))  # its kind is unknown
                continue
            threads.append((t, updated))

        closers_of: dict[int, list[int]] = {}
        for t, _ in threads:
            for n in t.closes():
                closers_of.setdefault(n, []).append(t.number)
        merges: dict[int, Closer] = {}
        newest: datetime | None = None
        # Pull requests first, so an issue's draft can name the commit of the pull request that closed it.
        for t, updated in sorted(threads, key=lambda tu: not tu[0].is_pull):
            try:
                self._complete(gh, t, repo)
                if t.is_pull:
                    merges[t.number] = t.closer()
                closers = [] if t.is_pull else [merges.get(p, Closer(p)) for p in closers_of.get(t.number, [])]
                draft = thread_draft(t, closers)
            except _Gone:
                log.info("%s is gone (404/410): removing it", t.key)
                yield Remove(t.key)
            except (_ThreadFailed, ThreadError) as e:
                yield Fail(t.key, str(e))
                failed_at.append(updated)
                failed_kinds.add(t.kind)
                continue
            else:
                yield Upsert(draft)
            newest = updated if newest is None or updated > newest else newest

        if since is None:
            for kind in (SourceKind.issue, SourceKind.pull_request):
                if kind in failed_kinds:
                    log.warning("%s: not every %s could be read, so none is removed as deleted in this read", repo, kind.value)
                else:
                    yield ScopeComplete(f"{kind.value}:{repo}#")
        # Never move past a thread that failed: the next read starts at the earliest failure.
        mark = min(failed_at) if failed_at else newest
        if mark is not None and (since is None or mark >= since):
            yield Cursor(cursor_name, mark.isoformat())

    def _since(self, value: str | None) -> datetime | None:
        if not value:
            return None
        try:
            return parse_time(value, "cursor")
        except ThreadError:
            log.warning("ignoring unreadable GitHub cursor %r: reading everything", value)
            return None

    def _complete(self, gh: Github, t: Thread, repo: str) -> None:
        """Fetch what the issue list leaves out: comments, and for pull requests merge state and reviews."""
        n = t.number
        doing = f"reading #{n} of {repo}"
        count = t.issue.get("comments")
        if not isinstance(count, int) or count > 0:
            t.comments = self._list(gh, f"/repos/{repo}/issues/{n}/comments", doing, thread=True)
        else:
            t.comments = []
        if t.is_pull:
            t.pull = self._get(gh, f"/repos/{repo}/pulls/{n}", doing, thread=True)
            rc = t.pull.get("review_comments")
            if not isinstance(rc, int) or rc > 0:
                t.review_comments = self._list(gh, f"/repos/{repo}/pulls/{n}/comments", doing, thread=True)
            t.reviews = self._list(gh, f"/repos/{repo}/pulls/{n}/reviews", doing, thread=True)


# --- the export reader ----------------------------------------------------------------------------


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


__all__ = ["GitHubApiReader", "GitHubExportReader", "GitHubRetry", "is_github_export", "rate_limit_wait"]
