"""`lorebase qa`, `lorebase train` and `lorebase adapters` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorebase.cli.main import main
from tests.finetune.conftest import Corpus


@pytest.fixture
def env(corpus: Corpus, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch) -> Corpus:
    for key, value in {
        "HOME": str(corpus.home), "MODELS__GENERATOR": str(tiny_llama), "GENERATION__BACKEND": "transformers",
        "GENERATION__MAX_MODEL_LEN": "2048", "FINETUNE__MAX_LENGTH": "1024", "FINETUNE__BATCH_SIZE": "2",
        "FINETUNE__GRAD_ACCUM": "1", "FINETUNE__GATE_MAX_EXAMPLES": "3", "FINETUNE__GATE_MAX_NEW_TOKENS": "8",
        "QA__TRAIN_SHARE": "0.5", "QA__VALIDATION_SHARE": "0.1",
        "FINETUNE__LORA_LAYERS": "1",  # LoRA on the last of the tiny model's two layers
    }.items():
        monkeypatch.setenv(f"LOREBASE_{key}", value)
    return corpus


@pytest.mark.slow
def test_qa_generate_stats_and_export(env: Corpus, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qa", "generate", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] > 0 and report["by_method"]["template"] > 0
    assert main(["qa", "stats", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["active"] == report["added"] and sum(st["by_split"].values()) == st["active"]
    assert main(["qa", "generate"]) == 0
    assert "0 pairs added" in capsys.readouterr().out
    assert main(["qa", "export", str(tmp_path / "qa.jsonl"), "--split", "train"]) == 0
    lines = (tmp_path / "qa.jsonl").read_text().splitlines()
    assert len(lines) == st["by_split"]["train"] and all(json.loads(x)["split"] == "train" for x in lines)
    assert main(["qa", "export", str(tmp_path / "ds")]) == 0
    assert (tmp_path / "ds" / "README.md").is_file() and (tmp_path / "ds" / "dataset_dict.json").is_file()
    capsys.readouterr()
    assert main(["qa", "generate", "--rebuild", "--json"]) == 0
    rebuilt = json.loads(capsys.readouterr().out)
    assert rebuilt["retired"] == st["active"] and rebuilt["added"] == st["active"]


def test_adapters_commands_without_adapters(env: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "list"]) == 0
    assert "no adapters yet" in capsys.readouterr().out
    assert main(["adapters", "rollback"]) == 2  # nothing promoted: a clear error
    assert "nothing to roll back" in capsys.readouterr().err
    assert main(["adapters", "promote", "nope"]) == 2


@pytest.mark.slow
def test_train_gate_promote_and_rollback_from_the_command_line(env: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qa", "generate"]) == 0
    capsys.readouterr()
    assert main(["train", "--name", "cli1", "--max-examples", "4", "--max-steps", "1", "--no-promote", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["adapter"] == "cli1" and out["steps"] == 1
    assert out["status"] in ("candidate", "rejected") and out["gate"]["current"] == "base"
    assert (env.home / "adapters" / "cli1" / "adapter_model.safetensors").is_file()
    # Only the last layer was adapted, and the gate loaded that adapter into the transformers backend.
    cfg = json.loads((env.home / "adapters" / "cli1" / "adapter_config.json").read_text())
    assert cfg["layers_to_transform"] == [1]
    assert main(["adapters", "promote", "cli1"]) == 0
    assert "cli1 is promoted" in capsys.readouterr().out
    assert main(["adapters", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["status"]) for r in rows] == [("cli1", "promoted")]
    assert rows[0]["metrics"]["gate"]["examples"] >= 1
    assert main(["adapters", "rollback"]) == 0
    assert "now serving the base model" in capsys.readouterr().out


@pytest.mark.slow
def test_embedder_tune_list_and_use_from_the_command_line(env: Corpus, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"MIN_PAIRS": "2", "BATCH_SIZE": "4", "MAX_SEQ_LENGTH": "64", "GATE_POOL": "20"}.items():
        monkeypatch.setenv(f"LOREBASE_EMBEDDER_TUNING__{key}", value)
    assert main(["embedder", "list"]) == 0
    assert capsys.readouterr().out.startswith("in use: all-minilm-l6-v2")
    assert main(["embedder", "use", "nope"]) == 2
    assert "no tuned embedder 'nope'" in capsys.readouterr().err
    assert main(["qa", "generate"]) == 0
    capsys.readouterr()
    assert main(["embedder", "tune", "--no-promote", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["train_pairs"] >= 2 and result["held_out_pairs"] >= 1 and not result["promoted"]
    assert set(result["verdict"]["candidate"]) == {"pairs", "pool", "mrr", "recall1", "recall10"}
    assert main(["embedder", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["in_use"] == "all-minilm-l6-v2" and [r["name"] for r in listed["tuned"]] == [result["name"]]
