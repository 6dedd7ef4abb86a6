"""What a starting server is still loading: the one record behind /healthz, the 503s with
Retry-After during start-up, and the line `lorebase serve` prints once the service answers.

Parts (``generator``, ``merged engine``, ...) are begun with a detail that says what they are doing
("vLLM: loading the model"), updated as they go, and end done or failed. The service is
``starting`` while a part it needs (``required``) is loading, ``ok`` once all of those are done,
and ``degraded`` when one of them failed: search and ingest still work then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Listener = Callable[[str, str], None]  # (part, detail)


@dataclass(frozen=True)
class Loading:
    detail: str
    since: float  # time.monotonic() when the part began

    def describe(self) -> str:
        return f"{self.detail} ({time.monotonic() - self.since:.0f} s)"


class Readiness:
    def __init__(self, required: tuple[str, ...] = ("generator",)) -> None:
        self.required = required
        self._loading: dict[str, Loading] = {}
        self._failed: dict[str, str] = {}
        self._done: set[str] = set()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._began: dict[str, float] = {}

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _tell(self, part: str, detail: str) -> None:
        for listener in list(self._listeners):
            listener(part, detail)

    def begin(self, part: str, detail: str) -> None:
        """``part`` is loading (or is now at a new step of loading); ``detail`` says what it does."""
        with self._lock:
            since = self._began.setdefault(part, time.monotonic())
            self._loading[part] = Loading(detail, since)
            self._failed.pop(part, None)
            self._done.discard(part)
        self._tell(part, detail)

    def done(self, part: str) -> None:
        with self._lock:
            self._loading.pop(part, None)
            self._began.pop(part, None)
            self._done.add(part)
        self._tell(part, "ready")

    def fail(self, part: str, error: str) -> None:
        with self._lock:
            self._loading.pop(part, None)
            self._began.pop(part, None)
            self._failed[part] = error
        self._tell(part, f"failed: {error}")

    def forget(self, part: str) -> None:
        """An optional part that is no longer wanted (a merged engine that was stopped)."""
        with self._lock:
            self._loading.pop(part, None)
            self._began.pop(part, None)
            self._failed.pop(part, None)
            self._done.discard(part)

    @property
    def status(self) -> str:
        with self._lock:
            if any(p in self._failed for p in self.required):
                return "degraded"
            if all(p in self._done for p in self.required):
                return "ok"
            return "starting"

    def loading(self) -> dict[str, str]:
        with self._lock:
            return {part: state.describe() for part, state in self._loading.items()}

    def failed(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failed)

    def is_ready(self, part: str) -> bool:
        with self._lock:
            return part in self._done

    def waiting_message(self, part: str = "generator") -> str:
        """Why a request for ``part`` cannot be served yet, for its 503."""
        with self._lock:
            if part in self._failed:
                return f"the {part} did not start: {self._failed[part]}"
            state = self._loading.get(part)
        if state is not None:
            return f"the {part} is starting ({state.describe()}); try again shortly"
        return f"the {part} is not running yet; try again shortly"
