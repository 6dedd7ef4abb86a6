"""A transcript chunk's text cut into speaker turns, and each speaker's share of its words."""

from __future__ import annotations

import pytest

from lorebase.index.speaker_turns import named_share, speaker_words, turns_of

WINDOW = (
    "Professor C: So what do we do about the microphones?\n"
    "PhD A: I think we keep them away from the mouth\n"
    "because of the breathing.\n"  # a continuation line: still PhD A
    "Professor C: Fine."
)
SPEAKERS = ["Professor C", "PhD A"]


def test_turns_follow_the_labels_and_continuation_lines_keep_their_speaker() -> None:
    assert turns_of(WINDOW, SPEAKERS) == [
        ("Professor C", "So what do we do about the microphones?"),
        ("PhD A", "I think we keep them away from the mouth"),
        ("PhD A", "because of the breathing."),
        ("Professor C", "Fine."),
    ]
    # A label that is not one of the chunk's speakers is text; text before any label has no speaker.
    assert turns_of("intro words\nDr X: hello", ["PhD A"]) == [(None, "intro words"), (None, "Dr X: hello")]


def test_the_longest_label_wins_where_one_ends_another() -> None:
    assert turns_of("Grad A: yes", ["A", "Grad A"]) == [("Grad A", "yes")]


def test_word_counts_and_shares() -> None:
    assert speaker_words(WINDOW, SPEAKERS) == {"Professor C": 9, "PhD A": 13}
    counts = speaker_words(WINDOW, SPEAKERS)
    assert named_share(counts, {"PhD A"}) == pytest.approx(13 / 22)
    assert named_share(counts, {"PhD A", "Professor C"}) == pytest.approx(1.0)
    assert named_share(counts, {"Grad B"}) == 0.0
    assert named_share(speaker_words("", SPEAKERS), {"PhD A"}) == 0.0
