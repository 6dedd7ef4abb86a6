"""One job of a kind at a time, across processes: an exclusive ``flock`` on a file in the data home.

The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a crash
never leaves a job locked out; the next holder then knows the rows its predecessor left "running"
were interrupted.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from types import TracebackType
from typing import IO

from lorebase.settings import Settings

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def lock_path(settings: Settings, name: str) -> Path:
    return settings.home / "locks" / (_UNSAFE.sub("_", name) + ".lock")


class JobLock:
    """``with JobLock(settings, "sync:docs") as got:`` — ``got`` is False when another holder has it."""

    def __init__(self, settings: Settings, name: str, *, blocking: bool = False) -> None:
        self.name = name
        self.path = lock_path(settings, name)
        self.blocking = blocking
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held open while locked
        try:
            fcntl.flock(f, fcntl.LOCK_EX if self.blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        # Who holds it, for people reading the file; the lock itself is the flock.
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"JobLock({self.name!r}, held={self.held})"


def is_busy(settings: Settings, name: str) -> bool:
    """True when some holder has the lock now (a probe: takes it and gives it back at once)."""
    lock = JobLock(settings, name)
    if lock.acquire():
        lock.release()
        return False
    return True
