"""Opening the database: engine, pragmas, sessions and migrations to the newest schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from lorebase.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while an ingest writes; foreign keys make chunk cascades real.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def normalize_url(url: str) -> str:
    """PostgreSQL URLs name psycopg (v3), the driver lorebase ships: a bare ``postgresql://`` would
    make SQLAlchemy look for psycopg2, and ``postgres://`` is the form many hosts hand out."""
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url.removeprefix(bare)
    return url


def is_postgres(url: str) -> bool:
    return normalize_url(url).startswith("postgresql")


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql"):
        # Sessions in UTC whatever the server's zone: timestamps come back in UTC, and a naive
        # datetime bound as a parameter means UTC, as it does on SQLite.
        return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Store:
    """The database behind lorebase. Opening it upgrades the schema to the newest migration."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if upgrade:
            try:
                self.upgrade()
            except BaseException:
                self.engine.dispose()  # a server database would otherwise keep our connections open
                raise

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command
        from sqlalchemy import text

        from lorebase.store.advisory import advisory_key

        cfg = alembic_config(self.url)
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Replicas starting together on one server migrate one at a time (PostgreSQL's DDL
                    # is transactional: the next one waits here, then finds the schema at head).
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("migrations")})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except Exception as e:  # a broken or foreign database: say which, never half-open it
            raise StoreError(f"cannot upgrade the database at {self.url}: {e}") from e

    def revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def close(self) -> None:
        self.engine.dispose()
