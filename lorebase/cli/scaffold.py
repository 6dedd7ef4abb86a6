"""What most commands share: the settings loaded, the store or the services opened, and closed again
whatever happens. A command keeps only what is its own.

    with opened_store() as (settings, store): ...          # the database alone
    with built_services() as svc: ...                       # store, index, search, ingest (no model)
    async with running_services() as svc: ...               # the same with the generator started

Every import of substance happens inside the functions: `lorebase --help` imports each command
module, and must stay instant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorebase.services import Services
    from lorebase.settings import Settings
    from lorebase.store import Store


def settings_of(settings: Settings | None = None) -> Settings:
    """The settings given, else those of the environment and the settings file."""
    if settings is not None:
        return settings
    from lorebase.settings import load_settings

    return load_settings()


@contextmanager
def opened_store(settings: Settings | None = None, *, upgrade: bool = True) -> Iterator[tuple[Settings, Store]]:
    """The settings and the store (the data home made if missing, the schema upgraded unless told not to)."""
    from lorebase.store import Store

    settings = settings_of(settings)
    settings.ensure_home()
    store = Store(settings.db_url, upgrade=upgrade)
    try:
        yield settings, store
    finally:
        store.close()


@contextmanager
def built_services(settings: Settings | None = None, *, progress: bool = False) -> Iterator[Services]:
    """Everything but the generator (lorebase.services.Services.build)."""
    from lorebase.services import Services

    svc = Services.build(settings_of(settings), progress=progress)
    try:
        yield svc
    finally:
        svc.store.close()


@asynccontextmanager
async def running_services(settings: Settings | None = None, *, generator: bool = True, load_adapters: bool = True,
                           progress: bool = False) -> AsyncIterator[Services]:
    """The services with the generator started (unless `generator` is False), all closed at the end."""
    import asyncio

    from lorebase.services import Services

    svc = await asyncio.to_thread(Services.build, settings_of(settings), progress=progress)
    try:
        if generator:
            await svc.start_generator(load_adapters=load_adapters)
        yield svc
    finally:
        await svc.aclose()
