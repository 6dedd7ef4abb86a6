"""Migrations: they match the models, and upgrading an existing home keeps its data."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from lorebase.store import Store
from lorebase.store.db import alembic_config
from lorebase.store.models import Base


def _revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_migrations_match_the_models(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def test_upgrading_an_old_home_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    revisions = _revisions(url)
    old = Store(url, upgrade=False)
    old.upgrade(revisions[0])  # a home made by the first release
    with old.engine.begin() as c:
        c.execute(text(
            "INSERT INTO sources (id, key, kind, title, text, content_hash, meta, first_ingested_at, last_ingested_at) "
            "VALUES ('src_1', 'doc:o/r:README.md', 'doc', 'README', 'hello', 'h', '{}', '2024-01-01', '2024-01-01')"))
        c.execute(text("INSERT INTO chunks (source_id, ordinal, text, content_hash, meta, indexed) "
                       "VALUES ('src_1', 0, 'hello', 'c', '{}', 1)"))
        c.execute(text("INSERT INTO sync_cursors (name, value, updated_at) VALUES ('git:o/r:main', 'abc', '2024-01-01')"))
    old.close()

    new = Store(url)  # opening upgrades to head
    assert new.revision() == revisions[-1]
    with new.engine.connect() as c:
        assert c.execute(text("SELECT text FROM sources WHERE id='src_1'")).scalar() == "hello"
        assert c.execute(text("SELECT count(*) FROM chunks WHERE source_id='src_1'")).scalar() == 1
        assert c.execute(text("SELECT value FROM sync_cursors")).scalar() == "abc"
    # and opening again is a no-op
    Store(url)
    with new.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM sources")).scalar() == 1


def test_a_foreign_database_is_refused_clearly(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from lorebase.errors import StoreError

    db = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE sources (x INTEGER)")  # same name, other shape, no alembic_version
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="cannot upgrade"):
        Store(f"sqlite:///{db}")
