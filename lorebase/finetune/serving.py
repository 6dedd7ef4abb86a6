"""The promoted adapter in a running server, without a restart.

:func:`sync_adapters` makes the generator hold what the registry says should be served: the
promoted adapter, and the one promoted before it (kept loaded so a rollback is instant). Registry
adapters no longer wanted are unloaded; adapters from ``generation.adapters`` are left alone. It
uses ``Generator.load_adapter`` / ``unload_adapter``: peft in-process for the transformers backend,
vLLM's runtime LoRA endpoints for the vllm and openai backends.

The API calls :func:`load_promoted_adapter` once the generator is up and runs an
:class:`AdapterWatcher` beside it, which repeats the sync every ``finetune.adapter_poll_s`` seconds,
so `lorebase adapters promote|rollback` in another process takes effect in the server within that
time. ``watcher.default_model`` is the adapter a request that names no model should use.

Across hosts the registry (a database row per adapter, its status saying which is promoted) is
what every replica's watcher follows, and the adapter files live in ``finetune.adapters_dir``, a
folder every app host and the model server mount. A recorded path that does not exist here (the
folder is mounted elsewhere on the host that trained it) is looked up by name in our folder.

**Merged serving** (``generation.promoted_serving``; ``auto`` means merged on vLLM's CPU build and
LoRA on a GPU, where runtime LoRA costs little): a running server also merges the promoted adapter
into the base weights (:mod:`lorebase.finetune.merge`) and has the vLLM backend serve it from an
engine of its own, switched blue-green; a rollback goes through the same switch, and a rollback to
the base model stops the merged engine. The promoted adapter stays loaded as LoRA on the base engine
meanwhile, so it is served from the moment it is promoted, faster once its engine is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorebase.finetune.registry import Adapter, Registry
from lorebase.generation.backend import Generator
from lorebase.settings import Settings
from lorebase.store import Store

if TYPE_CHECKING:
    from lorebase.generation.vllm_backend import VLLMBackend

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    default: str | None  # the promoted adapter's name; None: the base model serves
    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)


def locate(recorded: str, adapters_dir: Path | None) -> Path:
    """Where this host finds a registered adapter: its recorded path, or the folder of that name in
    our adapters folder when the recorded one is not here."""
    path = Path(recorded)
    if adapters_dir is None or path.exists():
        return path
    here = adapters_dir / path.name
    return here if here.exists() else path


async def sync_adapters(store: Store, generator: Generator, adapters_dir: Path | None = None) -> SyncResult:
    registry = Registry(store)
    promoted = registry.promoted()
    previous = registry.previous()
    want = {a.name: locate(a.path, adapters_dir) for a in (promoted, previous) if a is not None}
    known = {a.name for a in registry.list()}
    have = set(await generator.models()) - {generator.base_model}
    result = SyncResult(promoted.name if promoted is not None else None)
    for name in sorted((have & known) - set(want)):
        await generator.unload_adapter(name)
        result.unloaded.append(name)
    for name, path in want.items():
        if name not in have:
            await generator.load_adapter(name, path)
            result.loaded.append(name)
    return result


async def load_promoted_adapter(store: Store, generator: Generator, adapters_dir: Path | None = None) -> str | None:
    """Load the promoted adapter (and the previous one) at start; returns the default adapter's name."""
    result = await sync_adapters(store, generator, adapters_dir)
    if result.default:
        log.info("serving the promoted adapter %s by default", result.default)
    return result.default


def merged_backend(settings: Settings, generator: Generator) -> VLLMBackend | None:
    """The backend that will serve the promoted adapter from merged weights, or None (LoRA only)."""
    from lorebase.generation.vllm_backend import VLLMBackend
    from lorebase.generation.vllm_server import is_cpu_build

    mode = settings.generation.promoted_serving
    if mode == "lora" or not isinstance(generator, VLLMBackend) or not generator.can_serve_merged:
        return None
    if mode == "auto" and not is_cpu_build(settings.generation.vllm_python):
        return None  # the GPU build: runtime LoRA is cheap there, and one engine holds every adapter
    return generator


class AdapterWatcher:
    """Keeps a generator in step with the registry while a server runs (and, with merged serving,
    its merged engine: see the module docstring)."""

    RETRY_FAILED_MERGE_S = 600.0  # a merged engine that failed to start is tried again after this long

    def __init__(self, store: Store, generator: Generator, interval_s: float, settings: Settings | None = None,
                 adapters_dir: Path | None = None) -> None:
        self.store = store
        self.generator = generator
        self.interval_s = interval_s
        self.adapters_dir = adapters_dir if adapters_dir is not None else (settings.adapters_dir if settings is not None else None)
        self.default_model: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._merged = merged_backend(settings, generator) if settings is not None else None
        self._settings = settings
        self._switch: asyncio.Task[None] | None = None
        self._failed: dict[str, float] = {}  # adapter -> when its merged engine last failed

    def _want_merged(self) -> Adapter | None:
        return Registry(self.store).promoted()

    async def sync_merged(self) -> None:
        """Start the switch to what should be served merged, unless one is under way; don't wait for it."""
        lane = self._merged
        if lane is None or (self._switch is not None and not self._switch.done()):
            return
        want = self._want_merged()
        current = lane.merged.adapter if lane.merged is not None else None
        if (want.name if want else None) == current:
            return
        if want is not None and time.monotonic() - self._failed.get(want.name, -1e9) < self.RETRY_FAILED_MERGE_S:
            return
        self._switch = asyncio.create_task(self._switch_to(want), name="lorebase-merged-switch")

    async def _switch_to(self, want: Adapter | None) -> None:
        from lorebase.finetune.merge import ensure_merged, prune_merged
        from lorebase.offline_models import generator_path

        lane = self._merged
        assert lane is not None and self._settings is not None
        settings = self._settings
        try:
            if want is None:
                await lane.stop_merged()
                log.info("no adapter promoted: the merged engine is stopped, the base model serves")
                return
            base_dir = generator_path(settings, prepare_missing=False)
            folder = await asyncio.to_thread(ensure_merged, settings, base_dir, want.name, Path(want.path))
            await lane.serve_merged(want.name, folder)
            previous = Registry(self.store).previous()
            keep = {a.name for a in (want, previous) if a is not None}
            await asyncio.to_thread(prune_merged, settings, keep)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the adapter is still served through LoRA: log, try again later
            if want is not None:
                self._failed[want.name] = time.monotonic()
            log.warning("serving %s from merged weights failed (it stays on the LoRA path): %s",
                        want.name if want else "the base model", e)

    def status(self) -> dict[str, Any]:
        """For /healthz: how the promoted adapter is served."""
        if self._merged is None:
            return {"promoted_serving": "lora"}
        return {"promoted_serving": "merged", "switching": self._switch is not None and not self._switch.done()}

    async def sync_once(self) -> SyncResult:
        result = await sync_adapters(self.store, self.generator, self.adapters_dir)
        if result.default != self.default_model:
            log.info("default adapter: %s -> %s", self.default_model or "base model", result.default or "base model")
        self.default_model = result.default
        return result

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync_once()
                await self.sync_merged()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bad adapter folder must not stop serving: log and try again later
                log.warning("adapter sync failed: %s", e)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="lorebase-adapter-watcher")

    async def stop(self) -> None:
        for task in (self._task, self._switch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._switch = None
