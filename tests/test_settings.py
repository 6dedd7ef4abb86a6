from pathlib import Path

import pytest

from lorebase.errors import SettingsError
from lorebase.settings import load_settings


def test_defaults_put_everything_under_the_home(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path / "h")
    assert s.db_url == f"sqlite:///{tmp_path / 'h' / 'lorebase.db'}"
    for d in (s.models_dir, s.index_dir, s.adapters_dir, s.reports_dir, s.logs_dir):
        assert d.parent == tmp_path / "h"
    assert s.server.host == "127.0.0.1" and s.server.port == 8000


def test_environment_overrides_nested_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOREBASE_HOME", str(tmp_path / "envhome"))
    monkeypatch.setenv("LOREBASE_SERVER__PORT", "9123")
    monkeypatch.setenv("LOREBASE_RETRIEVAL__TOP_K", "7")
    s = load_settings()
    assert s.home == (tmp_path / "envhome").resolve()
    assert s.server.port == 9123
    assert s.retrieval.top_k == 7


def test_yaml_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "lorebase.yaml").write_text("server:\n  port: 9001\nretrieval:\n  top_k: 3\n")
    monkeypatch.setenv("LOREBASE_SERVER__PORT", "9002")
    s = load_settings()
    assert s.retrieval.top_k == 3  # from YAML (cwd is tmp_path)
    assert s.server.port == 9002  # env beats YAML


def test_config_file_named_by_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.yaml"
    cfg.write_text("generation:\n  backend: transformers\n")
    monkeypatch.setenv("LOREBASE_CONFIG", str(cfg))
    assert load_settings().generation.backend == "transformers"
    monkeypatch.setenv("LOREBASE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="missing.yaml"):
        load_settings()


def test_bad_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOREBASE_SERVER__PORT", "eighty")
    with pytest.raises(SettingsError) as e:
        load_settings()
    msg = str(e.value)
    assert "server.port" in msg and "eighty" in msg and "LOREBASE_SERVER__PORT" in msg


def test_bad_yaml_value_and_unknown_key_are_named(tmp_path: Path) -> None:
    (tmp_path / "lorebase.yaml").write_text("generation:\n  backend: llamacpp\n  temprature: 0.5\n")
    with pytest.raises(SettingsError) as e:
        load_settings()
    msg = str(e.value)
    assert "generation.backend" in msg and "llamacpp" in msg
    assert "generation.temprature" in msg and "unknown setting" in msg


def test_cross_field_check(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ingest.transcript_window_max_s"):
        load_settings(ingest={"transcript_window_min_s": 60, "transcript_window_max_s": 30})


def test_bm25_stemmer_is_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="index.bm25_stemmer"):
        load_settings(index={"bm25_stemmer": "klingon"})
    assert load_settings(index={"bm25_stemmer": ""}).index.bm25_stemmer is None
    assert load_settings().index.bm25_stemmer == "english"


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "lorebase.yaml").write_text("- just\n- a list\n")
    with pytest.raises(SettingsError, match="mapping"):
        load_settings()


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOREBASE_SERVER__API_KEYS", '["sk-very-secret"]')
    monkeypatch.setenv("LOREBASE_GENERATION__API_KEY", "sk-other-secret")
    s = load_settings()
    assert s.server.api_keys[0].get_secret_value() == "sk-very-secret"
    dumped = str(s.redacted())
    assert "sk-very-secret" not in dumped and "sk-other-secret" not in dumped
