"""Promotion, rollback and hot loading into a running transformers backend; the gate end to end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorebase.errors import InvalidInput, NotFound
from lorebase.finetune.adapter_training import train_adapter
from lorebase.finetune.gate_run import record, run_gate
from lorebase.finetune.qa_generation import QAGenerator
from lorebase.finetune.registry import Registry
from lorebase.finetune.retrieval import retriever
from lorebase.finetune.serving import (
    AdapterWatcher,
    load_promoted_adapter,
    sync_adapters,
)
from lorebase.generation.backend import GenerationRequest
from lorebase.generation.queue import GenerationQueue
from lorebase.generation.transformers_backend import TransformersBackend
from lorebase.services import Services
from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import AdapterVersion
from tests.generation.adapters import build_lora


def register(store: Store, settings: Settings, tiny_llama: Path, name: str, seed: int) -> Path:
    """A real peft adapter folder (random LoRA on the tiny Llama) and its candidate row."""
    folder = build_lora(tiny_llama, settings.adapters_dir / name, seed=seed)
    with store.session() as s:
        s.add(AdapterVersion(name=name, path=str(folder), base_model="tiny", data_hash=f"{seed:064d}", status="candidate"))
    return folder


@pytest.fixture
def registry_store(settings: Settings, tiny_llama: Path) -> Iterator[tuple[Store, Settings]]:
    store = Store(settings.db_url)
    for i, name in enumerate(("a1", "a2", "a3"), start=1):
        register(store, settings, tiny_llama, name, seed=i)
    yield store, settings
    store.close()


def statuses(reg: Registry) -> dict[str, str]:
    return {a.name: a.status for a in reg.list()}


def test_promote_and_rollback_state_changes(registry_store: tuple[Store, Settings]) -> None:
    store, _ = registry_store
    reg = Registry(store)
    assert reg.promoted() is None
    with pytest.raises(InvalidInput):
        reg.rollback()
    reg.promote("a1")
    reg.promote("a2")
    assert statuses(reg) == {"a1": "retired", "a2": "promoted", "a3": "candidate"}
    assert reg.previous().name == "a1"  # type: ignore[union-attr]
    reg.promote("a3")
    assert statuses(reg) == {"a1": "retired", "a2": "retired", "a3": "promoted"}

    out, now = reg.rollback()
    assert (out.name, now.name if now else None) == ("a3", "a2")
    assert statuses(reg) == {"a1": "retired", "a2": "promoted", "a3": "rejected"}
    assert "rolled_back_at" in reg.get("a3").metrics
    out, now = reg.rollback()
    assert (out.name, now.name if now else None) == ("a2", "a1")
    out, now = reg.rollback()
    assert (out.name, now) == ("a1", None), "past the first promotion the base model serves"
    assert reg.promoted() is None
    with pytest.raises(NotFound):
        reg.promote("nope")
    reg.promote("a3")  # a rolled-back adapter can be promoted again deliberately
    assert reg.promoted().name == "a3"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        reg.set_status("a3", "rejected")


def test_promoted_adapter_is_hot_loaded_into_a_running_backend(registry_store: tuple[Store, Settings], tiny_llama: Path) -> None:
    store, _ = registry_store
    reg = Registry(store)

    async def go() -> None:
        backend = await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 4))
        try:
            assert await load_promoted_adapter(store, backend) is None
            assert await backend.models() == ["tiny"]
            watcher = AdapterWatcher(store, backend, interval_s=0.05)
            watcher.start()

            async def wait_for(models: set[str], default: str | None) -> None:
                for _ in range(200):
                    if set(await backend.models()) == models and watcher.default_model == default:
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"backend has {await backend.models()}, default {watcher.default_model}")

            reg.promote("a1")  # as `lorebase adapters promote a1` would, from another process
            await wait_for({"tiny", "a1"}, "a1")
            out = await backend.complete(GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=4, model="a1"))
            assert out.usage.completion_tokens >= 1
            reg.promote("a2")
            await wait_for({"tiny", "a1", "a2"}, "a2")  # the previous one stays loaded for rollback
            reg.promote("a3")
            await wait_for({"tiny", "a2", "a3"}, "a3")  # a1 is two promotions back: unloaded
            reg.rollback()
            await wait_for({"tiny", "a1", "a2"}, "a2")
            await watcher.stop()
            result = await sync_adapters(store, backend)
            assert result.loaded == [] and result.unloaded == [] and result.default == "a2"
        finally:
            await backend.aclose()

    asyncio.run(go())


@pytest.mark.slow
def test_gate_end_to_end_records_a_decision(services: Services) -> None:
    # A larger test split, so the small corpus surely has held-out sources.
    settings = services.settings.model_copy(update={
        "qa": services.settings.qa.model_copy(update={"train_share": 0.5, "validation_share": 0.1})})
    gen = QAGenerator(settings, services.store, embed=services.search.embedder.embed, retrieve=retriever(services.search))
    asyncio.run(gen.generate())
    retrieve = retriever(services.search)
    outcome = train_adapter(settings, services.store, retrieve, name="g1", max_examples=4, max_steps=1, progress=False)
    report = asyncio.run(run_gate(settings, services.store, retrieve, services.search.embedder.embed, outcome.adapter.name))
    summary = report.summary()
    assert report.current == "base" and report.examples >= 1
    # The answer benchmark's metrics, both models on the same held-out examples, with the noise of each difference.
    assert set(summary["metrics"]["candidate"]) == {"verified_and_cites_gold", "verified", "cites_gold", "rougeL", "similarity",
                                                     "abstention", "false_abstention"}
    assert set(summary["metrics"]["current"]) == set(summary["metrics"]["candidate"])
    assert summary["faithfulness_method"] == "none"  # no judge configured
    measured = {k: v for k, v in summary["ci95"].items() if v is not None}
    assert measured, "the noise of at least one difference is measured"
    for name, (lo, hi) in measured.items():
        assert -1.0 <= lo <= hi <= 1.0
        assert report.decision.noise[name] == round((hi - lo) / 2, 4)
    assert report.decision.main_metric == "verified_and_cites_gold"
    adapter = record(services.store, report, promote=True)
    assert adapter.status == ("promoted" if report.decision.passed else "rejected")
    stored = Registry(services.store).get("g1").metrics["gate"]
    assert stored["decision"]["passed"] == report.decision.passed and Path(stored["report"]).is_file()


def test_replicas_on_two_hosts_follow_promotions_from_a_shared_adapters_folder(
    tmp_path: Path, tiny_llama: Path, postgres_url: str
) -> None:
    """Two app hosts, one PostgreSQL, one adapters folder both mount (finetune.adapters_dir). The
    registry rows name the folder as the training host mounts it (elsewhere): each replica finds
    the adapter by name in its own mount, and follows promotions and rollbacks made by a third."""
    from lorebase.settings import load_settings

    shared = tmp_path / "shared-adapters"
    hosts = [load_settings(home=tmp_path / h, database_url=postgres_url, finetune={"adapters_dir": str(shared)})
             for h in ("host-1", "host-2")]
    assert all(h.adapters_dir == shared.resolve() for h in hosts)
    store = Store(postgres_url)
    with store.session() as s:
        for seed, name in ((1, "a1"), (2, "a2")):
            build_lora(tiny_llama, shared / name, seed=seed)
            s.add(AdapterVersion(name=name, path=f"/mnt/training-host/adapters/{name}", base_model="tiny",
                                 data_hash=f"{seed:064d}", status="candidate"))
    reg = Registry(store)

    async def go() -> None:
        backends = [await TransformersBackend.open(tiny_llama, base_model="tiny", queue=GenerationQueue(1, 4)) for _ in hosts]
        watchers = [AdapterWatcher(Store(h.db_url), b, interval_s=0.05, adapters_dir=h.adapters_dir)
                    for h, b in zip(hosts, backends, strict=True)]
        try:
            for w in watchers:
                w.start()

            async def all_serve(models: set[str], default: str | None) -> None:
                for _ in range(300):
                    got = [(set(await b.models()), w.default_model) for b, w in zip(backends, watchers, strict=True)]
                    if all(g == (models, default) for g in got):
                        return
                    await asyncio.sleep(0.05)
                raise AssertionError(f"replicas serve {got}, wanted {models} with default {default}")

            reg.promote("a1")  # from a third process, as `lorebase adapters promote` on the training host
            await all_serve({"tiny", "a1"}, "a1")
            reg.promote("a2")
            await all_serve({"tiny", "a1", "a2"}, "a2")
            reg.rollback()
            await all_serve({"tiny", "a1"}, "a1")
        finally:
            for w in watchers:
                await w.stop()
                w.store.close()
            for b in backends:
                await b.aclose()

    asyncio.run(go())
    store.close()
