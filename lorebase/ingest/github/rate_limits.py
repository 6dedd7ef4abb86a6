"""Waiting out GitHub's rate limits inside the HTTP layer.

PyGithub 2.10's own ``GithubRetry`` retries a 403 only when it has ``Retry-After`` or its body says
"rate limit", does not retry a 429 that has ``X-RateLimit-Reset`` but no ``Retry-After``, and sleeps
with ``time.sleep`` inside urllib3. So the API reader hands PyGithub (its ``retry=`` parameter) our own
urllib3 ``Retry``, :class:`GitHubRetry`, that reads GitHub's headers and waits through an injected
``sleep``: the HTTP layer re-sends the very same request, so pagination and the items already read are
untouched.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)


DEFAULT_RATE_WAIT_S = 60.0  # GitHub's advice when a rate-limited answer names no time
_RETRIED_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


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
        return super().new(**kw)

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
