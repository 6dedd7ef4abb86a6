"""Which sentences of a transcript a summary reads: those carrying the meeting's recurring subjects."""

from __future__ import annotations

from lorebase.generation.salience import salient_passages

PASSAGES = [
    "Grad A: OK, we're on.\nGrad E: Check one. Check one.\n"
    "Grad A: The wireless microphones record each speaker on a separate channel for the transcripts.",
    "Grad B: Yeah, I think so, right.\n"
    "Grad B: The transcripts of the microphones channel need the speaker names checked before release.\n"
    "Grad E: Lunch is at noon today in the small room downstairs near the kitchen.",
    "Grad A: Mm, yeah, okay.",
]


def test_each_passage_keeps_its_sentences_about_what_the_meeting_keeps_discussing() -> None:
    first, second, third = salient_passages(PASSAGES, keep=1)
    # turn-taking and a one-off remark lose to the sentences about microphones and transcripts
    assert first == "Grad A: The wireless microphones record each speaker on a separate channel for the transcripts."
    assert second == "Grad B: The transcripts of the microphones channel need the speaker names checked before release."
    assert third == ""  # nothing in it is worth summarising
    # a passage of short sentences keeps its best ones, each once
    assert salient_passages(["Grad A: Check one. Check one. The microphones work."], keep=2) == [
        "Grad A: Check one.\nGrad A: The microphones work."]
    # two per passage: the order of the talk is kept
    assert salient_passages(PASSAGES, keep=2)[1].split("\n") == [
        "Grad B: The transcripts of the microphones channel need the speaker names checked before release.",
        "Grad E: Lunch is at noon today in the small room downstairs near the kitchen."]
    assert salient_passages(PASSAGES, keep=0) == PASSAGES
