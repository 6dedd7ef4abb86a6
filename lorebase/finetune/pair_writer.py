"""Which generator writes self-instruct QA pairs: the strongest one available offline.

Writing training data is a batch job, so a model too slow to serve (the 1.5B `base` profile on 2
cores) can still write it. ``finetune.pair_writer`` names a profile or a model folder; ``auto``
takes the largest profile already prepared in this data home, and falls back to the served
generator when none is (nothing is prepared or downloaded for it).
"""

from __future__ import annotations

from lorebase import generator_profiles
from lorebase.generation.backend import Generator
from lorebase.offline_models import builtin_generator_dir
from lorebase.settings import Settings

LARGEST_FIRST = ("base", "small", "tiny")


def writer_model(settings: Settings) -> str:
    """The ``models.generator`` value the pair writer runs with."""
    chosen = settings.finetune.pair_writer
    if chosen != "auto":
        return chosen
    for name in LARGEST_FIRST:
        p = generator_profiles.PROFILES[name]
        if (builtin_generator_dir(settings, p) / "config.json").is_file():
            return name
    return settings.models.generator


def same_model(settings: Settings, model: str) -> bool:
    served = settings.models.generator
    return model == served or generator_profiles.profile(model) == generator_profiles.profile(served) is not None


async def open_pair_writer(settings: Settings, served: Generator | None) -> tuple[Generator, bool]:
    """(generator, opened here). The served generator when it is the writer; otherwise the writer
    in-process with transformers (the caller closes it when ``opened here``)."""
    from lorebase.generation.factory import open_generator

    model = writer_model(settings)
    if served is not None and same_model(settings, model):
        return served, False
    if same_model(settings, model):
        return await open_generator(settings, adapters={}), True
    writer = settings.model_copy(update={
        "models": settings.models.model_copy(update={"generator": model}),
        "generation": settings.generation.model_copy(update={"backend": "transformers", "model_name": None}),
    })
    return await open_generator(writer, adapters={}), True
