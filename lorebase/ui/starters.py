"""Example questions offered on an empty chat, made from what the store holds now: validated
question-answer pairs first (they are known to be answerable), then one question per kind of
source from titles. Read at each new chat, so they follow the corpus as it changes; none when the
store is empty. Questions of the test split are never offered (they measure the model)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from lorebase.store import Store
from lorebase.store.models import QAPair, Source

MAX_STARTERS = 4
LABEL_CHARS = 60
MAX_QUESTION_CHARS = 160
# the order kinds are offered in when made from titles
KIND_ORDER = ("transcript", "code", "issue", "pull_request", "doc", "commit")


@dataclass(frozen=True)
class Starter:
    label: str  # what the button shows
    message: str  # what clicking it asks


def corpus_starters(store: Store, limit: int = MAX_STARTERS) -> list[Starter]:
    with store.session() as s:
        kinds = set(s.scalars(select(Source.kind).distinct()))
        if not kinds:
            return []
        questions: list[tuple[str, str]] = []  # (kind, question)
        pairs = s.execute(
            select(QAPair.kind, QAPair.question)
            .where(QAPair.validated.is_(True), QAPair.retired_at.is_(None),
                   or_(QAPair.split.is_(None), QAPair.split != "test"), QAPair.category != "abstention")
            .order_by(QAPair.created_at.desc(), QAPair.id.desc()).limit(200)
        ).all()
        questions += _one_per_kind((k or "", q.strip()) for k, q in pairs if 8 <= len(q.strip()) <= MAX_QUESTION_CHARS)
        for kind in KIND_ORDER:
            if kind not in kinds:
                continue
            src = s.scalars(select(Source).where(Source.kind == kind)
                            .order_by(*_most_telling(kind), Source.id).limit(1)).first()
            if src is not None:
                questions.append((kind, _from_title(src)))
    chosen: list[Starter] = []
    seen: set[str] = set()
    # validated questions first, spread over kinds; then title questions for kinds not yet offered
    offered_kinds: set[str] = set()
    for kind, q in questions:
        if len(chosen) >= limit:
            break
        if q in seen or (kind in offered_kinds and len(offered_kinds) < len(kinds)):
            continue
        seen.add(q)
        offered_kinds.add(kind)
        chosen.append(Starter(_label(q), q))
    return chosen


def _one_per_kind(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    first: dict[str, str] = {}
    for kind, q in pairs:
        first.setdefault(kind, q)
    return list(first.items())


def _most_telling(kind: str) -> tuple[Any, ...]:
    """Which source of a kind to ask about: the latest issue or commit, the longest file (in lines)
    or recording (in time). Cheap columns only: this runs at every new chat."""
    if kind in ("issue", "pull_request", "commit"):
        return (Source.authored_at.desc().nulls_last(),)
    if kind == "transcript":
        return ((func.coalesce(Source.end_time, 0) - func.coalesce(Source.start_time, 0)).desc(),)
    return (Source.end_line.desc().nulls_last(),)


def _from_title(src: Source) -> str:
    title = " ".join(src.title.split())
    match src.kind:
        case "transcript":
            return f"What are the main points of {title}?"
        case "code":
            return f"What does {src.path or title} do?"
        case "doc":
            return f"What does {src.path or title} explain?"
        case "issue":
            return f"What was issue {title} about, and how was it resolved?"
        case "pull_request":
            return f"What did pull request {title} change?"
        case "commit":
            return f"What changed in commit {(src.commit or '')[:7]}: {title}?"
    return f"What is {title} about?"


def _label(question: str) -> str:
    if len(question) <= LABEL_CHARS:
        return question
    cut = question[: LABEL_CHARS - 1]
    return (cut[: cut.rfind(" ")] if " " in cut else cut).rstrip(" ,;:") + "…"
