"""Transcript text cleaned of hesitations before the model or a quote shows it."""

from __future__ import annotations

from lorebase.generation.disfluency import clean_speech, clean_transcript


def test_hesitations_stutters_and_split_contractions_go_and_the_words_stay() -> None:
    assert clean_speech("Uh, so, um, the remote costs twelve euros.") == "So, the remote costs twelve euros."
    assert clean_speech("We do n't know, th that is the the question.") == "We don't know, that is the question."
    assert clean_speech("It 's what they 're after, hmm, I 'd say.") == "It's what they're after, I'd say."
    # an upper-case ER is a word; short real words before a longer one are not false starts
    assert clean_speech("The ER is full, er, mostly.") == "The ER is full, mostly."
    assert clean_speech("So we go to the theatre in a day.") == "So we go to the theatre in a day."
    assert clean_speech("Um.") == "" and clean_speech("Mm-hmm.") == ""


def test_a_transcript_keeps_its_speakers_and_drops_lines_that_only_hesitate() -> None:
    text = "Professor D: Um.\nGrad E: I think it 's uh the the noise.\nGrad F: Mm-hmm.\nno label here, um, fine"
    assert clean_transcript(text) == "Grad E: I think it's the noise.\nno label here, fine"
