"""`lorebase search`, `lorebase index` through the real entry point."""

from __future__ import annotations

import json

import pytest

from lorebase.citations import Citation
from lorebase.cli.main import main
from lorebase.index.embeddings import LorebaseEmbedding
from lorebase.settings import Settings
from lorebase.store import Store
from tests.index.corpus import add_source, chunk_states


@pytest.fixture
def cli_home(settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch, embedder: LorebaseEmbedding) -> Settings:
    monkeypatch.setenv("LOREBASE_HOME", str(settings.home))
    code = {"text": "class LruCache:\n    def evictOldest(self): ...", "start_line": 5, "end_line": 6}
    add_source(
        store, "code:o/r:src/cache.py", [code], kind="code", repo="o/r", path="src/cache.py",
        url="https://example.test/o/r/blob/abc/src/cache.py",
    )
    intro = ["An introduction to the project and its goals."]
    add_source(store, "doc:o/r:docs/intro.md", intro, kind="doc", repo="o/r", path="docs/intro.md")
    return settings


def test_search_json_prints_citations(cli_home: Settings, store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "evictOldest", "-k", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    cites = [Citation.model_validate(c) for c in data]
    assert [c.id for c in cites] == ["S1", "S2"]
    assert cites[0].path == "src/cache.py" and cites[0].uri == "https://example.test/o/r/blob/abc/src/cache.py#L5-L6"
    assert set(data[0]) == set(Citation.model_fields)
    assert set(chunk_states(store).values()) == {True}  # search indexed the pending chunks first


def test_search_filters_and_text_output(cli_home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "project goals", "--kind", "doc", "--path-prefix", "docs/", "--mode", "dense"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[S1] ") and "docs/intro.md" in out and "src/cache.py" not in out


def test_search_bad_input_exits_2_with_a_message(cli_home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "--kind", "video", "--mode", "bm25"]) == 2
    assert "unknown kind 'video'" in capsys.readouterr().err
    assert main(["search", "x", "-k", "500", "--mode", "bm25"]) == 2
    assert "k must be" in capsys.readouterr().err


def test_index_sync_status_and_rebuild(cli_home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", "sync"]) == 0
    assert "added 2, removed 0, total 2" in capsys.readouterr().out
    assert main(["index", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["count"], status["dim"], status["index_type"], status["pending"]) == (2, 384, "flat", 0)
    assert status["embedder"] == "all-minilm-l6-v2"
    assert main(["index", "rebuild"]) == 0
    assert "rebuilt: 2 vectors" in capsys.readouterr().out
