"""The one place that builds lorebase's services, once per process, from the settings.

The API keeps the result on `app.state.services`; the UI handlers and the CLI use the same object.
Parts load lazily where they are heavy: the embedder on first search, the generator at `open`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lorebase.feedback import FeedbackService
from lorebase.settings import Settings
from lorebase.store import Store

if TYPE_CHECKING:
    from lorebase.finetune.serving import AdapterWatcher
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.backend import Generator
    from lorebase.generation.summarize import SummaryService
    from lorebase.index.search import SearchService
    from lorebase.index.sync import IndexSyncer
    from lorebase.ingest.service import IngestService

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    search: SearchService
    indexer: IndexSyncer
    ingest: IngestService
    feedback: FeedbackService
    generator: Generator | None = None
    answers: AnswerService | None = None
    summaries: SummaryService | None = None
    adapters: AdapterWatcher | None = None

    @classmethod
    def build(cls, settings: Settings, *, progress: bool = False) -> Services:
        """Everything but the generator: store, index, search, ingest, feedback."""
        from lorebase.index.embeddings import LorebaseEmbedding
        from lorebase.index.search import SearchService
        from lorebase.index.sync import IndexSyncer
        from lorebase.ingest.service import IngestService

        settings.ensure_home()
        store = Store(settings.db_url)
        embedder = LorebaseEmbedding.from_settings(settings)
        indexer = IndexSyncer(settings, store, embedder, progress=progress)
        reason = indexer.open()  # loads the saved index; rebuilds it from the store if damaged
        if reason:
            log.warning("dense index rebuilt at start: %s", reason)
        search = SearchService(settings, store, embedder=embedder, dense=indexer.dense)
        ingest = IngestService(settings, store, index=indexer, progress=progress)
        ingest.mark_interrupted()  # runs a killed process left "running" say so from now on
        return cls(settings, store, search, indexer, ingest, FeedbackService(store))

    async def start_generator(
        self, generator: Generator | None = None, *, load_adapters: bool = True, watch_adapters: bool = False
    ) -> None:
        """Start (or connect to) the configured generator; tests may hand one in.

        The promoted adapter (and the one before it, for rollback) is loaded at once. A server passes
        `watch_adapters` so that promotions and rollbacks made later, in any process, reach it too;
        jobs that only need the base model (QA generation) pass `load_adapters=False`."""
        from lorebase.finetune.serving import AdapterWatcher
        from lorebase.generation.answer import AnswerService
        from lorebase.generation.factory import open_generator
        from lorebase.generation.summarize import SummaryService

        self.generator = generator or await open_generator(self.settings)
        self.answers = AnswerService(self.settings, self.search, self.generator)
        self.summaries = SummaryService(self.settings, self.store, self.generator)
        if not load_adapters:
            return
        self.adapters = AdapterWatcher(self.store, self.generator, self.settings.finetune.adapter_poll_s)
        try:
            await self.adapters.sync_once()
        except Exception as e:  # a broken adapter folder must not keep the base model from serving
            log.warning("the promoted adapter could not be loaded, serving the base model: %s", e)
        if watch_adapters:
            self.adapters.start()

    def pick_adapter(self, requested: str | None) -> str | None:
        """The adapter a request runs on: none named (or the alias) means the served default, the
        promoted adapter; the base model's name means no adapter. Names are not checked here."""
        base = self.generator.base_model if self.generator is not None else None
        if requested in (None, "", self.settings.server.model_alias):
            return self.adapters.default_model if self.adapters is not None else None
        if requested == base:
            return None
        return requested

    async def aclose(self) -> None:
        if self.adapters is not None:
            await self.adapters.stop()
            self.adapters = None
        if self.generator is not None:
            await self.generator.aclose()
            self.generator = None
        self.store.close()
