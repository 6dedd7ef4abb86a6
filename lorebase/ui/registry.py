"""How the Chainlit handlers reach the server's Services.

Chainlit imports its target module itself (by file path), so the handlers cannot be handed
arguments. The app factory's lifespan fills this one handle when the services are built and clears
it at shutdown; the handlers read it per request. One server per process, as `lorebase serve` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lorebase.errors import EngineUnavailable

if TYPE_CHECKING:
    from lorebase.services import Services

_services: Services | None = None


def install(services: Services) -> None:
    global _services
    _services = services


def clear(services: Services) -> None:
    """Forget `services` if it is still the installed one (a newer server may have replaced it)."""
    global _services
    if _services is services:
        _services = None


def installed() -> Services | None:
    return _services


def current() -> Services:
    if _services is None:
        raise EngineUnavailable("the chat UI is not attached to a running lorebase server")
    return _services
