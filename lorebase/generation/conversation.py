"""One conversation service under every face: the API route, the Chainlit handlers, the CLI and
the eval runner all hand it a `ConversationRequest` and translate what it yields.

It owns what a face used to decide for itself:
- the modes (`answer`, `summary`, `chat`), each one `Mode` in `MODES` below: a new mode is one
  class and one entry there, and the API, the UI's mode picker and the CLI offer it;
- readiness: `engine()` raises EngineUnavailable (with Retry-After while the model starts) instead
  of every face asserting that the optional halves of Services are there;
- model choice: the alias, the base model's name, an adapter's name, or nothing, resolved to the
  adapter a request runs on and checked against what the generator serves;
- history: which earlier turns an answer sees;
- the final text: the concatenated `delta` events are exactly `ConversationResult.text`.

Events: `sources` once the sources are known, `progress` while long work goes on (summary parts),
`draft` for provisional text a face may show while it waits (a summary before its bullets are
checked; the deltas replace it), `delta` per piece of the final text, and `final` last, carrying
the `ConversationResult` with its `Verdict` and citations.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lorebase.citations import Citation
from lorebase.errors import EngineUnavailable, InvalidInput, NotFound, UnknownModel
from lorebase.generation.backend import GenerationRequest, Generator, Usage
from lorebase.readiness import Readiness
from lorebase.verdict import Verdict

if TYPE_CHECKING:
    from lorebase.generation.answer import AnswerService
    from lorebase.generation.answerability import AnswerabilityJudge
    from lorebase.generation.summarize import SummaryService
    from lorebase.index.search import SearchService
    from lorebase.settings import Settings
    from lorebase.store import Store

EMPTY_OUTPUT = "*(The model returned no text.)*"  # what a face shows for an empty answer, which can still be rated
Message = dict[str, str]  # {"role": ..., "content": ...}


@dataclass
class ConversationRequest:
    """One turn: the conversation so far, the last message the user's, and how to answer it."""

    messages: Sequence[Message]
    mode: str = "answer"
    model: str | None = None  # as the client named it: None or the alias, the base model, an adapter
    history_turns: int | None = None  # earlier user/assistant pairs an answer sees; None: all of them
    top_k: int | None = None
    filters: dict[str, Any] | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    source_ids: list[str] | None = None  # summary: these sources
    lecture: str | None = None  # summary: this lecture (title, key or source id)
    limit_question: bool = False  # refuse a message too long to leave room for sources, in words a person can act on

    @classmethod
    def ask(cls, question: str, **kw: Any) -> ConversationRequest:
        return cls(messages=[{"role": "user", "content": question}], **kw)

    @property
    def question(self) -> str:
        return self.messages[-1]["content"] if self.messages else ""

    def history(self) -> list[Message]:
        """The earlier user and assistant turns, the newest `history_turns` pairs of them."""
        earlier = [{"role": m["role"], "content": m["content"]} for m in self.messages[:-1]
                   if m["role"] in ("user", "assistant")]
        if self.history_turns is None:
            return earlier
        return earlier[-2 * self.history_turns:] if self.history_turns > 0 else []


@dataclass
class ConversationResult:
    text: str  # the final text, exactly what the deltas spelled
    sources: list[Citation]
    verdict: Verdict
    usage: Usage
    finish_reason: str
    model: str  # the served name: the adapter's, else the base model's
    adapter: str | None
    title: str = ""  # summary: what was summarised
    input_chars: int = 0  # summary: the size of what was read

    @property
    def shown(self) -> str:
        """The text a face shows: an empty answer still shows (and can be rated) as such."""
        return self.text if self.text.strip() else EMPTY_OUTPUT


@dataclass
class ConversationEvent:
    type: Literal["sources", "progress", "draft", "delta", "final"]
    text: str = ""
    sources: list[Citation] = field(default_factory=list)
    title: str = ""  # on `sources` of a summary: what is summarised
    result: ConversationResult | None = None  # on `final`


@dataclass
class Engine:
    """The generator half of the services, present once the generator answers."""

    generator: Generator
    answers: AnswerService
    summaries: SummaryService


# --- the modes ------------------------------------------------------------------------------------


class Mode(ABC):
    """One way of answering. `label` is the name the chat UI offers it under ("" keeps it out of the UI)."""

    name: ClassVar[str]
    label: ClassVar[str] = ""
    about: ClassVar[str] = ""
    joins_history: ClassVar[bool] = True  # whether a face keeps the turn as history for the next message

    def working(self, req: ConversationRequest) -> str:
        """What a face shows while the first step runs."""
        return "Searching the sources"

    @abstractmethod
    def run(self, conv: ConversationService, engine: Engine, req: ConversationRequest,
            adapter: str | None) -> AsyncIterator[ConversationEvent]:
        """The mode's events, ending with one `final` (each concrete mode is an async generator)."""


class AnswerMode(Mode):
    name, label = "answer", "Ask"
    about = "retrieve and answer with citations, each sentence checked against its sources"

    async def run(self, conv: ConversationService, engine: Engine, req: ConversationRequest,
                  adapter: str | None) -> AsyncIterator[ConversationEvent]:
        async for ev in engine.answers.stream(req.question, history=req.history(), top_k=req.top_k, filters=req.filters,
                                              model=adapter, max_tokens=req.max_tokens, temperature=req.temperature):
            if ev.type == "final":
                assert ev.verdict is not None
                yield ConversationEvent("final", result=ConversationResult(
                    ev.answer, ev.sources, ev.verdict, ev.usage or Usage(0, 0), ev.finish_reason or "stop",
                    conv.served_name(engine, adapter), adapter))
            else:
                yield ConversationEvent(ev.type, text=ev.text, sources=ev.sources)


class SummaryMode(Mode):
    name, label = "summary", "Summarize"
    joins_history = False  # long, and not an answer a follow-up question builds on
    about = "summarise the chosen sources or lecture, else the sources retrieval finds for the message"

    def working(self, req: ConversationRequest) -> str:
        return f"Finding {req.lecture}" if req.lecture else "Searching the sources"

    async def run(self, conv: ConversationService, engine: Engine, req: ConversationRequest,
                  adapter: str | None) -> AsyncIterator[ConversationEvent]:
        from lorebase.citations import cite

        summaries = engine.summaries
        if req.source_ids:
            target = await asyncio.to_thread(summaries.target, source_ids=req.source_ids)
        elif req.lecture:
            target = await asyncio.to_thread(summaries.target, lecture=req.lecture)
        else:
            hits = await asyncio.to_thread(conv.search.retrieve, req.question, req.top_k, req.filters)
            if not hits:
                raise NotFound("retrieval found no sources to summarise for this message")
            target = await asyncio.to_thread(summaries.target, source_ids=list(dict.fromkeys(h.source.id for h in hits)))
        sources = await asyncio.to_thread(lambda: [cite(src, None, f"S{i}") for i, src in enumerate(target.sources, start=1)])
        yield ConversationEvent("sources", sources=sources, title=target.title)
        async for ev in summaries.stream(target, model=adapter):
            if ev.type == "progress":  # "Summarising part k of n", then "Writing the summary"
                yield ConversationEvent("progress", text=ev.text)
            elif ev.type == "delta":  # not yet checked bullet by bullet: a draft
                yield ConversationEvent("draft", text=ev.text)
            elif ev.summary is not None:
                s = ev.summary
                verdict = s.verdict or Verdict(mode="summary", supported=False, abstained=False, reason="not checked", removed=0)
                yield ConversationEvent("delta", text=s.text)
                yield ConversationEvent("final", result=ConversationResult(
                    s.text, s.sources, verdict, Usage(0, 0), "stop", conv.served_name(engine, adapter), adapter,
                    title=s.title, input_chars=s.input_chars))


class ChatMode(Mode):
    name = "chat"
    about = "the model alone: no retrieval, no check"

    def working(self, req: ConversationRequest) -> str:
        return "Writing"

    async def run(self, conv: ConversationService, engine: Engine, req: ConversationRequest,
                  adapter: str | None) -> AsyncIterator[ConversationEvent]:
        g = conv.settings.generation
        messages = [{"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
                    for m in req.messages if m["role"] in ("system", "developer", "user", "assistant")]
        gen = GenerationRequest(messages=messages, max_tokens=req.max_tokens or g.max_new_tokens,
                                temperature=g.temperature if req.temperature is None else req.temperature,
                                top_p=req.top_p or 1.0, stop=list(req.stop), seed=req.seed, model=adapter,
                                json_schema=req.json_schema)
        parts: list[str] = []
        usage, finish = Usage(0, 0), "stop"
        yield ConversationEvent("sources")
        async for d in engine.generator.stream(gen):
            if d.text:
                parts.append(d.text)
                yield ConversationEvent("delta", text=d.text)
            finish = d.finish_reason or finish
            usage = d.usage or usage
        verdict = Verdict(mode="chat", supported=False, abstained=False, reason="plain chat is not checked", removed=0)
        yield ConversationEvent("final", result=ConversationResult("".join(parts), [], verdict, usage, finish,
                                                                   conv.served_name(engine, adapter), adapter))


MODES: dict[str, Mode] = {m.name: m for m in (AnswerMode(), SummaryMode(), ChatMode())}


# --- the service ----------------------------------------------------------------------------------


class ConversationService:
    """Built once by Services; the generator half is attached when the generator starts."""

    def __init__(self, settings: Settings, store: Store, search: SearchService, readiness: Readiness,
                 default_adapter: Callable[[], str | None] = lambda: None) -> None:
        self.settings = settings
        self.store = store
        self.search = search
        self.readiness = readiness
        self._default_adapter = default_adapter
        self._engine: Engine | None = None
        self._judge: AnswerabilityJudge | None = None
        self._judge_opened = False

    @classmethod
    def serving(cls, settings: Settings, store: Store, search: SearchService, generator: Generator,
                default_adapter: Callable[[], str | None] = lambda: None) -> ConversationService:
        """A conversation on a generator that already answers (one another part of the process runs)."""
        conv = cls(settings, store, search, Readiness(), default_adapter)
        conv.attach(generator)
        conv.readiness.done("generator")
        return conv

    # --- the generator half -------------------------------------------------------------------

    def attach(self, generator: Generator) -> None:
        from lorebase.generation.answer import AnswerService
        from lorebase.generation.answerability import open_answerability_judge
        from lorebase.generation.summarize import SummaryService

        if not self._judge_opened:  # once: a model swap re-attaches, and the judge keeps its loaded weights
            self._judge, self._judge_opened = open_answerability_judge(self.settings), True
        self._engine = Engine(generator, AnswerService(self.settings, self.search, generator, self._judge),
                              SummaryService(self.settings, self.store, generator))

    def detach(self) -> Generator | None:
        engine, self._engine = self._engine, None
        return engine.generator if engine is not None else None

    @property
    def generator(self) -> Generator | None:
        """The attached generator, ready or not (health and jobs look at it without waiting)."""
        return self._engine.generator if self._engine is not None else None

    @property
    def attached(self) -> Engine | None:
        """The engine once attached, even while it warms up (jobs that started it themselves)."""
        return self._engine

    def engine(self) -> Engine:
        """The generator half, once it answers; else EngineUnavailable, with Retry-After while it starts."""
        if self._engine is None or not self.readiness.is_ready("generator"):
            starting = self.readiness.status == "starting"
            raise EngineUnavailable(self.readiness.waiting_message("generator"), retry_after_s=5 if starting else None)
        return self._engine

    # --- which model --------------------------------------------------------------------------

    def pick_adapter(self, requested: str | None) -> str | None:
        """The adapter a request runs on: none named (or the alias) means the served default, the
        promoted adapter; the base model's name means no adapter. Names are not checked here."""
        base = self._engine.generator.base_model if self._engine is not None else None
        if requested in (None, "", self.settings.server.model_alias):
            return self._default_adapter()
        if requested == base:
            return None
        return requested

    async def resolve_model(self, requested: str | None) -> str | None:
        """None for the base model, the adapter's name for an adapter; an unknown name is UnknownModel."""
        engine = self.engine()
        adapter = self.pick_adapter(requested)
        if adapter is None:
            return None
        names = await engine.generator.models()
        if adapter in names:
            return adapter
        known = ", ".join([self.settings.server.model_alias, *names])
        raise UnknownModel(f"the model {requested!r} does not exist; available: {known}")

    def served_name(self, engine: Engine, adapter: str | None) -> str:
        return adapter or engine.generator.base_model

    # --- a turn -------------------------------------------------------------------------------

    @staticmethod
    def mode(name: str) -> Mode:
        mode = MODES.get(name)
        if mode is None:
            raise InvalidInput(f"mode {name!r} is not one of: {', '.join(MODES)}")
        return mode

    async def begin(self, req: ConversationRequest) -> Turn:
        """Check what can be refused before any work (unknown mode, empty or too long a message,
        not ready, unknown model) and return the turn, whose events do the work."""
        mode = self.mode(req.mode)
        if not req.question.strip():
            raise InvalidInput("the message is empty")
        engine = self.engine()
        adapter = await self.resolve_model(req.model)
        if req.limit_question:
            from lorebase.generation.question_limit import check_question

            await asyncio.to_thread(check_question, req.question, engine.generator, self.settings.generation.max_new_tokens)
        return Turn(self, engine, mode, req, adapter)

    async def stream(self, req: ConversationRequest) -> AsyncIterator[ConversationEvent]:
        """`begin` and the turn's events in one: a refusal is raised by the first step."""
        turn = await self.begin(req)
        async for ev in turn.events():
            yield ev

    async def complete(self, req: ConversationRequest) -> ConversationResult:
        """The whole turn at once: the result the stream ends with."""
        async for ev in self.stream(req):
            if ev.result is not None:
                return ev.result
        raise AssertionError("a conversation mode ended without its final event")


@dataclass
class Turn:
    """One accepted request: what it runs on, and its events."""

    conversation: ConversationService
    engine: Engine
    mode: Mode
    request: ConversationRequest
    adapter: str | None  # None: the base model

    @property
    def working(self) -> str:
        return self.mode.working(self.request)

    @property
    def base_model(self) -> str:
        return self.engine.generator.base_model

    def events(self) -> AsyncIterator[ConversationEvent]:
        return self.mode.run(self.conversation, self.engine, self.request, self.adapter)
