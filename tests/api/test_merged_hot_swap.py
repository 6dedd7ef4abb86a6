"""Promotion and rollback reach a running server that serves the promoted adapter from merged weights
(`generation.promoted_serving: merged`): the real vLLM server on the tiny Llama, real peft LoRA
adapters, the real openai client. Each change is served through LoRA at once, then switched
blue-green to an engine on the merged weights; a rollback goes through the same switch."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from lorebase.finetune.registry import Registry
from lorebase.settings import load_settings
from lorebase.store import Store
from lorebase.store.models import AdapterVersion
from tests.api.conftest import Running, free_port, ingest_corpus, serve
from tests.api.test_adapter_hot_swap import alias_parent, reply
from tests.conftest import REPO_ROOT
from tests.generation.adapters import build_lora

VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is missing: run `make install-vllm`"),
]


@pytest.fixture(scope="module")
def merged_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Iterator[tuple[Running, Store]]:
    tmp = tmp_path_factory.mktemp("merged-swap")
    home = tmp / "home"
    settings = load_settings(
        home=home, models={"generator": str(tiny_llama)}, server={"port": free_port()}, ui={"enabled": False},
        generation={"backend": "vllm", "vllm_python": str(VLLM_PYTHON), "vllm_port": free_port(), "vllm_kv_cache_gib": 1,
                    "max_new_tokens": 24, "promoted_serving": "merged",
                    "vllm_dtype": "float32"},  # the merged engine answers as the LoRA path did, token for token, in fp32
        finetune={"adapter_poll_s": 0.1},
    )
    ingest_corpus(settings, tmp)
    store = Store(settings.db_url)
    with store.session() as s:
        for seed, name in ((1, "a1"), (2, "a2")):
            folder = build_lora(tiny_llama, settings.adapters_dir / name, seed=seed)
            s.add(AdapterVersion(name=name, path=str(folder), base_model="tiny", data_hash=f"{seed:064d}", status="candidate"))
    try:
        yield from ((running, store) for running in serve(settings, timeout_s=600))
    finally:
        store.close()


def engines(running: Running) -> dict[str, dict[str, object]]:
    return httpx.get(running.url + "/healthz", timeout=10).json()["engines"]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def merged_on(running: Running, adapter: str) -> bool:
    got = engines(running).get("merged")
    return got is not None and got["adapter"] == adapter and got["ready"] is True


def test_promotion_and_rollback_switch_the_merged_engine(merged_server: tuple[Running, Store]) -> None:
    running, store = merged_server
    alias = running.settings.server.model_alias
    client = OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    base = client.models.list().data[0].id
    reg = Registry(store)
    assert engines(running).keys() == {"base"}, "nothing promoted: one engine"
    base_text = reply(client, base)

    reg.promote("a1")
    wait_until(lambda: alias_parent(client, alias)[0] == "a1", "a1 to be the default (through LoRA at first)")
    a1_text = reply(client, "a1")
    assert a1_text != base_text, "the random LoRA must change greedy output, or this test proves nothing"
    wait_until(lambda: merged_on(running, "a1"), "an engine on a1's merged weights")
    assert reply(client, alias) == a1_text, "the merged engine answers as the LoRA path did"
    assert reply(client, base) == base_text, "the base model stays the base model"
    merged_pid = engines(running)["merged"]["pid"]

    reg.promote("a2")
    wait_until(lambda: merged_on(running, "a2"), "the switch to a2's merged engine")
    assert engines(running)["merged"]["pid"] != merged_pid
    assert reply(client, alias) == reply(client, "a2") != a1_text
    assert reply(client, "a1") == a1_text, "the previous adapter stays available (LoRA) for rollback"

    reg.rollback()
    wait_until(lambda: alias_parent(client, alias)[0] == "a1", "the rollback to a1")
    wait_until(lambda: merged_on(running, "a1"), "the switch back to a1's merged engine")
    assert reply(client, alias) == a1_text
    merged = running.settings.models_dir / "merged"
    wait_until(lambda: sorted(p.name for p in merged.iterdir() if not p.name.startswith(".")) == ["a1"],
               "a2's merged folder (rolled back, not kept for rollback) to be removed", timeout=30)
