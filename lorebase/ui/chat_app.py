"""The Chainlit handlers of the chat UI (Chainlit loads this file itself; see lorebase.ui.mount).

Everything runs in-process on the server's Services, reached through lorebase.ui.registry: each
message is one ConversationRequest, and its events are shown by an AnswerPanel (the text, then its
sources as cards). What was answered is kept in the answer message's
metadata, where the data layer's feedback mirror reads it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import chainlit as cl
from chainlit.input_widget import Select
from chainlit.types import ThreadDict

from lorebase.errors import LorebaseError
from lorebase.generation.conversation import ConversationRequest, ConversationResult, Turn
from lorebase.services import Services
from lorebase.source_view import SourceViewer
from lorebase.ui import registry
from lorebase.ui.answer_panel import AnswerPanel
from lorebase.ui.chat_options import ANY, KIND_LABELS, MODES, ChatOptions, choice_items, corpus_facets
from lorebase.ui.data_layer import LorebaseDataLayer, answer_record
from lorebase.ui.starters import corpus_starters
from lorebase.verdict import Verdict

log = logging.getLogger("lorebase.ui.chat")


# --- Chainlit hooks ---------------------------------------------------------------------------------


@cl.data_layer  # type: ignore[arg-type]  # None outside a server: Chainlit allows it, its type does not say so
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
async def resume(thread: ThreadDict) -> None:
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
    options = ChatOptions.parse(cl.user_session.get("chat_settings"))
    turns: list[tuple[str, str]] = cl.user_session.get("turns") or []
    try:
        svc = registry.current()
        keep = svc.settings.ui.history_turns
        req = ConversationRequest(
            messages=[*({"role": r, "content": t} for q, a in turns for r, t in (("user", q), ("assistant", a))),
                      {"role": "user", "content": question}],
            mode=options.mode, model=options.adapter, history_turns=keep, filters=options.filters or None,
            lecture=options.filters.get("lecture"), limit_question=True)
        turn = await svc.conversation.begin(req)
    except LorebaseError as e:  # refused before any work began: not ready, unknown model, too long
        await cl.ErrorMessage(content=str(e)).send()
        return
    result = await show(svc, turn)
    if result is not None and turn.mode.joins_history:  # the session is saved with the thread
        cl.user_session.set("turns", [*turns, (question, result.shown)][-max(keep, 1):])


def _panel(svc: Services) -> AnswerPanel:
    return AnswerPanel(SourceViewer(svc.store), cl.context.session.thread_id, svc.settings.answer.support_threshold)


# --- one turn: the service's events shown in an AnswerPanel ---------------------------------------------


async def show(svc: Services, turn: Turn) -> ConversationResult | None:
    """Show one turn as it streams; None when it was stopped or failed part-way (the panel says so)."""
    req = turn.request
    record: dict[str, Any] = {"mode": req.mode, "question": req.question, "answer": "", "sources": [],
                              "model": turn.base_model, "adapter": turn.adapter, "filters": req.filters or {}}
    panel = _panel(svc)
    await panel.open(turn.working)
    heading, drafted, result = "", False, None
    try:
        async for ev in turn.events():
            if ev.type == "sources":
                n = len(ev.sources)
                heading = f"**Summary of {ev.title}**\n\n" if ev.title else ""
                record["sources"] = [c.model_dump(mode="json") for c in ev.sources]
                done = f"Chose {n} source{'s' if n != 1 else ''}: {ev.title}" if ev.title else f"Searched the sources: {n} kept"
                await panel.found(ev.sources, f"Reading {n} source{'s' if n != 1 else ''}", done=done)
            elif ev.type == "progress":
                await panel.advance(ev.text)
            elif ev.type == "draft" or (ev.type == "delta" and not drafted):  # drafts give way to the final text
                if heading and not panel.msg.content:
                    await panel.token(heading)
                drafted = drafted or ev.type == "draft"
                await panel.token(ev.text)
            elif ev.result is not None:
                result = ev.result
    except asyncio.CancelledError:  # Stop: a finished message with what was written and found
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True})
        return None
    except LorebaseError as e:
        await panel.stop({**record, "answer": panel.msg.content, "stopped": True}, note=f"Stopped: {e}", status="failed")
        return None
    assert result is not None
    v = result.verdict
    record.update(answer=result.shown, sources=[c.model_dump(mode="json") for c in result.sources],
                  grounding=v.model_dump(mode="json"), verified=v.verified)
    panel.sources = list(result.sources)
    summary = v.mode == "summary"
    # a summary of one transcript refers to its moments as [mm:ss]: those become chips too
    single = result.sources[0] if summary and len(result.sources) == 1 and result.sources[0].kind == "transcript" else None
    await panel.finish(heading + result.shown, record, sentences=[] if summary else [s for s in v.sentences if s.supported],
                       check=None if summary else check_note(v), sources_title="Closest sources" if v.abstained else "Sources",
                       mark_cited=not (summary or v.abstained), moments_of=single)
    return result


def check_note(v: Verdict) -> dict[str, str] | None:
    """What the answer's check found, in the words the panel shows under it."""
    if v.abstained:
        return None
    if v.mode == "extractive":
        return {"state": "verified", "text": "Nothing the model wrote could be verified, so the answer quotes the sources."}
    if v.supported:
        note = f" ({v.removed} unsupported sentence(s) left out.)" if v.removed else ""
        return {"state": "verified", "text": "Each sentence was checked against the sources it cites." + note}
    return {"state": "unverified", "text": f"Not verified against the sources ({v.reason})."}


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
    generator = svc.conversation.generator
    if generator is not None:
        names = await generator.models()
        if len(names) > 1:  # first (the initial value): the served default, which follows promotions
            default = svc.conversation.pick_adapter(None) or generator.base_model
            widgets.append(select("model", "Model", {f"Default ({default})": ANY} | {n: n for n in names}))
    await cl.ChatSettings(widgets).send()  # type: ignore[arg-type]
