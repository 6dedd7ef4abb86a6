"""Merged-weights serving on the real vLLM server, tiny Llama, real peft adapters: the merged engine
answers as the LoRA path does, and a blue-green switch lets a request in flight on the old engine
finish before that engine stops.

Needs the model-server environment (.venv-vllm). Up to three engines of the tiny model run at once
(the base engine, the old and the new merged one): about 3 GiB of KV cache, a few minutes on 2 cores.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from lorebase.finetune.merge import MARK, ensure_merged, merge_adapter, prune_merged
from lorebase.generation.backend import GenerationRequest
from lorebase.generation.factory import open_generator
from lorebase.generation.vllm_backend import VLLMBackend
from lorebase.settings import Settings, load_settings
from tests.conftest import REPO_ROOT
from tests.generation.adapters import lora_alpha, lora_beta  # noqa: F401  (fixtures)
from tests.generation.test_vllm_server import free_port, group_is_gone

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is missing: run `make install-vllm`"),
    pytest.mark.asyncio(loop_scope="module"),
]

PROMPTS = [[{"role": "user", "content": "The lecture explains gradient descent"}], [{"role": "user", "content": "word " * 40}]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tiny_llama: Path, lora_alpha: Path, lora_beta: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                 ) -> AsyncIterator[tuple[VLLMBackend, Settings]]:
    home = tmp_path_factory.mktemp("merged-home")
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("LOREBASE_")]:
            mp.delenv(key)
        mp.chdir(home)
        settings = load_settings(home=home, models={"generator": str(tiny_llama)},
                                 generation={"backend": "vllm", "vllm_python": str(VLLM_PYTHON), "vllm_port": free_port(),
                                             "vllm_kv_cache_gib": 1, "adapters": {"alpha": str(lora_alpha), "beta": str(lora_beta)},
                                             "vllm_dtype": "float32"})  # merged == LoRA text, token for token, needs fp32
    settings.ensure_home()
    gen = await open_generator(settings)
    assert isinstance(gen, VLLMBackend)
    try:
        yield gen, settings
    finally:
        await gen.aclose()


async def _texts(gen: VLLMBackend, model: str | None) -> list[str]:
    return [(await gen.complete(GenerationRequest(m, max_tokens=16, model=model))).text for m in PROMPTS]


async def test_the_merged_engine_answers_as_lora_does(served: tuple[VLLMBackend, Settings], tiny_llama: Path,
                                                      lora_alpha: Path) -> None:  # noqa: F811
    gen, settings = served
    via_lora = await _texts(gen, "alpha")
    base = await _texts(gen, None)
    assert via_lora != base, "the adapter must change the output, or this test shows nothing"

    folder = await asyncio.to_thread(ensure_merged, settings, tiny_llama, "alpha", lora_alpha)
    assert folder == settings.models_dir / "merged" / "alpha" and (folder / MARK).is_file()
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 2
    assert not any((folder / n).exists() for n in ("adapter_config.json", "adapter_model.safetensors"))

    await gen.serve_merged("alpha", folder)
    lane = gen.merged
    assert lane is not None and lane.adapter == "alpha" and lane.server.ready
    assert gen.engines()["merged"]["adapter"] == "alpha"
    # Same greedy text from the merged weights as from base + LoRA; the base model is still the base.
    assert await _texts(gen, "alpha") == via_lora
    assert await _texts(gen, None) == base
    assert "alpha" in await gen.models() and "beta" in await gen.models()  # other adapters stay on the LoRA path


async def test_a_request_in_flight_during_the_switch_completes(served: tuple[VLLMBackend, Settings], tiny_llama: Path,
                                                               lora_beta: Path) -> None:  # noqa: F811
    gen, settings = served
    old = gen.merged
    assert old is not None and old.adapter == "alpha", "runs after the test above"
    old_pid = old.server.pid
    assert old_pid is not None

    stream = gen.stream(GenerationRequest(PROMPTS[0], max_tokens=200, model="alpha"))
    first = await anext(stream)  # in flight on the alpha engine
    assert old.in_flight == 1

    beta = await asyncio.to_thread(merge_adapter, tiny_llama, lora_beta, settings.models_dir / "merged" / "beta")
    switch = asyncio.create_task(gen.serve_merged("beta", beta))
    while gen.merged is old:  # the new engine starts beside the old one; our request waits, unread
        assert not switch.done() or switch.exception() is None
        await asyncio.sleep(0.2)
    assert gen.merged is not None and gen.merged.adapter == "beta"
    await asyncio.sleep(1.0)
    assert old.server.pid == old_pid and not switch.done(), "the old engine must drain, not stop, while it holds a request"

    rest = [d async for d in stream]
    text = first.text + "".join(d.text for d in rest)
    assert rest[-1].finish_reason in ("stop", "length") and rest[-1].usage is not None
    assert rest[-1].usage.completion_tokens > 1 and text
    await asyncio.wait_for(switch, 120)
    assert old.server.pid is None and group_is_gone(old_pid), "once drained, the old engine stops"

    # alpha lost its merged engine: it is served through LoRA again, as before
    assert (await gen.complete(GenerationRequest(PROMPTS[1], max_tokens=4, model="alpha"))).usage.completion_tokens == 4
    assert prune_merged(settings, keep={"beta"}) == ["alpha"]
    await gen.stop_merged()
    assert gen.merged is None and gen.engines().keys() == {"base"}
