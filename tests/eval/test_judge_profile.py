"""Without a judge URL, the largest prepared generator profile judges when it is larger than the generator."""

from __future__ import annotations

from pathlib import Path

from lorebase.eval.judge import larger_judge_profile
from lorebase.generator_profiles import PROFILES
from lorebase.offline_models import builtin_generator_dir
from lorebase.settings import load_settings


def _prepare(settings, name: str) -> Path:  # type: ignore[no-untyped-def]
    folder = builtin_generator_dir(settings, PROFILES[name])
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_the_largest_prepared_profile_above_the_generator_judges(tmp_path: Path) -> None:
    tiny = load_settings(home=tmp_path / "h", models={"generator": "tiny"})
    assert larger_judge_profile(tiny) is None  # nothing larger is prepared
    small = _prepare(tiny, "small")
    assert larger_judge_profile(tiny) == ("small", small)
    base = _prepare(tiny, "base")
    assert larger_judge_profile(tiny) == ("base", base)
    # the generator itself, or a larger one, is never replaced by a smaller judge
    assert larger_judge_profile(load_settings(home=tmp_path / "h", models={"generator": "small"})) == ("base", base)
    assert larger_judge_profile(load_settings(home=tmp_path / "h", models={"generator": "base"})) is None
    # a model folder of one's own is never second-guessed
    assert larger_judge_profile(load_settings(home=tmp_path / "h", models={"generator": str(small)})) is None
