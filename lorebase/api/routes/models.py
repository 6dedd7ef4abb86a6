"""GET /v1/models and POST /v1/embeddings."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
from fastapi import APIRouter, Request

from lorebase.api import protocol as p
from lorebase.api.deps import services
from lorebase.api.errors import responses
from lorebase.errors import EngineUnavailable, UnknownModel
from lorebase.services import Services

router = APIRouter()


@router.get("/v1/models", responses=responses(503))
async def list_models(request: Request) -> p.ModelList:
    """The served models; while the generator starts, the ones it will serve (from the settings and
    the adapter registry), each with ``ready: false``."""
    svc = services(request)
    try:
        generator = svc.conversation.engine().generator
    except EngineUnavailable:
        return p.ModelList(data=_planned_cards(svc))
    base = generator.base_model
    names = await generator.models()
    cards = [p.ModelCard(id=base, ready=True)] + [p.ModelCard(id=n, parent=base, ready=True) for n in names if n != base]
    # The alias always answers with the served default; its parent says which model that is now.
    cards.append(p.ModelCard(id=svc.settings.server.model_alias, parent=svc.conversation.pick_adapter(None) or base, ready=True))
    embedder = svc.search.embedder.model_name
    cards.append(p.ModelCard(id=embedder, owned_by="lorebase-embedder"))
    return p.ModelList(data=cards)


def _planned_cards(svc: Services) -> list[p.ModelCard]:
    from lorebase.finetune.registry import Registry
    from lorebase.generation.factory import base_model_name

    base = base_model_name(svc.settings)
    registry = Registry(svc.store)
    promoted, previous = registry.promoted(), registry.previous()
    adapters = list(svc.settings.generation.adapters) + [a.name for a in (promoted, previous) if a is not None]
    cards = [p.ModelCard(id=base, ready=False)]
    cards += [p.ModelCard(id=n, parent=base, ready=False) for n in dict.fromkeys(adapters) if n != base]
    cards.append(p.ModelCard(id=svc.settings.server.model_alias, parent=promoted.name if promoted else base, ready=False))
    cards.append(p.ModelCard(id=svc.search.embedder.model_name, owned_by="lorebase-embedder"))
    return cards


@router.post("/v1/embeddings", responses=responses(404))
async def embeddings(req: p.EmbeddingRequest, request: Request) -> p.EmbeddingResponse:
    svc = services(request)
    emb = svc.search.embedder
    if req.model != emb.model_name:
        raise UnknownModel(f"the embedding model {req.model!r} does not exist; available: {emb.model_name}")
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    vectors = await asyncio.to_thread(emb.embed, texts)
    if req.dimensions is not None and req.dimensions != vectors.shape[1]:
        from lorebase.errors import InvalidInput

        raise InvalidInput(f"dimensions: this model gives {vectors.shape[1]}-dimensional vectors")
    tokens = sum(len(t.split()) for t in texts)  # whitespace words: the embedder's own count is not exposed
    def encode(v: np.ndarray) -> list[float] | str:
        if req.encoding_format == "base64":
            return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
        return v.tolist()

    return p.EmbeddingResponse(
        data=[p.Embedding(index=i, embedding=encode(v)) for i, v in enumerate(vectors)],
        model=emb.model_name,
        usage=p.Usage(prompt_tokens=tokens, total_tokens=tokens),
    )
