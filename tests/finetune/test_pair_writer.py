"""The self-instruct pair writer is the largest generator prepared in the data home, unless named."""

from __future__ import annotations

from pathlib import Path

from lorebase.finetune.pair_writer import same_model, writer_model
from lorebase.settings import load_settings


def _prepare(home: Path, name: str) -> None:
    folder = home / "models" / f"generator-{name}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")


def test_auto_takes_the_largest_prepared_profile_else_the_served_generator(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(home=home, models={"generator": "tiny"})
    assert writer_model(settings) == "tiny", "nothing prepared: the served generator writes"
    _prepare(home, "tiny")
    _prepare(home, "small")
    assert writer_model(settings) == "small"
    _prepare(home, "base")
    assert writer_model(settings) == "base" and not same_model(settings, "base")
    named = load_settings(home=home, models={"generator": "tiny"}, finetune={"pair_writer": "small"})
    assert writer_model(named) == "small"
    # The old name of the tiny profile is the same model.
    assert same_model(load_settings(home=home, models={"generator": "smollm2-135m-instruct"}), "tiny")
