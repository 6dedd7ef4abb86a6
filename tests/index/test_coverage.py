"""Which of a question's subject words the sources never mention: a real store, real bm25s, scoped
the way a search is, through SearchService.unmentioned."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lorebase.index.bm25 import Bm25Index
from lorebase.index.code_tokens import tokenize
from lorebase.index.coverage import SubjectWords, unmentioned
from lorebase.index.english import english_words
from lorebase.index.search import SearchService
from lorebase.settings import Settings
from lorebase.store import Store
from tests.index.corpus import add_source


def fill(store: Store) -> dict[str, list[int]]:
    return {
        "flask": add_source(store, "code:o/flask:src/app.py",
                            ["def send_response(client):\n    return compress(gzip_body(client.request))",
                             "Limits: MAX_CONTENT_LENGTH caps the request body."],
                            kind="code", repo="o/flask", path="src/app.py", title="src/app.py"),
        # another repository: its words must not count for a question scoped to o/flask
        "other": add_source(store, "doc:o/other:README.md", ["Brotli compression and a GPU kernel."],
                            kind="doc", repo="o/other", path="README.md", title="README.md"),
        "meeting": add_source(store, "transcript:meetings/ts1", [
            "Marketing: the L_C_D_ screen costs more. We set it up on the remote.",
            "Designer: a set of buttons, and the case goes up in price.",
            "Designer: we agree the colour stays yellow, and we prioritise the centre buttons.",
            "Chair: Carol Dhillabeer, the finance director, joins us.",
        ], kind="transcript", title="ts1", lecture="ts1"),
    }


def test_holders_are_the_chunks_of_the_scope_that_hold_a_token(store: Store) -> None:
    ids = fill(store)
    bm25 = Bm25Index(store, "english")
    brotli, compress, zebra = (tokenize(w, "english")[0] for w in ("Brotli", "compress", "zebra"))
    every = bm25.holders([brotli, compress, zebra])
    assert every[brotli].size == 1 and every[compress].size == 2 and every[zebra].size == 0
    flask = bm25.holders([brotli, compress], np.asarray(ids["flask"]))
    assert flask[brotli].size == 0 and flask[compress].size == 1
    # a compound written without its separators: the transcript's "L_C_D_" is "LCD"
    assert bm25.holders(["lcd"], np.asarray(ids["meeting"]))["lcd"].size == 1


def test_the_subject_words_leave_out_how_the_question_is_framed() -> None:
    words = SubjectWords("english")
    # "pipeline" and "stage" describe a flow ("the serialization pipeline"), like "flow" and "chain"
    subject = words.of("What is the architectural design rationale of the Brotli compression pipeline stages?")
    assert set(subject.values()) == {"Brotli", "compression"}
    assert "think" not in SubjectWords("english").of("What did the team think about having an LCD?").values()
    assert set(words.of("How often is a failed job retried?").values()) == {"failed", "job", "retried"}
    assert set(words.of("Explain the whole design: how long does a job wait before its first retry?").values()) == {
        "job", "wait", "retry"}
    # a compound name is looked up by its parts
    assert set(words.of("How is tuple-to-json handled?").values()) == {"tuple-to-json"}
    assert set(words.of("How is tuple-to-json handled?")) == {"tupl", "json"}


def test_unmentioned_words_are_named_within_the_searched_scope(settings: Settings, store: Store) -> None:
    fill(store)
    search = SearchService(settings, store)
    flask = {"repo": "o/flask"}
    assert search.unmentioned("How does it compress responses with Brotli for the client?", flask) == ["Brotli"]
    assert search.unmentioned("How does it compress responses with Brotli for the client?") == []  # o/other has it
    assert search.unmentioned("Which GPU or CUDA compresses the request body?", flask) == ["GPU", "CUDA"]
    assert search.unmentioned("What is the design rationale for capping the request body?", flask) == []
    # the answer path's one call: the same hits as retrieve, and the words, with the scope resolved once
    q = "How does it compress responses with Brotli for the client?"
    hits, missing = search.retrieve_checked(q, 3, flask, mode="bm25")
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in search.retrieve(q, 3, flask, mode="bm25")]
    assert hits and missing == ["Brotli"]
    assert search.retrieve_checked(q, 3, flask, mode="bm25", check=False)[1] == []
    assert search.retrieve_checked(q, 3, {"repo": "o/none"}, mode="bm25") == ([], [])


def _in_meeting(store: Store) -> Callable[[str], list[str]]:
    """``unmentioned`` scoped to the filled store's meeting."""
    ids = fill(store)
    bm25, words, meeting = Bm25Index(store, "english"), SubjectWords("english"), np.asarray(ids["meeting"])
    return lambda question: unmentioned(question, words, bm25, meeting)


def test_a_word_split_in_two_counts_only_when_one_chunk_holds_both_halves(store: Store) -> None:
    check = _in_meeting(store)
    # "set it up" holds both halves of "setup" in one chunk; "LCD" is the transcript's L_C_D_
    assert check("What did Marketing say about the LCD setup?") == []
    # "price" and "cost" are in different chunks: "pricecost" is not a word of the meeting
    assert check("Was the pricecost discussed?") == ["pricecost"]


def test_a_category_noun_frames_the_question_and_its_members_name_the_subject(store: Store) -> None:
    check = _in_meeting(store)
    # the meeting names the equipment (a screen, buttons), never the word "equipment"
    assert check("What did Designer think about setting up the equipment?") == []
    assert check("What did Designer think about setting up the GPU?") == ["GPU"]


def test_a_prefixed_or_abbreviated_word_is_mentioned_by_its_stem_or_the_code_abbreviation(store: Store) -> None:
    ids = fill(store)
    bm25, words, flask = Bm25Index(store, "english"), SubjectWords("english"), np.asarray(ids["flask"])

    def check(question: str) -> list[str]:
        return unmentioned(question, words, bm25, flask)

    # the chunks say "compress" and "client"; a question about uncompressed bodies or subclients asks about them
    assert check("Which client gets an uncompressed request body?") == []
    assert check("Which subclient gets the response?") == []
    # MAX_CONTENT_LENGTH is how code writes "maximum content length"
    assert check("What caps the maximum content length?") == []
    # only negating and part-of prefixes come off: "recompress" is not "compress" again
    assert check("Which client does the recompress?") == ["recompress"]
    # the stem after the prefix must itself be in the sources
    assert check("Which subzebra gets the response?") == ["subzebra"]
    # an abbreviation counts only for its own word
    assert check("What caps the minimum content length?") == ["minimum"]


def test_a_derived_word_that_sums_up_does_not_count_but_a_plain_noun_does(settings: Settings, store: Store) -> None:
    fill(store)
    search = SearchService(settings, store)
    ts1, flask = {"lecture": "ts1"}, {"repo": "o/flask"}
    # questions sum up in the asker's words: the speakers never say "prioritization",
    # "affordability" or "optional", yet that is what they talk about
    assert search.unmentioned("What did Marketing think about the affordability of the screen?", ts1) == []
    assert search.unmentioned("Summarize the optional buttons and the prioritization of the case.", ts1) == []
    # so do SWE-QA's questions about code: "the conceptual role of the stateless handler"
    assert search.unmentioned("What is the conceptual role of the stateless client response?", flask) == []
    # in a compound, the derived part is left out and the rest must still be there
    assert search.unmentioned("How is the client-agnostic request body capped?", flask) == []
    assert search.unmentioned("How is the zebra-agnostic request body capped?", flask) == ["zebra-agnostic"]
    # a plain noun, an activity or a name the sources never say is a subject they skipped
    assert search.unmentioned("What did Marketing think about the laptop?", ts1) == ["laptop"]
    assert search.unmentioned("What did Marketing say about swimming?", ts1) == ["swimming"]
    assert search.unmentioned("What did Marketing think about the GPU affordability?", ts1) == ["GPU"]
    assert search.unmentioned("How is the affordability of Brotli request bodies capped?", flask) == ["Brotli"]
    # a plain noun with an ending like a derived word's still counts ("storage", "package")
    assert search.unmentioned("Which storage caps the request body?", flask) == ["storage"]


def test_pronouns_other_spellings_and_dis_words_are_not_missing_subjects(store: Store) -> None:
    check = _in_meeting(store)
    assert check("What did he say about the screen?") == []  # a pronoun names no subject
    # the meeting spells "colour" and "centre"; the question "color" and "center"
    assert check("What did Designer say about the color?") == []
    assert check("What did Designer say about the center buttons?") == []
    # "disagree" is about agreeing, which the meeting does; the other word must still be there
    assert check("Why did Designer disagree about the zebra?") == ["zebra"]
    assert check("Why did Designer disagree about the buttons?") == []


def test_a_long_name_one_letter_from_the_transcripts_spelling_is_mentioned(store: Store) -> None:
    check = _in_meeting(store)
    # the transcript heard "Dhillabeer"; the asker wrote "Shillabeer", "Dhilabeer" or "Dhillaebeer"
    for name in ("Shillabeer", "Dhilabeer", "Dhillaebeer"):
        assert check(f"What did Carol {name} think about the buttons?") == []
    # two letters away is another name; so is a lower-case word one letter away, or a short name
    assert check("What did Carol Shilabeer think about the buttons?") == ["Shilabeer"]
    assert check("What did Carol say about the yellow zolour?") == ["zolour"]
    assert check("What did Carol Yellov say about the buttons?") == ["Yellov"]  # six letters: "yellow" does not count


def test_a_mistyped_word_is_found_one_letter_away_unless_it_is_an_english_word(store: Store) -> None:
    ids = fill(store)
    bm25, meeting = Bm25Index(store, "english"), np.asarray(ids["meeting"])
    dictionary = english_words()
    assert {"burton", "button", "yellow"} <= dictionary and "buttns" not in dictionary

    def check(question: str, words: SubjectWords) -> list[str]:
        return unmentioned(question, words, bm25, meeting)

    typed, plain = SubjectWords("english", dictionary), SubjectWords("english")
    # "buttns" is no word: the asker meant the meeting's "buttons"; without a dictionary nothing is a typo
    assert check("What did Designer say about the buttns?", typed) == []
    assert check("What did Designer say about the buttns?", plain) == ["buttns"]
    # "burton" is a word one letter from "button": a different subject, still missing
    assert check("What did Designer say about the burton?", typed) == ["burton"]
    # five letters is too short to guess from ("yelow" is one letter from "yellow")
    assert check("What did Designer say about the yelow case?", typed) == ["yelow"]


def test_two_words_of_the_question_count_as_the_one_word_the_sources_write(store: Store) -> None:
    ids = add_source(store, "transcript:tutorials/artboards", [
        "Select the artboard in the Layers panel, then choose Export in Photoshop.",
    ], kind="transcript", title="artboards", lecture="artboards")
    bm25, words, video = Bm25Index(store, "english"), SubjectWords("english"), np.asarray(ids)
    assert unmentioned("How do I export an art board from photo shop?", words, bm25, video) == []
    # each word alone, or joined to a word it does not stand beside, is not the compound
    assert unmentioned("What is on the board?", words, bm25, video) == ["board"]
    assert unmentioned("Which art is on the export board?", words, bm25, video) == ["art", "board"]


def test_a_long_question_counts_only_the_names_it_asks_about(store: Store) -> None:
    ids = fill(store)
    bm25, flask = Bm25Index(store, "english"), np.asarray(ids["flask"])
    typed, plain = SubjectWords("english", english_words()), SubjectWords("english")
    long_ = ("Why does the response sending function that compresses the client's request body reconcile the "
             "tension between thousands of high-volume requests and {}?")
    # 24 words: "tension", "thousands" and "high-volume" are the asker's wording, not missing subjects
    assert unmentioned(long_.format("the limits"), typed, bm25, flask) == []
    # a possessive is its word: "the tension's" is as plain as "the tension"
    assert unmentioned(long_.format("the limits").replace("tension between", "tension's pull between"), typed, bm25,
                       flask) == []
    # a name still counts however long the question ("GPU"; "docx" is no English word)
    assert unmentioned(long_.format("the GPU"), typed, bm25, flask) == ["GPU"]
    assert unmentioned(long_.format("docx files"), typed, bm25, flask) == ["docx"]
    # without a dictionary no word is known to be plain: every subject word counts, as before
    assert unmentioned(long_.format("the limits"), plain, bm25, flask) == ["tension", "between", "thousands", "high-volume"]
    # a short question counts its plain words too
    assert unmentioned("How does the app compress responses for thousands of users?", typed, bm25, flask) == ["thousands", "users"]
