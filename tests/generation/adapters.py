"""Tiny LoRA adapters for the tiny Llama, made with peft offline in about a second.

Import the fixtures into a test module: ``from tests.generation.adapters import lora_alpha, lora_beta``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def build_lora(base: Path, out: Path, seed: int, layers: list[int] | None = None) -> Path:
    """A rank-8 LoRA on q_proj and v_proj with random A and B (init_lora_weights=False), so it changes
    outputs; `layers` puts it on those layers only, as `finetune.lora_layers` does."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    torch.manual_seed(seed)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM",
                        layers_to_transform=layers)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def lora_alpha(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tiny_llama, tmp_path_factory.mktemp("lora-alpha"), seed=1)


@pytest.fixture(scope="session")
def lora_beta(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lora(tiny_llama, tmp_path_factory.mktemp("lora-beta"), seed=2)
