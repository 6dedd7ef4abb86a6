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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from lorebase.finetune.registry import Registry
from lorebase.generation.backend import Generator
from lorebase.store import Store

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


class AdapterWatcher:
    """Keeps a generator in step with the registry while a server runs."""

    def __init__(self, store: Store, generator: Generator, interval_s: float, adapters_dir: Path | None = None) -> None:
        self.store = store
        self.generator = generator
        self.interval_s = interval_s
        self.adapters_dir = adapters_dir
        self.default_model: str | None = None
        self._task: asyncio.Task[None] | None = None

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
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bad adapter folder must not stop serving: log and try again later
                log.warning("adapter sync failed: %s", e)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="lorebase-adapter-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
