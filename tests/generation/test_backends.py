"""The transformers backend on the tiny Llama with real peft adapters, the stop-string scanner, and the factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from lorebase.errors import (
    EngineUnavailable,
    InvalidInput,
    ModelNotAvailable,
    Overloaded,
    PromptTooLong,
    SettingsError,
    UnknownModel,
)
from lorebase.generation.backend import Delta, GenerationRequest, Generator
from lorebase.generation.factory import open_generator
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.settings import Settings, load_settings
from tests.generation.adapters import lora_alpha, lora_beta  # noqa: F401  (fixtures)

# A prompt on which the tiny model answers with one newline per token, so every token is streamed.
NEWLINES = [{"role": "user", "content": "hello there"}]
PROMPT = [{"role": "user", "content": "The lecture explains gradient descent"}]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(tiny_llama: Path) -> AsyncIterator[TransformersBackend]:
    b = await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(2, 2))
    yield b
    await b.aclose()


def reference_greedy(model_dir: Path, messages: list[dict[str, str]], max_new: int, adapter: Path | None = None) -> tuple[str, int]:
    """Plain transformers + peft generate, no streaming: the text and the number of new tokens."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id
        )
    new = out[0, ids.shape[1] :]
    return str(tok.decode(new, skip_special_tokens=True)), int(new.numel())


async def deltas(gen: Generator, req: GenerationRequest) -> list[Delta]:
    return [d async for d in gen.stream(req)]


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_streamed_deltas_join_to_plain_greedy_generate(backend: TransformersBackend, tiny_llama: Path) -> None:
    got = await deltas(backend, GenerationRequest(NEWLINES, max_tokens=12))
    want_text, want_tokens = reference_greedy(tiny_llama, NEWLINES, 12)
    assert len(got) > 2, "tokens must arrive as they are made, not at the end"
    assert "".join(d.text for d in got) == want_text
    *body, last = got
    assert all(d.finish_reason is None and d.usage is None for d in body)
    assert last.finish_reason == "length" and last.usage is not None
    assert last.usage.completion_tokens == want_tokens
    assert last.usage.prompt_tokens == backend.count_prompt_tokens(NEWLINES)

    done = await backend.complete(GenerationRequest(NEWLINES, max_tokens=12))
    assert done.text == want_text and done.finish_reason == "length"


async def test_closing_the_stream_stops_generation(backend: TransformersBackend) -> None:
    req = GenerationRequest(NEWLINES, max_tokens=1500)
    async with aclosing(backend.stream(req)) as stream:
        async for _ in stream:
            break
    run = backend.last_run
    assert run is not None and run.cancel.is_set()
    assert run.generated < 100, f"generated {run.generated} tokens after the consumer left"
    # The model is free again at once: the next request is not stuck behind the abandoned one.
    done = await asyncio.wait_for(backend.complete(GenerationRequest(NEWLINES, max_tokens=3)), 30)
    assert done.usage.completion_tokens == 3


async def test_cancelling_the_consumer_task_stops_generation(backend: TransformersBackend) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(GenerationRequest(NEWLINES, max_tokens=1500)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    run = backend.last_run
    assert run is not None and run.generated < 100


async def test_adapters_load_list_switch_and_unload(
    backend: TransformersBackend,
    tiny_llama: Path,
    lora_alpha: Path,  # noqa: F811
    lora_beta: Path,  # noqa: F811
) -> None:
    base_before = await backend.complete(GenerationRequest(PROMPT, max_tokens=10))
    await backend.load_adapter("alpha", lora_alpha)
    await backend.load_adapter("beta", lora_beta)
    assert await backend.models() == ["tiny", "alpha", "beta"]

    alpha = await backend.complete(GenerationRequest(PROMPT, max_tokens=10, model="alpha"))
    base = await backend.complete(GenerationRequest(PROMPT, max_tokens=10))
    assert alpha.text == reference_greedy(tiny_llama, PROMPT, 10, adapter=lora_alpha)[0]
    assert alpha.text != base.text
    assert base.text == base_before.text, "the base model must run with the adapters off"

    await backend.unload_adapter("alpha")
    assert await backend.models() == ["tiny", "beta"]
    with pytest.raises(UnknownModel, match="alpha"):
        await backend.complete(GenerationRequest(PROMPT, max_tokens=2, model="alpha"))
    await backend.unload_adapter("beta")  # the last one: back to the plain model
    assert await backend.models() == ["tiny"]
    assert (await backend.complete(GenerationRequest(PROMPT, max_tokens=10))).text == base_before.text


async def test_unknown_names_and_bad_adapters_are_refused(backend: TransformersBackend, tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match="'nope'.*available: tiny"):
        await backend.complete(GenerationRequest(PROMPT, model="nope"))
    with pytest.raises(UnknownModel):
        await backend.unload_adapter("nope")
    with pytest.raises(ModelNotAvailable, match="adapter_config.json"):
        await backend.load_adapter("empty", tmp_path)
    with pytest.raises(InvalidInput, match="base model"):
        await backend.load_adapter("tiny", tmp_path)
    with pytest.raises(InvalidInput, match="json_schema"):
        await backend.complete(GenerationRequest(PROMPT, json_schema={"type": "object"}))


async def test_a_prompt_over_the_context_is_refused_with_both_sizes(backend: TransformersBackend) -> None:
    messages = [{"role": "user", "content": "gradient descent " * 1500}]
    size = backend.count_prompt_tokens(messages)
    assert size > backend.context_length
    with pytest.raises(PromptTooLong) as e:
        await backend.complete(GenerationRequest(messages))
    assert str(size) in str(e.value) and str(backend.context_length) in str(e.value)


async def test_max_tokens_shrink_to_what_fits_after_the_prompt(backend: TransformersBackend) -> None:
    def prompt(n: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": "x " * n}]

    lo, hi = 1, 4 * backend.context_length  # the longest prompt that leaves at most 10 tokens free
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if backend.count_prompt_tokens(prompt(mid)) <= backend.context_length - 10 else (lo, mid - 1)
    messages = prompt(lo)
    room = backend.context_length - backend.count_prompt_tokens(messages)
    assert 10 <= room < 20
    done = await backend.complete(GenerationRequest(messages, max_tokens=500))
    assert done.usage.prompt_tokens + done.usage.completion_tokens <= backend.context_length
    assert done.usage.completion_tokens == room or done.finish_reason == "stop"


async def test_stop_strings_cut_the_answer(backend: TransformersBackend, lora_alpha: Path) -> None:  # noqa: F811
    await backend.load_adapter("alpha", lora_alpha)
    try:
        full = await backend.complete(GenerationRequest(PROMPT, max_tokens=20, model="alpha"))
        assert len(full.text) > 6
        stop = full.text[3:5]
        cut = await backend.complete(GenerationRequest(PROMPT, max_tokens=20, model="alpha", stop=[stop]))
        assert cut.text == full.text[: full.text.index(stop)]
        assert cut.finish_reason == "stop"
        assert cut.usage.completion_tokens < full.usage.completion_tokens
    finally:
        await backend.unload_adapter("alpha")


async def test_sampling_with_a_seed_repeats(backend: TransformersBackend) -> None:
    req = GenerationRequest(PROMPT, max_tokens=16, temperature=1.5, seed=7)
    a, b = await backend.complete(req), await backend.complete(req)
    assert a.text == b.text


async def test_requests_beyond_the_queue_are_refused(tiny_llama: Path) -> None:
    small = await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 0))
    first = asyncio.Event()

    async def long_answer() -> None:
        async for _ in small.stream(GenerationRequest(NEWLINES, max_tokens=400)):
            first.set()

    task = asyncio.create_task(long_answer())
    await asyncio.wait_for(first.wait(), 30)
    with pytest.raises(Overloaded):
        await small.complete(GenerationRequest(NEWLINES, max_tokens=2))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await small.complete(GenerationRequest(NEWLINES, max_tokens=2))).usage.completion_tokens == 2


# --- the factory ---------------------------------------------------------------------------------


@pytest.fixture
def gen_settings(tmp_path: Path, tiny_llama: Path) -> Settings:
    s = load_settings(home=tmp_path / "home", models={"generator": str(tiny_llama)})
    s.ensure_home()
    return s


async def test_factory_builds_the_transformers_backend_with_start_adapters(gen_settings: Settings, lora_alpha: Path) -> None:  # noqa: F811
    gen_settings.generation.backend = "transformers"
    gen_settings.generation.adapters = {"alpha": lora_alpha}
    gen = await open_generator(gen_settings)
    try:
        assert isinstance(gen, TransformersBackend)
        assert await gen.models() == [Path(gen_settings.models.generator).name, "alpha"]
        assert gen.context_length == 2048
        assert (await gen.complete(GenerationRequest(PROMPT, max_tokens=2, model="alpha"))).usage.completion_tokens == 2
    finally:
        await gen.aclose()


async def test_transformers_dtype_setting_loads_bf16_weights_and_adapters(gen_settings: Settings, lora_alpha: Path) -> None:  # noqa: F811
    import torch

    gen_settings.generation.backend = "transformers"
    gen_settings.generation.transformers_dtype = "bfloat16"
    gen_settings.generation.adapters = {"alpha": lora_alpha}
    gen = await open_generator(gen_settings)
    try:
        assert isinstance(gen, TransformersBackend)
        # The model's own weights are bf16; peft keeps the adapter's LoRA weights in float32.
        assert {p.dtype for n, p in gen._base.named_parameters() if "lora_" not in n} == {torch.bfloat16}
        for model in (None, "alpha"):
            out = await gen.complete(GenerationRequest(PROMPT, max_tokens=3, model=model))
            assert out.usage.completion_tokens == 3
    finally:
        await gen.aclose()


async def test_factory_explains_what_is_missing(gen_settings: Settings) -> None:
    gen_settings.generation.backend = "openai"
    with pytest.raises(SettingsError, match="base_url"):
        await open_generator(gen_settings)

    gen_settings.generation.backend = "vllm"
    gen_settings.generation.vllm_python = gen_settings.home / "no-such-venv" / "bin" / "python"
    with pytest.raises(EngineUnavailable, match="make install-vllm"):
        await open_generator(gen_settings)


async def test_repetition_penalty_reaches_the_model(tiny_llama: Path) -> None:
    """A random model repeats itself under greedy decoding; the penalty must change what it writes."""
    from lorebase.generation.backend import GenerationRequest
    from lorebase.generation.queue import GenerationQueue
    from lorebase.generation.transformers_backend import TransformersBackend

    backend = await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 1))
    msgs = [{"role": "user", "content": "the lecture explains"}]
    plain = await backend.complete(GenerationRequest(messages=msgs, max_tokens=24))
    penalised = await backend.complete(GenerationRequest(messages=msgs, max_tokens=24, repetition_penalty=2.0))
    await backend.aclose()
    assert plain.text != penalised.text
    assert len(set(penalised.text.split())) >= len(set(plain.text.split()))
