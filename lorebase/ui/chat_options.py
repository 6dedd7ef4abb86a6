"""The chat settings panel: what can be chosen (from the corpus), and what a choice means
(mode, search filters, model) for one question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from lorebase.generation.conversation import MODES as CONVERSATION_MODES
from lorebase.store import Store
from lorebase.store.models import Source

ANY = "any"  # the "no filter" choice (a select item cannot have an empty value)
# the conversation modes the UI offers (those with a label), by label; the first is the default
MODES = {m.label: m.name for m in CONVERSATION_MODES.values() if m.label}
_OLD_MODES = {"ask": "answer", "summarize": "summary"}  # as sessions saved before the modes were shared
KIND_LABELS = {"transcript": "Transcripts", "code": "Code", "doc": "Docs", "commit": "Commits", "issue": "Issues",
               "pull_request": "Pull requests"}


@dataclass(frozen=True)
class Facets:
    """The values present in the store, offered as filter choices."""

    kinds: list[str] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)
    lectures: list[str] = field(default_factory=list)


def corpus_facets(store: Store, limit: int = 200) -> Facets:
    with store.session() as s:
        def values(col: Any) -> list[str]:
            return [v for v in s.scalars(select(col).where(col.is_not(None)).distinct().order_by(col).limit(limit)) if v]

        return Facets(values(Source.kind), values(Source.repo), values(Source.lecture))


@dataclass(frozen=True)
class ChatOptions:
    mode: str = "answer"  # a lorebase.generation.conversation mode
    filters: dict[str, str] = field(default_factory=dict)
    adapter: str | None = None  # as chosen: None is the served default, the base model's name is no adapter

    @classmethod
    def parse(cls, chosen: dict[str, Any] | None) -> ChatOptions:
        """The options from Chainlit's chat settings values; missing or "any" values mean no filter
        (and, for the model, the served default: the promoted adapter, else the base model)."""
        chosen = chosen or {}
        chosen_mode = str(chosen.get("mode"))
        chosen_mode = _OLD_MODES.get(chosen_mode, chosen_mode)
        mode = chosen_mode if chosen_mode in MODES.values() else next(iter(MODES.values()))
        filters = {key: str(v) for key in ("kind", "repo", "lecture")
                   if (v := chosen.get(key)) not in (None, "", ANY)}
        model = chosen.get("model")
        adapter = None if model in (None, "", ANY) else str(model)
        return cls(mode, filters, adapter)


def choice_items(values: Sequence[str], any_label: str, labels: dict[str, str] | None = None) -> dict[str, str]:
    """Select items (label: value), "any" first."""
    items = {any_label: ANY}
    for v in values:
        items[(labels or {}).get(v, v)] = v
    return items
