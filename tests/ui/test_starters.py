"""Starters come from the corpus: none for an empty store, questions about what was ingested
(validated pairs first, never the test split), and new ones when the corpus changes."""

from __future__ import annotations

from pathlib import Path

from lorebase.settings import Settings
from lorebase.store import Store
from lorebase.store.models import QAPair
from lorebase.ui.starters import corpus_starters
from tests.ui.corpus import MEETING, ingest, make_meetings, make_repo


def _pair(question: str, kind: str, split: str, validated: bool = True) -> QAPair:
    return QAPair(question=question, answer="a", kind=kind, category="x", method="template", validated=validated,
                  split=split, question_hash=question[:60])


def test_starters_follow_the_corpus(settings: Settings, store: Store, tmp_path: Path) -> None:
    assert corpus_starters(store) == []  # an empty corpus offers nothing to ask about

    ingest(settings, [make_meetings(tmp_path)])
    assert [s.message for s in corpus_starters(store)] == [f"What are the main points of {MEETING}?"]

    ingest(settings, [make_repo(tmp_path)])  # the corpus changed: so do the starters
    messages = [s.message for s in corpus_starters(store)]
    assert messages[:2] == [f"What are the main points of {MEETING}?", "What does jobs/retry.py do?"]
    assert any(m.startswith("What changed in commit") and "Double the retry delay" in m for m in messages)
    assert len(messages) == 4

    with store.session() as s:
        s.add(_pair("How long does a failed job wait before its first retry, and what happens after that?", "transcript", "train"))
        s.add(_pair("Which question is kept for measuring the model?", "code", "test"))
        s.add(_pair("An unchecked question about the dashboard colours?", "code", "train", validated=False))
    starters = corpus_starters(store)
    messages = [s.message for s in starters]
    assert messages[0] == "How long does a failed job wait before its first retry, and what happens after that?"
    assert f"What are the main points of {MEETING}?" not in messages  # one question per kind while kinds remain
    assert not any("measuring the model" in m or "unchecked" in m for m in messages)
    assert all(len(s.label) <= 60 for s in starters) and starters[0].label.endswith("…")
