"""Process locks, across processes and, with PostgreSQL, across hosts. The scheduler runs one job
of a kind at a time under one (lorebase.scheduler); each ingest run holds one of its own while it
runs (lorebase.ingest.service).

- SQLite (one host): an exclusive ``flock`` on a file in the data home (processes that share a
  SQLite database share its data home).
- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a connection of its
  own, opened for the holder and closed after it, so every host that shares the database sees it.

Either way the lock dies with its holder, however it ends (SIGKILL included): the kernel drops the
flock, and PostgreSQL ends the session of a closed connection. So a crash never leaves anything
locked out, and a lock nobody holds tells that the rows its holder left "running" were
interrupted. (A host that vanishes without closing its connections is noticed after the server's
TCP keepalive settings; see docs/deploy.md.)
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

from lorebase.errors import StoreError
from lorebase.store.advisory import advisory_key
from lorebase.store.db import is_postgres, normalize_url

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class LockSettings(Protocol):
    """What the locks read of the settings tree (``lorebase.settings.Settings`` fits): named here so that
    the store does not import the settings module, which imports the store's models (a circle)."""

    @property
    def home(self) -> Path: ...

    @property
    def db_url(self) -> str: ...


def lock_path(settings: LockSettings, name: str) -> Path:
    return settings.home / "locks" / (_UNSAFE.sub("_", name) + ".lock")


def job_key(name: str) -> int:
    """The advisory lock key of job lock ``name`` (the same on every host)."""
    return advisory_key(f"job:{name}")


def libpq_conninfo(db_url: str) -> str:
    """The SQLAlchemy URL as a libpq connection URI (it may hold a password: never log it)."""
    from sqlalchemy.engine import make_url

    return make_url(normalize_url(db_url)).set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(db_url: str, purpose: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(libpq_conninfo(db_url), autocommit=True, connect_timeout=30,
                               application_name=f"lorebase {purpose}"[:63])
    except psycopg.Error as e:
        raise StoreError(f"cannot reach the database for {purpose}: {e}") from e


class _Backend(Protocol):
    where: str

    def acquire(self, blocking: bool) -> bool: ...

    def release(self, remove: bool = False) -> None: ...


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"lock file {path}"
        self._file: IO[str] | None = None

    def acquire(self, blocking: bool) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held open while locked
        try:
            fcntl.flock(f, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
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

    def release(self, remove: bool = False) -> None:
        if self._file is not None:
            if remove:
                self.path.unlink(missing_ok=True)
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class _AdvisoryLock:
    def __init__(self, db_url: str, name: str) -> None:
        self.db_url = db_url
        self.name = name
        self.key = job_key(name)
        self.where = f"PostgreSQL advisory lock {self.key} ({name})"
        self._conn: Any = None

    def acquire(self, blocking: bool) -> bool:
        import psycopg

        conn = _connect(self.db_url, f"lock {self.name}")
        try:
            if blocking:
                conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                got = True
            else:
                got = bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0])
        except psycopg.Error as e:
            conn.close()
            raise StoreError(f"cannot take the job lock {self.name}: {e}") from e
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self, remove: bool = False) -> None:  # nothing to remove: the lock lives in the server
        import psycopg

        if self._conn is None:
            return
        try:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # the connection is gone, and the lock with it
        finally:
            self._conn.close()
            self._conn = None


class JobLock:
    """``with JobLock(settings, "sync:docs") as got:`` — ``got`` is False when another holder has it."""

    def __init__(self, settings: LockSettings, name: str, *, blocking: bool = False) -> None:
        self.name = name
        self.blocking = blocking
        self._backend: _Backend = (
            _AdvisoryLock(settings.db_url, name) if is_postgres(settings.db_url) else _FileLock(lock_path(settings, name))
        )
        self._held = False

    @property
    def path(self) -> Path | None:
        """The lock file (SQLite); None for an advisory lock."""
        return self._backend.path if isinstance(self._backend, _FileLock) else None

    @property
    def where(self) -> str:
        """What the lock is, for messages: a file, or an advisory lock key."""
        return self._backend.where

    def acquire(self) -> bool:
        self._held = self._backend.acquire(self.blocking)
        return self._held

    def release(self, *, remove: bool = False) -> None:
        """``remove``: delete a lock file too (while still holding it), for locks named once only."""
        self._backend.release(remove)
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"JobLock({self.name!r}, held={self.held})"


def _advisory_held(settings: LockSettings, name: str) -> bool:
    # Read the lock table rather than try the lock: a probe must never make a real taker fail.
    key = job_key(name)
    with _connect(settings.db_url, "lock probe") as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = %s AND objid::bigint = %s)",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
    return bool(row[0])


def is_busy(settings: LockSettings, name: str) -> bool:
    """True when some holder, on any host, has the lock now (with SQLite a probe: it takes the lock
    and gives it back at once)."""
    if is_postgres(settings.db_url):
        return _advisory_held(settings, name)
    lock = JobLock(settings, name)
    if lock.acquire():
        lock.release()
        return False
    return True


def held_elsewhere(settings: LockSettings, name: str) -> bool:
    """True when another holder has the lock now. Unlike :func:`is_busy` this creates no file, and
    it removes the file of a lock left by a process that ended (for locks named once only)."""
    if is_postgres(settings.db_url):
        return _advisory_held(settings, name)
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
