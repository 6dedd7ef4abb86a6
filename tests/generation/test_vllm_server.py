"""A real vLLM server on the tiny Llama with real peft adapters: one server start for the whole module.

Needs the model-server environment (.venv-vllm, `make install-vllm`); about a minute on 2 cores
(30 s to start, 30 s for the watchdog's restart at the end).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from lorebase.errors import EngineUnavailable, PromptTooLong, UnknownModel
from lorebase.generation.backend import GenerationRequest
from lorebase.generation.factory import open_generator
from lorebase.generation.openai_backend import OpenAIBackend
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.generation.vllm_backend import VLLMBackend
from lorebase.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.generation.adapters import lora_alpha, lora_beta  # noqa: F401  (fixtures)

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is missing: run `make install-vllm`"),
    pytest.mark.asyncio(loop_scope="module"),
]

PROMPT = [{"role": "user", "content": "The lecture explains gradient descent"}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_is_gone(pgid: int) -> bool:
    """No process of the group is left running (per `ps`; zombies awaiting their reaper do not count)."""
    import subprocess

    out = subprocess.run(["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return not any(int(g) == pgid and not st.startswith("Z") for g, st in (line.split() for line in out.splitlines() if line.strip()))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tiny_llama: Path, lora_alpha: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VLLMBackend]:  # noqa: F811
    home = tmp_path_factory.mktemp("vllm-home")
    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test; this runs once
        for key in [k for k in os.environ if k.startswith("LOREBASE_")]:
            mp.delenv(key)
        mp.chdir(home)
        settings = load_settings(
            home=home,
            models={"generator": str(tiny_llama)},
            generation={
                "backend": "vllm",
                "vllm_python": str(VLLM_PYTHON),
                "vllm_port": free_port(),
                "vllm_kv_cache_gib": 1,
                "vllm_dtype": "float32",  # token-for-token comparisons with transformers need one precision
                "adapters": {"alpha": str(lora_alpha)},
            },
        )
    settings.ensure_home()
    gen = await open_generator(settings)
    assert isinstance(gen, VLLMBackend) and gen.server is not None
    pgid = gen.server.pid
    assert pgid is not None
    try:
        yield gen
    finally:
        last = gen.server.pid or pgid  # the watchdog test restarts it under a new pid
        await gen.aclose()
    assert group_is_gone(last), "stopping must leave no vLLM process behind"


async def metric(gen: VLLMBackend, name: str) -> float:
    assert gen.server is not None
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(gen.server.url + "/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


async def test_lists_the_base_model_and_the_adapter_loaded_at_start(served: VLLMBackend, tiny_llama: Path) -> None:
    assert await served.models() == [tiny_llama.name, "alpha"]
    assert served.context_length == 2048


async def test_base_and_adapter_answer_differently(served: VLLMBackend) -> None:
    base = await served.complete(GenerationRequest(PROMPT, max_tokens=12))
    alpha = await served.complete(GenerationRequest(PROMPT, max_tokens=12, model="alpha"))
    assert base.usage.completion_tokens > 0
    assert (base.text, base.usage.completion_tokens) != (alpha.text, alpha.usage.completion_tokens)


async def test_streaming_ends_with_finish_reason_and_usage(served: VLLMBackend) -> None:
    messages = [{"role": "user", "content": "hello there"}]
    got = [d async for d in served.stream(GenerationRequest(messages, max_tokens=10))]
    *body, last = got
    assert len(body) > 1 and all(d.text and d.finish_reason is None and d.usage is None for d in body)
    assert last.finish_reason == "length" and last.usage is not None
    assert last.usage.completion_tokens == 10
    # Our in-process count (the model's tokenizer and chat template) is the server's.
    assert last.usage.prompt_tokens == served.count_prompt_tokens(messages)
    whole = await served.complete(GenerationRequest(messages, max_tokens=10))
    assert whole.text == "".join(d.text for d in body)


async def test_closing_a_stream_aborts_the_request_in_vllm(served: VLLMBackend) -> None:
    before = await metric(served, "vllm:generation_tokens_total")
    async with aclosing(served.stream(GenerationRequest([{"role": "user", "content": "hi"}], max_tokens=1500))) as stream:
        async for _ in stream:
            break
    await asyncio.sleep(1.0)
    assert await metric(served, "vllm:num_requests_running") == 0
    made = await metric(served, "vllm:generation_tokens_total") - before
    # Not aborted, it would make all 1,500; how many slip out before the abort lands depends on load.
    assert made < 750, f"vLLM went on to make {made} of 1500 tokens after the client left"


async def test_adapters_load_and_unload_at_run_time(served: VLLMBackend, lora_beta: Path) -> None:  # noqa: F811
    assert served.server is not None
    await served.load_adapter("beta", lora_beta)
    assert "beta" in await served.models()
    beta = await served.complete(GenerationRequest([{"role": "user", "content": "word " * 50}], max_tokens=8, model="beta"))
    assert beta.usage.completion_tokens > 0
    assert served.server.adapters["beta"] == lora_beta  # so a restart brings it back

    await served.unload_adapter("beta")
    assert "beta" not in await served.models() and "beta" not in served.server.adapters
    with pytest.raises(UnknownModel):
        await served.complete(GenerationRequest(PROMPT, max_tokens=2, model="beta"))
    with pytest.raises(UnknownModel):
        await served.unload_adapter("beta")


async def test_json_schema_output_is_valid(served: VLLMBackend) -> None:
    import jsonschema

    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string", "maxLength": 20}, "verdict": {"enum": ["yes", "no"]}},
        "required": ["answer", "verdict"],
        "additionalProperties": False,
    }
    for model in (None, "alpha"):
        req = GenerationRequest([{"role": "user", "content": "Is it so?"}], max_tokens=60, model=model, json_schema=schema)
        done = await served.complete(req)
        jsonschema.validate(json.loads(done.text), schema)
        assert done.finish_reason == "stop"


async def test_unknown_model_and_long_prompts_are_refused(served: VLLMBackend) -> None:
    with pytest.raises(UnknownModel, match="nope"):
        await served.complete(GenerationRequest(PROMPT, model="nope"))

    long = [{"role": "user", "content": "gradient descent " * 1500}]
    size = served.count_prompt_tokens(long)
    with pytest.raises(PromptTooLong, match=str(size)):
        await served.complete(GenerationRequest(long))

    # Without our tokenizer the server itself refuses, and its 400 maps the same way.
    assert served.server is not None
    bare = OpenAIBackend(
        base_url=served.base_url, base_model=served.base_model, context_length=served.context_length, queue=GenerationQueue(1, 0)
    )
    try:
        with pytest.raises(PromptTooLong, match="2048"):
            await bare.complete(GenerationRequest(long))
    finally:
        await bare.aclose()


async def test_concurrent_requests_all_complete(served: VLLMBackend) -> None:
    reqs = [GenerationRequest([{"role": "user", "content": f"question {i}"}], max_tokens=8) for i in range(8)]
    done = await asyncio.gather(*(served.complete(r) for r in reqs))
    assert [d.usage.completion_tokens for d in done] == [8] * 8


async def test_transformers_gives_the_same_greedy_answers_as_vllm(served: VLLMBackend, tiny_llama: Path, lora_alpha: Path) -> None:  # noqa: F811
    """Same model, fp32, greedy: the two engines must agree token for token.

    They do here. Two things to know when reading the comparison: this random tiny model mostly
    echoes its last token (the base answers newlines to every prompt; the adapter changes that), so
    the real-model check is the benchmark's (bench/bench_generation.py compares both engines on
    SmolLM2); and when the tokens do not form whole UTF-8 characters, vLLM's detokenizer leaves
    those bytes out while transformers' decode shows each as U+FFFD. The token counts still match.
    """
    local = await TransformersBackend.open(
        tiny_llama, base_model=served.base_model, queue=GenerationQueue(1, 8), adapters={"alpha": lora_alpha}
    )
    prompts = [
        [{"role": "user", "content": "hello there"}],
        [{"role": "system", "content": "Answer from the sources."}, {"role": "user", "content": "What is backpropagation?"}],
        [{"role": "user", "content": "word " * 100}],
    ]
    try:
        for model in (None, "alpha"):
            for messages in prompts:
                req = GenerationRequest(messages, max_tokens=24, model=model)
                a, b = await served.complete(req), await local.complete(req)
                assert (a.usage, a.finish_reason) == (b.usage, b.finish_reason), (model, messages)
                assert a.text == b.text.replace("\ufffd", ""), (model, messages)
    finally:
        await local.aclose()


async def test_an_adapter_on_the_last_layers_only_serves_as_transformers_runs_it(
    served: VLLMBackend, tiny_llama: Path, tmp_path: Path
) -> None:
    """Our CPU training puts LoRA on the last N layers only (peft's layers_to_transform); vLLM must
    load such an adapter and apply it to those layers, token for token as peft does."""
    from transformers import AutoConfig

    from tests.generation.adapters import build_lora

    last = int(AutoConfig.from_pretrained(tiny_llama).num_hidden_layers) - 1
    tail = build_lora(tiny_llama, tmp_path / "tail", seed=7, layers=[last])
    await served.load_adapter("tail", tail)
    local = await TransformersBackend.open(tiny_llama, base_model=served.base_model, queue=GenerationQueue(1, 8),
                                           adapters={"tail": tail})
    try:
        messages = [{"role": "user", "content": "word " * 60}]
        base = await served.complete(GenerationRequest(messages, max_tokens=16))
        a = await served.complete(GenerationRequest(messages, max_tokens=16, model="tail"))
        b = await local.complete(GenerationRequest(messages, max_tokens=16, model="tail"))
        assert a.text != base.text, "the adapter must change the output, or this test shows nothing"
        assert a.text == b.text.replace("\ufffd", "") and a.usage == b.usage
    finally:
        await local.aclose()
        await served.unload_adapter("tail")


async def test_the_watchdog_restarts_a_killed_server_with_its_adapters(served: VLLMBackend, lora_beta: Path) -> None:  # noqa: F811
    server = served.server
    assert server is not None and server.pid is not None
    await served.load_adapter("beta", lora_beta)  # loaded at run time, before the crash
    old = server.pid
    os.kill(old, signal.SIGKILL)
    with pytest.raises(EngineUnavailable):
        await served.complete(GenerationRequest(PROMPT, max_tokens=2))

    for _ in range(240):
        if server.restarts and server.ready:
            break
        await asyncio.sleep(1.0)
    assert server.restarts == 1 and server.pid not in (None, old)
    assert group_is_gone(old), "the killed server's engine processes must not outlive it"
    assert await served.models() == [served.base_model, "alpha", "beta"]
    done = await served.complete(GenerationRequest(PROMPT, max_tokens=4, model="beta"))
    assert done.usage.completion_tokens > 0
