"""Reading GitHub issues and pull requests through the REST API, incrementally.

``GitHubApiReader`` lists a repository's issues (pull requests included, as GitHub lists them),
fetches each thread's comments, and for pull requests the pull object, review comments and
reviews. A first read covers everything and ends with ``ScopeComplete`` for both kinds, so issues
deleted or transferred since are removed; later reads ask only for what changed since the cursor
(the newest ``updated_at`` seen; GitHub's ``since`` is inclusive, so the item at the cursor is read
again and compares unchanged).

Rate limits are waited out in the HTTP layer (:mod:`lorebase.ingest.github.rate_limits`). PyGithub's
fixed pause between requests (``seconds_between_requests``, also ``time.sleep``) is turned off: we send
one request at a time and only GETs, as GitHub asks. Exported JSON is read by
:mod:`lorebase.ingest.github.export_reader`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lorebase.errors import UpstreamError
from lorebase.ingest.github.rate_limits import GitHubRetry, rate_limit_wait
from lorebase.ingest.github.thread_drafts import thread_draft
from lorebase.ingest.github.threads import (
    Closer,
    Thread,
    ThreadError,
    parse_time,
    validate_repo,
)
from lorebase.ingest.records import Cursor, Event, Fail, ReadContext, Remove, ScopeComplete, Upsert
from lorebase.settings import GitHubSettings, Settings
from lorebase.store.models import SourceKind

if TYPE_CHECKING:
    from github import Github

log = logging.getLogger(__name__)


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
            # _Json has the constructor PaginatedList calls; it need not be a GithubObject.
            pages = PaginatedList(_Json, gh.requester, path, dict(params or {}))  # type: ignore[type-var]
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
