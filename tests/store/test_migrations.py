"""Migrations: they match the models, and upgrading an existing database keeps its data, on
SQLite and on PostgreSQL (``db_url`` runs each test on both)."""


import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from lorebase.store import (
    Store,
    chainlit_tables,  # noqa: F401  # its tables belong to the schema too
)
from lorebase.store.base import Base
from lorebase.store.db import alembic_config
from lorebase.store.models import Feedback


def _revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_migrations_match_the_models(db_url: str) -> None:
    store = Store(db_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"
    store.close()


def test_upgrading_an_old_home_keeps_its_data(db_url: str) -> None:
    url = db_url
    revisions = _revisions(url)
    old = Store(url, upgrade=False)
    old.upgrade(revisions[0])  # a home made by the first release
    with old.engine.begin() as c:
        c.execute(text(
            "INSERT INTO sources (id, key, kind, title, text, content_hash, meta, first_ingested_at, last_ingested_at) "
            "VALUES ('src_1', 'doc:o/r:README.md', 'doc', 'README', 'hello', 'h', '{}', '2024-01-01', '2024-01-01')"))
        c.execute(text("INSERT INTO chunks (source_id, ordinal, text, content_hash, meta, indexed) "
                       "VALUES ('src_1', 0, 'hello', 'c', '{}', :yes)"), {"yes": True})
        c.execute(text("INSERT INTO sync_cursors (name, value, updated_at) VALUES ('git:o/r:main', 'abc', '2024-01-01')"))
        c.execute(text("INSERT INTO feedback (rating, question, answer, sources, model, channel, review_status, created_at) "
                       "VALUES (-1, 'q', 'a', '[]', 'm', 'api', 'pending', '2024-01-01')"))
    old.close()

    new = Store(url)  # opening upgrades to head
    assert new.revision() == revisions[-1]
    with new.engine.connect() as c:
        assert c.execute(text("SELECT text FROM sources WHERE id='src_1'")).scalar() == "hello"
        assert c.execute(text("SELECT count(*) FROM chunks WHERE source_id='src_1'")).scalar() == 1
        assert c.execute(text("SELECT value FROM sync_cursors WHERE name = 'git:o/r:main'")).scalar() == "abc"
    with new.session() as s:  # a column added later (0003) is filled for the rows already there
        assert s.scalar(select(Feedback.review)) == {} and s.scalar(select(Feedback.question)) == "q"
    # and opening again is a no-op
    Store(url).close()
    with new.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM sources")).scalar() == 1
    new.close()


def test_a_foreign_database_is_refused_clearly(db_url: str) -> None:
    from lorebase.errors import StoreError

    foreign = Store(db_url, upgrade=False)
    with foreign.engine.begin() as c:
        c.execute(text("CREATE TABLE sources (x INTEGER)"))  # same name, other shape, no alembic_version
    foreign.close()
    with pytest.raises(StoreError, match="cannot upgrade"):
        Store(db_url)


def test_replicas_opening_a_new_postgres_database_at_once_all_succeed(postgres_url: str) -> None:
    import threading

    results: list[str] = []

    def open_it() -> None:
        try:
            st = Store(postgres_url)
            results.append(st.revision() or "")
            st.close()
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            results.append(f"failed: {e}")

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    head = _revisions(postgres_url)[-1]
    assert results == [head] * 4, results
