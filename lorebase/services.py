"""The one place that builds lorebase's services, once per process, from the settings.

The API keeps the result on `app.state.services`; the UI handlers and the CLI use the same object.
Parts load lazily where they are heavy: the embedder on first search, the generator at `open`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lorebase.feedback.service import FeedbackService
from lorebase.generation.conversation import ConversationService
from lorebase.readiness import Readiness
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
    adapters: AdapterWatcher | None = None
    readiness: Readiness = field(default_factory=Readiness)
    # every mode a face offers, and the generator half once it starts (see generation/conversation.py)
    conversation: ConversationService = field(init=False)

    def __post_init__(self) -> None:
        self.conversation = ConversationService(
            self.settings, self.store, self.search, self.readiness,
            default_adapter=lambda: self.adapters.default_model if self.adapters is not None else None)

    # Read-only views of the generator half, for the parts that only look (health, jobs, tests).
    @property
    def generator(self) -> Generator | None:
        return self.conversation.generator

    @property
    def answers(self) -> AnswerService | None:
        engine = self.conversation.attached
        return engine.answers if engine is not None else None

    @property
    def summaries(self) -> SummaryService | None:
        engine = self.conversation.attached
        return engine.summaries if engine is not None else None

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

    def gate_status(self) -> dict[str, Any]:
        """The latest decision of the generator's LoRA gate and of the embedder's, for eval reports."""
        from lorebase.finetune.gate_status import latest_gates

        return latest_gates(self.settings, self.store)

    async def start_generator(
        self, generator: Generator | None = None, *, load_adapters: bool = True, watch_adapters: bool = False, warm_up: bool = False
    ) -> None:
        """Start (or connect to) the configured generator; tests may hand one in.

        The promoted adapter (and the one before it, for rollback) is loaded at once. A server passes
        `watch_adapters` so that promotions and rollbacks made later, in any process, reach it too,
        and `warm_up` so that it is ready only once the model has answered; jobs that only need the
        base model (QA generation) pass `load_adapters=False`. `readiness` follows every step."""
        from lorebase.generation.factory import open_generator

        ready = self.readiness
        ready.begin("generator", "starting")
        try:
            gen = generator or await open_generator(
                self.settings, progress=lambda detail: ready.begin("generator", detail), on_restarted=lambda: ready.done("generator")
            )
            await self._serve_with(gen, load_adapters=load_adapters, watch_adapters=watch_adapters, warm_up=warm_up)
        except BaseException as e:
            ready.fail("generator", str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise
        ready.done("generator")

    async def _serve_with(self, gen: Generator, *, load_adapters: bool, watch_adapters: bool, warm_up: bool) -> None:
        from lorebase.finetune.serving import AdapterWatcher
        from lorebase.generation.backend import GenerationRequest

        self.conversation.attach(gen)
        if warm_up:  # ready means it answers: the first request must not find it still warming up
            self.readiness.begin("generator", "warming up: a first one-token answer")
            await gen.complete(GenerationRequest([{"role": "user", "content": "Hello"}], max_tokens=1))
        if not load_adapters:
            return
        self.adapters = AdapterWatcher(self.store, gen, self.settings.finetune.adapter_poll_s, self.settings)
        try:
            await self.adapters.sync_once()
        except Exception as e:  # a broken adapter folder must not keep the base model from serving
            log.warning("the promoted adapter could not be loaded, serving the base model: %s", e)
        if watch_adapters:
            self.adapters.start()

    async def aclose(self) -> None:
        if self.adapters is not None:
            await self.adapters.stop()
            self.adapters = None
        gen = self.conversation.detach()
        if gen is not None:
            await gen.aclose()
        self.store.close()
