"""Process locks: an exclusive ``flock`` on a file in the data home.

The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a crash
never leaves anything locked out, and a lock nobody holds tells that the rows its holder left
"running" were interrupted. The scheduler runs one job of a kind at a time under one
(lorebase.scheduler); each ingest run holds one of its own while it runs (lorebase.ingest.service).
Processes that share a database must share the data home for this to see them.
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

    def release(self, *, remove: bool = False) -> None:
        """``remove``: delete the file too (while still holding it), for locks named once only."""
        if self._file is not None:
            if remove:
                self.path.unlink(missing_ok=True)
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


def held_elsewhere(settings: Settings, name: str) -> bool:
    """True when another open of the lock holds it now. Unlike :func:`is_busy` this creates no file,
    and it removes the file of a lock left by a process that ended (for locks named once only)."""
    path = lock_path(settings, name)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return True
    path.unlink(missing_ok=True)
    os.close(fd)  # closing releases the lock
    return False
