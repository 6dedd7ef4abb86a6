"""The Chainlit handlers of the chat UI (Chainlit loads this file itself; see lorebase.ui.mount).

Everything runs in-process on the server's Services, reached through lorebase.ui.registry:
answers stream in from AnswerService, summaries come from SummaryService, and what was answered
is kept in the answer message's metadata, where the data layer's feedback mirror reads it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import chainlit as cl
from chainlit.input_widget import Select

from lorebase.citations import Citation
from lorebase.errors import EngineUnavailable, LorebaseError, NotFound
from lorebase.services import Services
from lorebase.ui import registry
from lorebase.ui.chat_options import ANY, KIND_LABELS, MODES, ChatOptions, choice_items, corpus_facets
from lorebase.ui.data_layer import META_KEY, LorebaseDataLayer, answer_record
from lorebase.ui.source_cards import card, sources_line

log = logging.getLogger("lorebase.ui.chat")
EMPTY_OUTPUT = "*(The model returned no text.)*"

# Example questions over the demo corpus, each offered when its kind of source is ingested.
DEMO_STARTERS = (
    ("Hybrid retrieval", "How does reciprocal rank fusion combine BM25 and embedding search results?", "transcript"),
    ("Abstention", "When should the assistant say that the sources do not hold the answer?", "transcript"),
    ("LoRA", "What does LoRA fine-tuning change in the model, and how is the adapter evaluated?", "transcript"),
    ("CUDA torch", "Why does pip install pull a CUDA build of torch on a CPU-only machine?", "issue"),
    ("Citations", "Where does lorebase build the citation label of a source?", "code"),
)


# --- Chainlit hooks ---------------------------------------------------------------------------------


@cl.data_layer
def data_layer() -> LorebaseDataLayer | None:
    # None outside a running server (Chainlit asks for it whenever it makes a context);
    # attaching a server makes Chainlit ask again
    svc = registry.installed()
    return LorebaseDataLayer(svc.settings.db_url, svc.store, svc.feedback) if svc is not None else None


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    facets = await asyncio.to_thread(corpus_facets, registry.current().store)
    return [cl.Starter(label=label, message=question) for label, question, kind in DEMO_STARTERS if kind in facets.kinds]


@cl.on_chat_start
async def start() -> None:
    cl.user_session.set("turns", [])
    await send_settings()


@cl.on_chat_resume
async def resume(thread: dict[str, Any]) -> None:
    # the source cards come back with the thread (the data layer keeps them); the history and
    # the settings are this session's to restore
    turns = [(str(r.get("question") or ""), str(r.get("answer") or ""))
             for step in thread.get("steps") or [] if (r := answer_record(step.get("metadata"))) is not None]
    cl.user_session.set("turns", turns[-max(registry.current().settings.ui.history_turns, 1):])
    await send_settings(cl.user_session.get("chat_settings"))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    question = message.content.strip()
    if not question:
        return
    try:
        svc = registry.current()
        if svc.answers is None or svc.summaries is None or svc.generator is None:
            raise EngineUnavailable("the model is still starting; ask again in a moment")
        options = ChatOptions.parse(cl.user_session.get("chat_settings"))
        options = replace(options, adapter=svc.pick_adapter(options.adapter))
        if options.mode == "summarize":
            await summarize(svc, question, options)
        else:
            await answer(svc, question, options)
    except LorebaseError as e:
        await cl.ErrorMessage(content=str(e)).send()


# --- answering ------------------------------------------------------------------------------------------


async def answer(svc: Services, question: str, options: ChatOptions) -> None:
    assert svc.answers is not None and svc.generator is not None
    turns: list[tuple[str, str]] = cl.user_session.get("turns") or []
    keep = svc.settings.ui.history_turns
    history = [m for q, a in (turns[-keep:] if keep else []) for m in
               ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    msg = cl.Message(content="")
    final = None
    try:
        async for ev in svc.answers.stream(question, history=history, filters=options.filters or None,
                                           model=options.adapter):
            if ev.type == "delta":
                await msg.stream_token(ev.text)
            elif ev.type == "final":
                final = ev
    except LorebaseError as e:
        if msg.streaming:  # close the half-streamed message rather than leave it spinning
            msg.content += f"\n\n*(stopped: {e})*"
            await msg.send()
            return
        raise
    assert final is not None
    text = final.answer if final.answer.strip() else EMPTY_OUTPUT
    record = {
        "mode": "ask",
        "question": question,
        "answer": text,
        "sources": [c.model_dump(mode="json") for c in final.sources],
        "model": svc.generator.base_model,
        "adapter": options.adapter,
        "filters": options.filters,
        "grounding": final.verdict.model_dump(mode="json") if final.verdict else None,
    }
    await finish(msg, text, final.sources, record)
    # only what the next question may use: the session is saved with the thread
    cl.user_session.set("turns", [*turns, (question, text)][-max(keep, 1):])


async def summarize(svc: Services, request: str, options: ChatOptions) -> None:
    """A summary of the chosen lecture, else of the sources retrieval finds for the message."""
    assert svc.summaries is not None and svc.generator is not None
    async with cl.Step(name="Choosing sources", type="tool") as step:
        lecture = options.filters.get("lecture")
        if lecture:
            target = await asyncio.to_thread(svc.summaries.target, lecture=lecture)
        else:
            hits = await asyncio.to_thread(svc.search.retrieve, request, None, options.filters or None)
            if not hits:
                raise NotFound("retrieval found no sources to summarise for this message")
            ids = list(dict.fromkeys(h.source.id for h in hits))
            target = await asyncio.to_thread(svc.summaries.target, source_ids=ids)
        step.output = "\n".join(f"- {s.title}" for s in target.sources)
    summary = await svc.summaries.summarize(target, model=options.adapter)
    body = summary.text or EMPTY_OUTPUT  # an empty summary is still an answer one can rate
    record = {
        "mode": "summarize",
        "question": request,
        "answer": body,
        "sources": [c.model_dump(mode="json") for c in summary.sources],
        "model": svc.generator.base_model,
        "adapter": options.adapter,
        "filters": options.filters,
    }
    await finish(cl.Message(content=""), f"**Summary of {summary.title}**\n\n{body}", summary.sources, record)


async def finish(msg: cl.Message, text: str, sources: list[Citation], record: dict[str, Any]) -> None:
    """Show the checked text (it may differ from what streamed: repaired citations, abstention),
    the source cards, and keep the record the feedback mirror needs."""
    line = sources_line(sources)
    msg.content = f"{text}\n\n{line}" if line else text
    msg.elements = source_elements(sources)  # type: ignore[assignment]
    msg.metadata = {META_KEY: record}
    await msg.send()


def source_elements(sources: list[Citation]) -> list[cl.Text]:
    return [cl.Text(name=c.id, content=card(c), display="side") for c in sources]


# --- settings panel -------------------------------------------------------------------------------------


async def send_settings(chosen: dict[str, Any] | None = None) -> None:
    """Mode, filters over what the store holds, and the model when adapters are loaded."""
    svc = registry.current()
    chosen = chosen or {}
    facets = await asyncio.to_thread(corpus_facets, svc.store)

    def select(id_: str, label: str, items: dict[str, str]) -> Select:
        value = chosen.get(id_)
        initial = value if value in items.values() else next(iter(items.values()))
        return Select(id=id_, label=label, items=items, initial_value=initial)

    widgets = [
        select("mode", "Mode", MODES),
        select("kind", "Source kind", choice_items(facets.kinds, "All kinds", KIND_LABELS)),
        select("repo", "Repository", choice_items(facets.repos, "All repositories")),
        select("lecture", "Lecture", choice_items(facets.lectures, "All lectures")),
    ]
    if svc.generator is not None:
        names = await svc.generator.models()
        if len(names) > 1:  # first (the initial value): the served default, which follows promotions
            default = svc.pick_adapter(None) or svc.generator.base_model
            widgets.append(select("model", "Model", {f"Default ({default})": ANY} | {n: n for n in names}))
    await cl.ChatSettings(widgets).send()  # type: ignore[arg-type]
