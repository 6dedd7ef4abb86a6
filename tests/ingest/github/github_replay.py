"""A local stand-in for the GitHub REST API, serving our own fixtures on 127.0.0.1.

Fixtures live in ``fixtures/github/<owner>-<name>/`` (written for lorebase from GitHub's
documented REST schema): ``repo.json``, ``issues.json`` (a list), and ``comments.json``,
``pulls.json``, ``review_comments.json``, ``reviews.json`` keyed by issue number. ``{base}`` in
them becomes the server's own URL, since PyGithub follows the ``url`` fields it is given.
``updates/<name>.json`` holds later states (``issues`` replacing items by number, ``comments``
added by number) that a test applies with :meth:`GitHubReplay.apply`.

The server pages lists the way GitHub does (``per_page``, ``page`` and a ``Link`` header pointing
back at itself), filters issues by ``state`` and ``since``, sorts them, records every request, and
can be told to answer chosen requests with a rate limit, a 410 or a server error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "github"
DOCS = "https://docs.github.com/rest"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class Fault:
    """An answer to give instead of the normal one, to the next ``times`` matching requests."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    query: dict[str, str] = field(default_factory=dict)
    times: int = 1
    reset_in: float | None = None  # X-RateLimit-Reset is computed when answering, this far ahead

    def matches(self, path: str, query: dict[str, str]) -> bool:
        if self.path is not None and path != self.path:
            return False
        return all(query.get(k) == v for k, v in self.query.items())


@dataclass
class _Repo:
    info: dict[str, Any]
    issues: list[dict[str, Any]]
    comments: dict[int, list[dict[str, Any]]]
    pulls: dict[int, dict[str, Any]]
    review_comments: dict[int, list[dict[str, Any]]]
    reviews: dict[int, list[dict[str, Any]]]
    folder: Path


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class GitHubReplay:
    def __init__(self, token: str | None = None) -> None:
        self.token = token  # when set, a request with another token gets 401 Bad credentials
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- set-up -------------------------------------------------------------------------------

    def _load(self, path: Path) -> Any:
        return json.loads(path.read_text(encoding="utf-8").replace("{base}", self.url))

    def add_repo(self, full_name: str) -> None:
        folder = FIXTURES / full_name.replace("/", "-")

        def by_number(name: str) -> dict[int, Any]:
            p = folder / f"{name}.json"
            return {int(k): v for k, v in self._load(p).items()} if p.exists() else {}

        self._repos[full_name.lower()] = _Repo(
            info=self._load(folder / "repo.json"),
            issues=self._load(folder / "issues.json"),
            comments=by_number("comments"),
            pulls=by_number("pulls"),
            review_comments=by_number("review_comments"),
            reviews=by_number("reviews"),
            folder=folder,
        )

    def apply(self, full_name: str, update: str) -> None:
        """Move the repository to a later state from ``updates/<update>.json``."""
        repo = self._repos[full_name.lower()]
        data = self._load(repo.folder / "updates" / f"{update}.json")
        with self._lock:
            for new in data.get("issues", []):
                repo.issues = [i for i in repo.issues if i["number"] != new["number"]] + [new]
            for n, extra in data.get("comments", {}).items():
                repo.comments.setdefault(int(n), []).extend(extra)
            for n in data.get("deleted", []):
                repo.issues = [i for i in repo.issues if i["number"] != n]

    def rate_limit(self, path: str | None = None, query: dict[str, str] | None = None, reset_in: float = 1.0) -> None:
        """Answer the next matching request with a primary rate limit (403, remaining 0, reset ahead)."""
        self.faults.append(Fault(
            403,
            {"message": "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a "
             "higher rate limit. Check out the documentation for more details.)", "documentation_url": DOCS},
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "60", "X-RateLimit-Resource": "core"},
            path, query or {}, reset_in=reset_in,
        ))

    def retry_after(self, seconds: int, path: str | None = None, query: dict[str, str] | None = None, status: int = 429) -> None:
        """Answer the next matching request with a secondary rate limit carrying Retry-After."""
        self.faults.append(Fault(
            status,
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
             "documentation_url": DOCS},
            {"Retry-After": str(seconds)},
            path, query or {},
        ))

    def fail(self, status: int, message: str, path: str | None = None, times: int = 1) -> None:
        self.faults.append(Fault(status, {"message": message, "documentation_url": DOCS}, {}, path, times=times))

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # --- serving ------------------------------------------------------------------------------

    def _fault_for(self, path: str, query: dict[str, str]) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.matches(path, query):
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                    return f
        return None

    def _answer(self, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any, dict[str, str]]:
        if self.token is not None and auth is not None and auth.split(" ", 1)[-1] != self.token:
            return 401, {"message": "Bad credentials", "documentation_url": DOCS}, {}
        fault = self._fault_for(path, query)
        if fault is not None:
            headers = dict(fault.headers)
            if fault.reset_in is not None:
                headers["X-RateLimit-Reset"] = str(int(time.time() + fault.reset_in))
            return fault.status, fault.body, headers
        if path == "/rate_limit":
            core = {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600, "used": 1, "resource": "core"}
            return 200, {"resources": {"core": core}, "rate": core}, {}
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "repos" or f"{parts[1]}/{parts[2]}".lower() not in self._repos:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        repo = self._repos[f"{parts[1]}/{parts[2]}".lower()]
        rest = parts[3:]
        with self._lock:
            match rest:
                case []:
                    return 200, repo.info, {}
                case ["issues"]:
                    return self._page(path, query, self._issues(repo, query))
                case ["issues", n, "comments"] if n.isdigit():
                    if not any(i["number"] == int(n) for i in repo.issues):
                        return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
                    return self._page(path, query, repo.comments.get(int(n), []))
                case ["pulls", n] if n.isdigit() and int(n) in repo.pulls:
                    return 200, repo.pulls[int(n)], {}
                case ["pulls", n, "comments"] if n.isdigit() and int(n) in repo.pulls:
                    return self._page(path, query, repo.review_comments.get(int(n), []))
                case ["pulls", n, "reviews"] if n.isdigit() and int(n) in repo.pulls:
                    return self._page(path, query, repo.reviews.get(int(n), []))
        return 404, {"message": "Not Found", "documentation_url": DOCS}, {}

    @staticmethod
    def _issues(repo: _Repo, query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")  # GitHub's default
        items = [i for i in repo.issues if state == "all" or i["state"] == state]
        if "since" in query:
            since = _time(query["since"])
            items = [i for i in items if _time(i["updated_at"]) >= since]  # GitHub's since is inclusive
        sort = query.get("sort", "created")
        key = {"created": "created_at", "updated": "updated_at"}.get(sort, "created_at")
        return sorted(items, key=lambda i: (_time(i[key]), i["number"]), reverse=query.get("direction", "desc") == "desc")

    def _page(self, path: str, query: dict[str, str], items: list[Any]) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(int(query.get("per_page", 30)), 100))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(p: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode({**query, "page": str(p)})}>; rel="{rel}"'

        rels = []
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        return 200, chunk, ({"Link": ", ".join(rels)} if rels else {})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out separately: without this each answer waits ~40 ms

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                auth = self.headers.get("Authorization")
                with replay._lock:
                    replay.requests.append(Recorded("GET", parts.path, query, auth))
                status, body, headers = replay._answer(parts.path, query, auth)
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-RateLimit-Limit", headers.pop("X-RateLimit-Limit", "5000"))
                self.send_header("X-RateLimit-Remaining", headers.pop("X-RateLimit-Remaining", "4999"))
                self.send_header("X-RateLimit-Reset", headers.pop("X-RateLimit-Reset", str(int(time.time()) + 3600)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def github_replay() -> Iterator[GitHubReplay]:
    """A running replay server holding the ``acme/widgets`` fixtures."""
    replay = GitHubReplay(token="ghp_replay_test_token_0123456789")
    replay.add_repo("acme/widgets")
    replay.start()
    yield replay
    replay.stop()
