"""Small request-scoped helpers shared by the routes."""

from __future__ import annotations

from fastapi import Request

from lorebase.errors import EngineUnavailable, UnknownModel
from lorebase.services import Services


def services(request: Request) -> Services:
    return request.app.state.services


def generator_ready(svc: Services) -> None:
    """503 until the generator answers: with Retry-After while it starts, without once it failed."""
    if svc.generator is None or svc.answers is None or svc.summaries is None or not svc.readiness.is_ready("generator"):
        starting = svc.readiness.status == "starting"
        raise EngineUnavailable(svc.readiness.waiting_message("generator"), retry_after_s=5 if starting else None)


async def resolve_model(svc: Services, requested: str | None) -> str | None:
    """None for the base model, the adapter's name for an adapter; an unknown name is a 404.
    No model, or the alias (server.model_alias), means the promoted adapter when there is one."""
    generator_ready(svc)
    assert svc.generator is not None
    adapter = svc.pick_adapter(requested)
    if adapter is None:
        return None
    names = await svc.generator.models()
    if adapter in names:
        return adapter
    known = ", ".join([svc.settings.server.model_alias, *names])
    raise UnknownModel(f"the model {requested!r} does not exist; available: {known}")
