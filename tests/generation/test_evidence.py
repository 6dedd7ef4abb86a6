"""Evidence selection keeps the lines that bear on the question, with their exact positions."""

from __future__ import annotations

import numpy as np

from lorebase.citations import Citation
from lorebase.generation import evidence
from lorebase.generation.disfluency import clean_speech
from lorebase.generation.sentence_stream import SentenceStream

CODE = """def get_encodings_from_content(content):
    \"\"\"Returns encodings from given content string.

    :param content: bytestring to extract encodings from.
    \"\"\"
    warnings.warn(
        "In requests 3.0, get_encodings_from_content will be removed.",
        DeprecationWarning,
    )

    charset_re = re.compile(r'<meta.*?charset=["\\']*(.+?)["\\'>]', flags=re.I)
    pragma_re = re.compile(r'<meta.*?content=["\\']*;?charset=(.+?)["\\'>]', flags=re.I)
    xml_re = re.compile(r'^<\\?xml.*?encoding=["\\']*(.+?)["\\'>]')

    return (
        charset_re.findall(content)
        + pragma_re.findall(content)
        + xml_re.findall(content)
    )
"""

TALK = (
    "Alice: Good morning everyone. Let's start with the budget.\n"
    "Bob: The remote control should cost no more than twelve euros. We agreed on a rubber case.\n"
    "Alice: Fine. Next item is the marketing report."
)


def _code_cite() -> Citation:
    return Citation(id="S1", source_id="src_a", kind="code", title="requests/utils.py",
                    uri="https://github.com/o/r/blob/abc/requests/utils.py#L480-L498",
                    path="requests/utils.py", start_line=480, end_line=498, commit="abc")


def test_code_lines_that_answer_are_kept_with_their_line_numbers() -> None:
    [sel] = evidence.select("What does get_encodings_from_content return?", [(_code_cite(), CODE, None)],
                            None, None, budget_chars=220)
    assert "get_encodings_from_content" in sel.text
    assert len(sel.text) <= 300 and len(sel.text) < len(CODE)
    # the narrowed citation covers exactly the kept lines, and its link follows
    assert 480 <= sel.citation.start_line <= sel.citation.end_line <= 498
    assert sel.citation.uri.endswith(f"#L{sel.citation.start_line}-L{sel.citation.end_line}")
    kept_lines = CODE.split("\n")[sel.citation.start_line - 480: sel.citation.end_line - 480 + 1]
    for unit in sel.units:
        assert unit.text in "\n".join(kept_lines)


def test_transcript_sentences_keep_times_and_speakers() -> None:
    c = Citation(id="S2", source_id="src_t", kind="transcript", title="Meeting 1", start_time=600.0, end_time=690.0,
                 uri="lorebase://source/src_t#t=600")
    [sel] = evidence.select("How much should the remote control cost?", [(c, TALK, None)], None, None, budget_chars=120)
    assert "twelve euros" in sel.text and sel.text.startswith("Bob:")
    assert 600.0 < sel.citation.start_time < sel.citation.end_time <= 690.0
    assert sel.citation.uri.endswith(f"t={int(sel.citation.start_time)}")
    # exact times from the ingester's spans win over interpolation
    i = TALK.index("The remote")
    spans = [[0, i, 600.0, 640.0], [i, i + 60, 641.5, 655.0], [i + 60, len(TALK), 655.0, 690.0]]
    [sel2] = evidence.select("How much should the remote control cost?", [(c, TALK, {"spans": spans})], None, None, 120)
    assert sel2.best.start_time == 641.5


HEARING = (
    "Hefin David AM: What are your views on the decision not to accredit the University of South Wales for teacher training?\n"
    "Kirsty Williams AM: I was disappointed, but the council made an independent judgement on quality.\n"
    "Hefin David AM: Thank you.\n"
    "Dawn Bowden AM: The decision on teacher training in South Wales worries my constituents."
)


def test_a_named_speakers_sentences_outrank_someone_elses_question_in_the_same_words() -> None:
    c = Citation(id="S1", source_id="s", kind="transcript", title="Education 18", start_time=100.0, end_time=160.0)
    q = "What was Kirsty Williams' opinion of the decision not to accredit the University of South Wales for teacher training?"
    [sel] = evidence.select(q, [(c, HEARING, None)], None, None, budget_chars=120)
    assert sel.best.speaker == "Kirsty Williams AM" and "independent judgement" in sel.text
    # the relevance a selection reports is the plain match (the repeated question), not the bonus
    plain = evidence.lexical_scores(q, evidence.units_of(c, HEARING))
    assert sel.score == max(plain) and plain[0] == max(plain)
    # no speaker named: the closest words win, as before
    [other] = evidence.select(q.replace("Kirsty Williams'", "the minister's"), [(c, HEARING, None)], None, None, 120)
    assert other.best.speaker == "Hefin David AM"


def test_embedder_scores_find_meaning_without_shared_words() -> None:
    c = Citation(id="S1", source_id="s", kind="doc", title="notes", start_line=1, end_line=3, path="notes.md")
    text = "The weather was sunny.\nWe chose a rubber case for the device.\nLunch was at noon."

    def embed(texts: list[str]) -> np.ndarray:  # a stand-in embedder: only the second line is near the query
        return np.asarray([[1.0, 0.0] if "rubber" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    [sel] = evidence.select("Which material was picked for the casing?", [(c, text, None)], embed,
                            np.asarray([1.0, 0.0], dtype=np.float32), budget_chars=40)
    assert sel.text == "We chose a rubber case for the device." and sel.citation.start_line == 2


def test_sentence_stream_emits_whole_sentences_with_their_citations() -> None:
    s = SentenceStream()
    out: list[str] = []
    for tok in ["It returns", " a list of encodings. [S", "1] The list", " may be empty", ".", " [S2]", "\n```py\nx = 1", "\n```"]:
        out.extend(s.feed(tok))
    out.extend(s.close())
    assert out == ["It returns a list of encodings. [S1]", "The list may be empty. [S2]", "```py\nx = 1\n```"]
    # an unclosed fence is closed, so it cannot swallow what follows it on a page
    s2 = SentenceStream()
    assert list(s2.feed("Look:\n```\ncode here")) == ["Look:"]
    assert list(s2.close()) == ["```\ncode here\n```"]


def test_transcript_evidence_is_quoted_without_hesitations_and_keeps_the_spoken_times() -> None:
    talk = ("Professor D: Um.\n"
            "Professor D: I think it 's true that the the OGI folk found that, uh, th that LDA RASTA helps.\n"
            "Grad E: Mm-hmm.")
    c = Citation(id="S1", source_id="s", kind="transcript", title="Bro005", start_time=0.0, end_time=30.0)
    units = evidence.units_of(c, talk)
    # the fillers said nothing: no unit of their own
    assert [u.text for u in units] == ["Professor D: I think it's true that the OGI folk found that, that LDA RASTA helps."]
    # the times are those of the original words, not of the shorter cleaned text
    start = talk.index("I think")
    assert units[0].start_time == round(30.0 * start / len(talk), 2)
    assert clean_speech("The ER is full, er, mostly; we do n't know.") == "The ER is full, mostly; we don't know."
