"""A running server follows the adapter registry: a promotion or rollback made elsewhere (as
`lorebase adapters promote|rollback` would, from another process) reaches it without a restart,
and the model alias serves whatever is promoted. Real server, real openai client, real peft LoRA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai import NotFoundError, OpenAI

from lorebase.finetune.registry import Registry
from lorebase.store import Store
from lorebase.store.models import AdapterVersion
from tests.api.conftest import Running, api_settings, ingest_corpus, serve
from tests.generation.adapters import build_lora

PROMPT = [{"role": "user", "content": "Name the scheduler's retry policy."}]


@pytest.fixture(scope="module")
def hot(tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path, api_db: str | None) -> Iterator[tuple[Running, Store]]:
    tmp = tmp_path_factory.mktemp("hot")
    settings = api_settings(tmp / "home", tiny_llama, api_db)
    settings = settings.model_copy(update={"finetune": settings.finetune.model_copy(update={"adapter_poll_s": 0.1})})
    ingest_corpus(settings, tmp)
    store = Store(settings.db_url)
    with store.session() as s:
        for seed, name in ((1, "a1"), (2, "a2")):
            folder = build_lora(tiny_llama, settings.adapters_dir / name, seed=seed)
            s.add(AdapterVersion(name=name, path=str(folder), base_model="tiny", data_hash=f"{seed:064d}", status="candidate"))
    try:
        yield from ((running, store) for running in serve(settings))
    finally:
        store.close()


def reply(client: OpenAI, model: str) -> str:
    out = client.chat.completions.create(model=model, messages=PROMPT, max_tokens=12, temperature=0,
                                         extra_body={"mode": "chat"})
    return out.choices[0].message.content or ""


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alias_parent(client: OpenAI, alias: str) -> tuple[str | None, set[str]]:
    cards = client.models.list().data
    ids = {c.id for c in cards}
    parent = next(getattr(c, "parent", None) for c in cards if c.id == alias)
    return parent, ids


def test_promotion_and_rollback_reach_the_running_server(hot: tuple[Running, Store]) -> None:
    running, store = hot
    alias = running.settings.server.model_alias
    client = OpenAI(base_url=running.url + "/v1", api_key="unused")
    base = client.models.list().data[0].id
    reg = Registry(store)

    # Nothing promoted: the alias is the base model, and registry candidates are not served.
    parent, ids = alias_parent(client, alias)
    assert parent == base and "a1" not in ids
    base_text = reply(client, base)
    assert reply(client, alias) == base_text
    with pytest.raises(NotFoundError):
        reply(client, "a1")

    reg.promote("a1")
    wait_until(lambda: alias_parent(client, alias)[0] == "a1", "a1 to be served by default")
    a1_text = reply(client, "a1")
    assert a1_text != base_text, "the random LoRA must change greedy output, or this test proves nothing"
    assert reply(client, alias) == a1_text
    assert reply(client, base) == base_text  # the base model stays reachable by its own name

    reg.promote("a2")
    wait_until(lambda: alias_parent(client, alias)[0] == "a2", "a2 to be served by default")
    assert "a1" in alias_parent(client, alias)[1], "the previous adapter stays loaded for rollback"
    assert reply(client, alias) == reply(client, "a2")

    reg.rollback()
    wait_until(lambda: alias_parent(client, alias)[0] == "a1", "the rollback to a1")
    assert reply(client, alias) == a1_text
