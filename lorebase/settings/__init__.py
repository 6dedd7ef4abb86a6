"""The one settings tree.

Read, lowest priority first, from: defaults, an optional YAML file (``lorebase.yaml`` in the
working directory, or the file named by ``LOREBASE_CONFIG``), then ``LOREBASE_*`` environment
variables (nested keys joined by ``__``, e.g. ``LOREBASE_SERVER__PORT=9000``). Constructors take
the part they need; nothing reads settings globally.

The sections live in one module per group (``models``, ``ingest``, ``retrieval``, ``generation``,
``server``, ``tuning``, ``scheduler``) and the tree that holds them in ``tree``; everything is
imported from here: ``from lorebase.settings import Settings, load_settings``.
"""

from lorebase.settings.generation import AnswerSettings, GenerationSettings
from lorebase.settings.ingest import URL_HOST_CLASSES, GitHubSettings, IngestSettings, TranscribeSettings
from lorebase.settings.models import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, DEFAULT_WHISPER, ModelSettings
from lorebase.settings.retrieval import IndexSettings, RetrievalSettings
from lorebase.settings.scheduler import MAX_INTERVAL_S, SchedulerSettings, SourceSpec, TrackedSourceSettings
from lorebase.settings.server import CpuSettings, ServerSettings, UISettings
from lorebase.settings.tree import Settings, load_settings, settings_rows
from lorebase.settings.tuning import EmbedderTuningSettings, EvalSettings, FinetuneSettings, QASettings

__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_GENERATOR",
    "DEFAULT_WHISPER",
    "MAX_INTERVAL_S",
    "URL_HOST_CLASSES",
    "AnswerSettings",
    "CpuSettings",
    "EmbedderTuningSettings",
    "EvalSettings",
    "FinetuneSettings",
    "GenerationSettings",
    "GitHubSettings",
    "IndexSettings",
    "IngestSettings",
    "ModelSettings",
    "QASettings",
    "RetrievalSettings",
    "SchedulerSettings",
    "ServerSettings",
    "Settings",
    "SourceSpec",
    "TrackedSourceSettings",
    "TranscribeSettings",
    "UISettings",
    "load_settings",
    "settings_rows",
]
