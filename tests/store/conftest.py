"""The store's tests run on both databases: SQLite in the data home and a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    s = load_settings(home=tmp_path / "home", database_url=db_url)
    s.ensure_home()
    return s
