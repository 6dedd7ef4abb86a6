"""Which sentences of a transcript a summary reads: those carrying the meeting's recurring subjects."""

from __future__ import annotations

from lorebase.generation.salience import opening, salient_passages, salient_points

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


def test_a_summary_keeps_the_points_about_what_the_meeting_keeps_discussing() -> None:
    points = [
        "- Grad E says lunch is at noon in the small room downstairs. [00:40]",
        "- The wireless microphones record each speaker on a separate channel for the transcripts. [00:10]",
        "- The transcripts need the speaker names checked before release. [00:30]",
        "- The microphones record each speaker on a separate channel for transcripts. [05:00]",  # said again, shorter
    ]
    # the recurring subject first (microphones, speaker, channel, transcripts), in its shorter wording
    assert salient_points(points, PASSAGES, words=5) == [points[3]]
    # then something else about it, in the order of the meeting; the one-off lunch remark waits
    assert salient_points(points, PASSAGES, words=15) == [points[2], points[3]]
    # with room for everything: lunch too, but never the same point twice
    assert salient_points(points, PASSAGES, words=100) == [points[0], points[2], points[3]]


def test_the_meetings_own_sentences_fill_a_summary_when_too_few_points_held_up() -> None:
    points = ["- The transcripts need the speaker names checked before release. [00:30]"]
    quotes = ["- Grad A: The wireless microphones record each speaker on a separate channel for the transcripts. [00:10]",
              "- Grad E: Lunch is at noon today in the small room downstairs near the kitchen. [00:40]"]
    at = {"00:10": 10.0, "00:30": 30.0, "00:40": 40.0}

    def position(bullet: str) -> float:
        return at[bullet[-6:-1]]

    # the model's point first; the budget left goes to the meeting's sentence about its subject, in time order
    assert salient_points(points, PASSAGES, 25, quotes, position) == [quotes[0], points[0]]
    # the points alone fill a small budget: no quote
    assert salient_points(points, PASSAGES, 5, quotes, position) == points
    # room for everything: the one-off remark comes in last, still in time order
    assert salient_points(points, PASSAGES, 100, quotes, position) == [quotes[0], points[0], quotes[1]]


def test_a_summary_opens_with_the_first_sentences_that_say_what_the_meeting_is_about() -> None:
    quotes = ["- Grad A: OK, we're on. Check one. [00:00]",
              "- Grad A: Today we decide which wireless microphones record the speakers for the new transcripts. "
              "Then lunch. [00:05]",
              "- Grad B: The transcripts of the microphones channel need the speaker names checked before release. [00:30]"]
    # turn-taking and short sentences are passed over; each sentence keeps its speaker and its time
    assert opening(quotes, 1) == ["- Grad A: Today we decide which wireless microphones record the speakers for the new "
                                  "transcripts. [00:05]"]
    assert opening(quotes, 2)[1] == quotes[2]
    assert opening(quotes, 0) == [] and opening(["- no time here"], 2) == []
    lead = opening(quotes, 1)
    points = ["- The wireless microphones record the speakers for the new transcripts, they decided. [00:06]",  # the lead again
              "- Grad E says lunch is at noon in the small room downstairs. [00:40]"]
    # the lead comes first and counts against the budget: its 17 words of 20 leave room for one more bullet
    assert salient_points(points, PASSAGES, 20, lead=lead) == [lead[0], points[1]]
    assert salient_points(points, PASSAGES, 12, lead=lead) == lead
    # a point that says what the lead said is not said again
    assert points[0] not in salient_points(points, PASSAGES, 100, lead=lead)
