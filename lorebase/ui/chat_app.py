"""The Chainlit handlers of the chat UI (Chainlit loads this file itself; see lorebase.ui.mount).

Everything runs in-process on the server's Services, reached through lorebase.ui.registry:
answers stream in from AnswerService, summaries from SummaryService, each shown by an AnswerPanel
(the text, then its sources as cards). What was answered is kept in the answer message's
metadata, where the data layer's feedback mirror reads it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import chainlit as cl
from chainlit.input_widget import Select

from lorebase.citations import cite
from lorebase.errors import EngineUnavailable, LorebaseError, NotFound
from lorebase.generation.question_limit import check_question
from lorebase.services import Services
from lorebase.source_view import SourceViewer
from lorebase.ui import registry
from lorebase.ui.answer_panel import AnswerPanel
from lorebase.ui.chat_options import ANY, KIND_LABELS, MODES, ChatOptions, choice_items, corpus_facets
from lorebase.ui.data_layer import LorebaseDataLayer, answer_record
from lorebase.ui.starters import corpus_starters

log = logging.getLogger("lorebase.ui.chat")
EMPTY_OUTPUT = "*(The model returned no text.)*"


# --- Chainlit hooks ---------------------------------------------------------------------------------


@cl.data_layer
def data_layer() -> LorebaseDataLayer | None:
    # None outside a running server (Chainlit asks for it whenever it makes a context);
    # attaching a server makes Chainlit ask again
    svc = registry.installed()
    return LorebaseDataLayer(svc.settings.db_url, svc.store, svc.feedback) if svc is not None else None


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    """Questions about what the corpus holds now; none when it is empty."""
    found = await asyncio.to_thread(corpus_starters, registry.current().store)
    return [cl.Starter(label=s.label, message=s.message) for s in found]


@cl.on_chat_start
async def start() -> None:
    cl.user_session.set("turns", [])
    await send_settings()


@cl.on_chat_resume
async def resume(thread: dict[str, Any]) -> None:
    # the answers' elements (sources) come back with the thread (the data layer keeps them); the
    # history and the settings are this session's to restore
    turns = [(str(r.get("question") or ""), str(r.get("answer") or ""))
             for step in thread.get("steps") or []
             if (r := answer_record(step.get("metadata"))) is not None and not r.get("stopped")]
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
        await asyncio.to_thread(check_question, question, svc.generator, svc.settings.generation.max_new_tokens)
        options = ChatOptions.parse(cl.user_session.get("chat_settings"))
        options = replace(options, adapter=svc.pick_adapter(options.adapter))
        if options.mode == "summarize":
            await summarize(svc, question, options)
        else:
            await answer(svc, question, options)
    except LorebaseError as e:
        await cl.ErrorMessage(content=str(e)).send()


def _panel(svc: Services) -> AnswerPanel:
    return AnswerPanel(SourceViewer(svc.store), cl.context.session.thread_id, svc.settings.answer.support_threshold)


# --- answering ------------------------------------------------------------------------------------------


async def answer(svc: Services, question: str, options: ChatOptions) -> None:
    assert svc.answers is not None and svc.generator is not None
    turns: list[tuple[str, str]] = cl.user_session.get("turns") or []
    keep = svc.settings.ui.history_turns
    history = [m for q, a in (turns[-keep:] if keep else []) for m in
               ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    record: dict[str, Any] = {"mode": "ask", "question": question, "answer": "", "sources": [],
                              "model": svc.generator.base_model, "adapter": options.adapter, "filters": options.filters}
    panel = _panel(svc)
    await panel.open("Searching the sources")
    final = None
    try:
        async for ev in svc.answers.stream(question, history=history, filters=options.filters or None,
                                           model=options.adapter):
            if ev.type == "sources":
                n = len(ev.sources)
                await panel.found(ev.sources, f"Reading {n} source{'s' if n != 1 else ''}",
                                  done=f"Searched the sources: {n} kept")
                record["sources"] = [c.model_dump(mode="json") for c in ev.sources]
            elif ev.type == "delta":
                await panel.token(ev.text)
            elif ev.type == "final":
                final = ev
    except asyncio.CancelledError:  # Stop: a finished message with what was written and found
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True})
        return
    except LorebaseError as e:
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True}, note=f"Stopped: {e}", status="failed")
        return
    assert final is not None
    text = final.answer if final.answer.strip() else EMPTY_OUTPUT
    v = final.verdict
    record.update(answer=text, sources=[c.model_dump(mode="json") for c in final.sources],
                  grounding=v.model_dump(mode="json") if v else None)
    panel.sources = list(final.sources)
    shown, check, cited = text, None, True
    if v is not None and v.abstained:
        title, cited = "Closest sources", False
    else:
        title = "Sources"
        if v is not None and v.mode == "extractive":
            check = {"state": "verified", "text": "Nothing the model wrote could be verified, so the answer quotes the sources."}
        elif v is not None and v.supported:
            note = f" ({v.removed} unsupported sentence(s) left out.)" if v.removed else ""
            check = {"state": "verified", "text": "Each sentence was checked against the sources it cites." + note}
        elif v is not None:
            check = {"state": "unverified", "text": f"Not verified against the sources ({v.reason})."}
    sentences = [s for s in v.sentences if s.supported] if v is not None else []
    await panel.finish(shown, record, sentences=sentences, check=check, sources_title=title, mark_cited=cited)
    # only what the next question may use: the session is saved with the thread
    cl.user_session.set("turns", [*turns, (question, text)][-max(keep, 1):])


async def summarize(svc: Services, request: str, options: ChatOptions) -> None:
    """A summary of the chosen lecture, else of the sources retrieval finds for the message."""
    assert svc.summaries is not None and svc.generator is not None
    panel = _panel(svc)
    record: dict[str, Any] = {"mode": "summarize", "question": request, "answer": "", "sources": [],
                              "model": svc.generator.base_model, "adapter": options.adapter, "filters": options.filters}
    lecture = options.filters.get("lecture")
    await panel.open(f"Finding {lecture}" if lecture else "Searching the sources")
    try:
        if lecture:
            target = await asyncio.to_thread(svc.summaries.target, lecture=lecture)
        else:
            hits = await asyncio.to_thread(svc.search.retrieve, request, None, options.filters or None)
            if not hits:
                raise NotFound("retrieval found no sources to summarise for this message")
            ids = list(dict.fromkeys(h.source.id for h in hits))
            target = await asyncio.to_thread(svc.summaries.target, source_ids=ids)
        heading = f"**Summary of {target.title}**\n\n"
        sources = await asyncio.to_thread(lambda: [cite(src, None, f"S{i}") for i, src in enumerate(target.sources, start=1)])
        record["sources"] = [c.model_dump(mode="json") for c in sources]
        n = len(sources)
        summary = None
        async for ev in svc.summaries.stream(target, model=options.adapter):
            if ev.type == "progress":  # "Summarising part k of n", then "Writing the summary"
                if not panel.sources:
                    await panel.found(sources, ev.text, done=f"Chose {n} source{'s' if n != 1 else ''}: {target.title}")
                else:
                    await panel.advance(ev.text)
            elif ev.type == "delta":
                if not panel.msg.content:
                    await panel.token(heading)
                await panel.token(ev.text)
            elif ev.type == "final":
                summary = ev.summary
    except asyncio.CancelledError:
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True})
        return
    except LorebaseError as e:
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True}, note=f"Stopped: {e}", status="failed")
        return
    assert summary is not None
    body = summary.text or EMPTY_OUTPUT  # an empty summary is still an answer one can rate
    panel.sources = list(summary.sources)
    record.update(answer=body, sources=[c.model_dump(mode="json") for c in summary.sources])
    # a summary of one transcript refers to its moments as [mm:ss]: those become chips too
    single = summary.sources[0] if len(summary.sources) == 1 and summary.sources[0].kind == "transcript" else None
    await panel.finish(heading + body, record, mark_cited=False, moments_of=single)


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
        select("lecture", "Lecture or meeting", choice_items(facets.lectures, "All lectures and meetings")),
    ]
    if svc.generator is not None:
        names = await svc.generator.models()
        if len(names) > 1:  # first (the initial value): the served default, which follows promotions
            default = svc.pick_adapter(None) or svc.generator.base_model
            widgets.append(select("model", "Model", {f"Default ({default})": ANY} | {n: n for n in names}))
    await cl.ChatSettings(widgets).send()  # type: ignore[arg-type]
