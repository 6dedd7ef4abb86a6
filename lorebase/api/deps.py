"""Small request-scoped helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request

from lorebase.errors import EngineUnavailable, UnknownModel
from lorebase.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


def generator_ready(svc: Services) -> None:
    if svc.generator is None or svc.answers is None or svc.summaries is None:
        raise EngineUnavailable("the generator is not running (it may still be starting); try again shortly")


async def resolve_model(svc: Services, requested: str | None) -> str | None:
    """None for the base model, the adapter's name for an adapter; an unknown name is a 404."""
    generator_ready(svc)
    assert svc.generator is not None
    base = svc.generator.base_model
    if requested in (None, "", base):
        return None
    names = await svc.generator.models()
    if requested in names:
        return requested
    raise UnknownModel(f"the model {requested!r} does not exist; available: {', '.join(names)}")
