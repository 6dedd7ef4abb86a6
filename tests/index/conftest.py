"""Fixtures for retrieval tests: the real embedder (loaded once), real FAISS, a real SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lorebase.index.embeddings import LorebaseEmbedding, resolve_dtype
from lorebase.index.sync import IndexSyncer
from lorebase.settings import DEFAULT_EMBEDDER, Settings, load_settings
from lorebase.store import Store


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> LorebaseEmbedding:
    from lorebase.offline_models import embedder_path

    s = load_settings(home=tmp_path_factory.mktemp("embedder-home"), models={"embedder": DEFAULT_EMBEDDER})
    return LorebaseEmbedding(embedder_path(s), model_name=DEFAULT_EMBEDDER, dtype=resolve_dtype("auto"))


@pytest.fixture
def make_syncer(settings: Settings, store: Store, embedder: LorebaseEmbedding) -> Callable[..., IndexSyncer]:
    """A fresh syncer (a new process, in effect: nothing in memory) over the same files and store."""

    def make(s: Settings | None = None) -> IndexSyncer:
        return IndexSyncer(s or settings, store, embedder, progress=False)

    return make


@pytest.fixture
def index_dir(settings: Settings) -> Path:
    return settings.index_dir
