from lorebase.citations import Citation
from lorebase.generation.grounding import check, is_abstention, support
from lorebase.generation.prompts import ABSTAIN_TEXT, Evidence, answer_messages, fit_evidence


def ev(label: str, text: str) -> Evidence:
    return Evidence(Citation(id=label, source_id="src_" + label, kind="doc", title=label), text)


SOURCES = [
    ev("S1", "The scheduler retries a failed job three times with exponential backoff, starting at 30 seconds."),
    ev("S2", "Transcripts are chunked into windows of 45 to 90 seconds that end at sentence boundaries."),
]


def test_supported_answer_with_real_citations() -> None:
    g = check("A failed job is retried three times with exponential backoff [S1].", SOURCES)
    assert g.supported and g.cited == ["S1"] and not g.invalid


def test_citation_of_a_missing_source_is_removed_and_reported() -> None:
    g = check("Failed jobs are retried three times with backoff [S7].", SOURCES)
    assert g.invalid == ["S7"] and "[S7]" not in g.answer
    assert g.supported and g.cited == ["S1"]  # the sentence is still supported, by S1
    assert "[S1]" in g.answer


def test_unsupported_claim_fails_even_when_cited() -> None:
    g = check("The scheduler sends an email to the administrator every Tuesday [S1].", SOURCES)
    assert not g.supported and "not supported" in g.reason


def test_uncited_but_supported_sentence_gets_its_source() -> None:
    g = check("Transcript chunks span 45 to 90 seconds and end at sentence boundaries.", SOURCES)
    assert g.supported and g.cited == ["S2"] and g.answer.endswith("[S2]")
    assert g.sentences[0].added


def test_mixed_answer_mostly_invented_fails() -> None:
    answer = ("Jobs are retried three times [S1]. The retry limit was chosen after a 2019 outage in the Frankfurt "
              "data centre that lasted eleven hours and affected every customer in Europe.")
    assert not check(answer, SOURCES).supported


def test_abstention_is_recognised() -> None:
    g = check(ABSTAIN_TEXT, SOURCES)
    assert g.abstained and not g.supported
    assert is_abstention("I could not find that in the sources.")
    assert not is_abstention("Jobs are retried three times [S1].")


def test_support_folds_simple_inflections() -> None:
    assert support("it returns the chunks", "return chunk") == 1.0
    assert support("", "anything") == 1.0


def test_prompt_numbers_sources_and_fits_the_budget() -> None:
    msgs = answer_messages("How often are jobs retried?", SOURCES)
    assert msgs[0]["role"] == "system" and "[S1]" in msgs[-1]["content"] and "[S2]" in msgs[-1]["content"]
    count = lambda m: sum(len(x["content"].split()) for x in m)  # noqa: E731 - words as a stand-in tokenizer
    full = count(msgs)
    kept = fit_evidence("How often are jobs retried?", SOURCES, count, budget=full - 5)
    assert [e.label for e in kept] == ["S1"]  # the lower-ranked source went first
    long = [ev("S1", "word " * 2000)]
    cut = fit_evidence("q?", long, count, budget=300)
    assert count(answer_messages("q?", cut)) <= 300 and cut[0].label == "S1"


def test_citations_after_the_full_stop_belong_to_the_sentence_before() -> None:
    answer = "Failed jobs are retried three times. [S1] Chunks span 45 to 90 seconds. [S2]"
    g = check(answer, SOURCES)
    assert g.supported and g.cited == ["S1", "S2"]
    assert [c.labels for c in g.sentences] == [["S1"], ["S2"]]
    assert g.answer.count("[S1]") == 1 and g.answer.count("[S2]") == 1


def test_a_code_source_is_shown_without_its_commit_and_shared_indentation() -> None:
    code = Citation(id="S1", source_id="code:o/r:src/app.py", kind="code", title="src/app.py", path="src/app.py",
                    start_line=10, end_line=16, commit="abcdef0123456789")
    text = ("        def send(self):\n            return self.body\n\u2026\n"
            "    def close(self):\n        if self.open:\n            self.sock.close()")
    msgs = answer_messages("How is it closed?", [Evidence(code, text)])
    shown = msgs[-1]["content"]
    # the header keeps path and lines; the citation the API returns keeps the commit
    assert "[S1] src/app.py:10-16\n" in shown and "abcdef0" not in shown and code.label.endswith("@abcdef0")
    # each run between the gap marks loses its own shared indentation, keeping the nesting inside it
    assert "def send(self):\n    return self.body\n\u2026\ndef close(self):\n    if self.open:\n        self.sock.close()" in shown
    # a document's text is shown as it is (indentation can be markup there)
    doc = Citation(id="S2", source_id="doc:o/r:README.md", kind="doc", title="README.md", path="README.md",
                   start_line=1, end_line=2, commit="abcdef0123456789")
    assert "[S2] README.md:1-2\n- a\n    - nested" in answer_messages("q?", [Evidence(doc, "- a\n    - nested")])[-1]["content"]
