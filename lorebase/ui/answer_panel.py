"""One answer in the chat: its message (the text, streamed) and its element (LorebaseAnswer.jsx):
the steps while the work goes on, then the sources as cards and what the grounding check found.
Stopped or failed, it still ends as a finished message with whatever sources were found."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import chainlit as cl

from lorebase.citations import Citation
from lorebase.source_view import SourceViewer
from lorebase.ui.chainlit_home import ELEMENT
from lorebase.ui.data_layer import META_KEY
from lorebase.ui.source_cards import cards, close_fences, link_citations, link_times

STOPPED_NOTE = "Stopped. The answer above is incomplete; the sources found so far are listed below."


class AnswerPanel:
    def __init__(self, viewer: SourceViewer, thread_id: str | None, support_threshold: float = 0.0) -> None:
        self.viewer = viewer
        self.threshold = support_threshold
        self.msg = cl.Message(content="")
        props: dict[str, Any] = {"thread_id": thread_id, "status": "working", "progress": "", "steps": [],
                                 "sources": [], "sources_title": "Sources", "check": None, "note": None}
        self.element = cl.CustomElement(name=ELEMENT, props=props, display="inline")
        self.props = self.element.props  # the element keeps a copy: change that one
        self.msg.elements = [self.element]  # type: ignore[list-item]
        self.sources: list[Citation] = []
        self.opened = False

    # --- while working ------------------------------------------------------------------------

    async def open(self, progress: str) -> None:
        self.props["progress"] = progress
        await self.msg.send()
        self.opened = True

    async def advance(self, progress: str, done: str | None = None) -> None:
        """Show `progress` as the step now under way; `done` (what the last step found) joins the
        steps above it."""
        if done:
            self.props["steps"].append(done)
        self.props["progress"] = progress
        await self._update_element()

    async def found(self, sources: Sequence[Citation], progress: str, done: str | None = None) -> None:
        """Sources are known: they are shown at once, so that a Stop keeps them."""
        self.sources = list(sources)
        self.props["sources"] = await asyncio.to_thread(self._cards, self.sources, (), None)
        await self.advance(progress, done)

    async def token(self, text: str) -> None:
        if self.props["progress"]:  # the text itself shows the work now
            self.props["progress"] = ""
            await self._update_element()
        await self.msg.stream_token(text)

    # --- the end ------------------------------------------------------------------------------

    async def finish(self, text: str, record: dict[str, Any], *, sentences: Sequence[Any] = (),
                     check: dict[str, str] | None = None, sources_title: str = "Sources", mark_cited: bool = True,
                     moments_of: Citation | None = None) -> None:
        """The final text (which may differ from what streamed), with chips, the cards, the check.
        `mark_cited`: say which sources the text cites (not for summaries, which may cite by time);
        `moments_of`: the transcript whose [mm:ss] references become chips too."""
        self.props.update(status="done", progress="", check=check, sources_title=sources_title)
        self.props["sources"] = await asyncio.to_thread(self._cards, self.sources, sentences,
                                                        text if mark_cited else None)
        shown = link_citations(close_fences(text), self.sources)
        self.msg.content = link_times(shown, moments_of) if moments_of is not None else shown
        self.msg.metadata = {META_KEY: record}
        await self.msg.update()

    async def stop(self, record: dict[str, Any] | None, note: str = STOPPED_NOTE, status: str = "stopped") -> None:
        """Stopped or failed part-way: what was written stays, closed, with the sources so far."""
        self.props.update(status=status, progress="", note=note)
        text = self.msg.content.rstrip()
        self.msg.content = link_citations(close_fences(text), self.sources) if text else ""
        if record is not None:
            self.msg.metadata = {META_KEY: record}
        if self.opened:
            await self.msg.update()
        else:
            await self.msg.send()

    # --- helpers ------------------------------------------------------------------------------

    def _cards(self, sources: Sequence[Citation], sentences: Sequence[Any], text: str | None) -> list[dict[str, Any]]:
        passages = {c.id: self.viewer.passage(c) for c in sources}
        return cards(sources, passages, sentences, text, self.threshold)

    async def _update_element(self) -> None:
        if self.opened:
            # Still busy: a question sent while the chat was starting has Chainlit take the start's
            # end for this task's, which hides the Stop button; saying so again brings it back.
            await cl.context.emitter.task_start()
            await self.element.update()
