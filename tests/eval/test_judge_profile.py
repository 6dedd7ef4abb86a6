"""Without a judge URL, the largest prepared generator profile judges when it is larger than the generator."""

from __future__ import annotations

from pathlib import Path

from lorebase.generator_profiles import PROFILES
from lorebase.offline_models import builtin_generator_dir, larger_prepared_profile
from lorebase.settings import load_settings


def _prepare(settings, name: str) -> Path:  # type: ignore[no-untyped-def]
    folder = builtin_generator_dir(settings, PROFILES[name])
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_the_largest_prepared_profile_above_the_generator_judges(tmp_path: Path) -> None:
    tiny = load_settings(home=tmp_path / "h", models={"generator": "tiny"})
    assert larger_prepared_profile(tiny) is None  # nothing larger is prepared
    small = _prepare(tiny, "small")
    assert larger_prepared_profile(tiny) == ("small", small)
    base = _prepare(tiny, "base")
    assert larger_prepared_profile(tiny) == ("base", base)
    # the generator itself, or a larger one, is never replaced by a smaller judge
    assert larger_prepared_profile(load_settings(home=tmp_path / "h", models={"generator": "small"})) == ("base", base)
    assert larger_prepared_profile(load_settings(home=tmp_path / "h", models={"generator": "base"})) is None
    # a model folder of one's own is never second-guessed
    assert larger_prepared_profile(load_settings(home=tmp_path / "h", models={"generator": str(small)})) is None


def test_the_judge_engine_has_its_own_port_and_log_and_no_lora_slots(tmp_path: Path) -> None:
    from lorebase.eval.judge import judge_engine
    from lorebase.generation.vllm_server import VLLMServer

    settings = load_settings(home=tmp_path / "h", models={"generator": "small"}, generation={"vllm_port": 8101})
    folder = _prepare(settings, "base")
    (folder / "config.json").write_text('{"max_position_embeddings": 32768}')
    cmd = VLLMServer(judge_engine(settings, folder)).command()
    assert cmd[cmd.index("--port") + 1] == "8102"  # beside the generator's engine, never on it
    assert cmd[cmd.index("--max-model-len") + 1] == "8192"  # a judge prompt needs no 32k context
    assert cmd[cmd.index("--served-model-name") + 1] == "generator-base"
    assert "--enable-lora" not in cmd  # LoRA slots cost every token; a judge takes no adapter
    # compact JSON (vllm_compact_json, on by default) made the 1.5B judge close its verdict lists empty
    assert settings.generation.vllm_compact_json and "--structured-outputs-config" not in cmd
    assert judge_engine(settings, folder).log_file != settings.logs_dir / "vllm.log"
    # the generator's own engine keeps its LoRA slots
    from lorebase.generation.vllm_options import VLLMOptions

    gen_cmd = VLLMServer(VLLMOptions.of(settings, model_dir=folder, served_name="g", max_model_len=4096)).command()
    assert "--enable-lora" in gen_cmd and "--structured-outputs-config" in gen_cmd
