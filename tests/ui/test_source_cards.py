"""Citations in the answer text become links (chips) only in prose, through a real Markdown parser;
a fence the model left open is closed; cards are plain data whose excerpt shows the lines that
support the answer."""

from __future__ import annotations

import pytest

from lorebase.citations import Citation
from lorebase.generation.grounding import SentenceCheck
from lorebase.ui.source_cards import card, cards, close_fences, excerpt, link_citations, link_times, supports_by_label

markdown_it = pytest.importorskip("markdown_it")

CODE = Citation(id="S1", source_id="src_a1", kind="code", title="jobs/retry.py", repo="o/r", path="jobs/retry.py",
                start_line=10, end_line=40, commit="abc1234def",
                uri="https://github.com/o/r/blob/abc1234def/jobs/retry.py#L10-L40")
TALK = Citation(id="S2", source_id="src_b2", kind="transcript", title="IS1001a", start_time=70.0, end_time=95.0,
                uri="lorebase://source/src_b2#t=70")


def _html(md: str) -> str:
    return markdown_it.MarkdownIt("commonmark").render(md)


def test_citations_in_prose_become_links_to_the_viewer_with_a_title() -> None:
    html = _html(link_citations("A failed job waits thirty seconds [S2]. The delay doubles [S1][S2].", [CODE, TALK]))
    assert html.count('<a href="/sources/src_b2?t=70-95&amp;cite=S2#cited" title="S2 · IS1001a @ 01:10">S2</a>') == 2
    assert '<a href="/sources/src_a1?lines=10-40&amp;commit=abc1234def&amp;cite=S1#L10" title="S1 · jobs/retry.py:10-40@abc1234">S1</a>' in html


def test_code_headings_and_unknown_labels_are_left_as_written() -> None:
    md = "\n".join([
        "# Retries [S1]",
        "Call `retry_delay(2) # [S1]` like this [S1]:",
        "```python",
        "x = data[S1]  # [S2]",
        "```",
        "",
        "    indented = [S2]",
        "",
        "- a list item [S2]",
        "    continued [S1]",
        "And [S9] is no source.",
    ])
    html = _html(link_citations(md, [CODE, TALK]))
    assert "<h1>Retries [S1]</h1>" in html
    assert "<code>retry_delay(2) # [S1]</code>" in html and "x = data[S1]  # [S2]" in html
    assert "<pre><code>indented = [S2]\n</code></pre>" in html
    assert html.count("<a ") == 3  # "like this", the list item and its continuation
    assert "And [S9] is no source." in html


def test_an_unclosed_fence_is_closed_so_what_follows_it_is_not_code() -> None:
    text = "Use it like this [S1]:\n```python\nretry_delay(3)\n"
    fixed = close_fences(text)
    assert fixed == text + "```"
    html = _html(link_citations(fixed, [CODE]) + "\n\nNote: after the code.")
    assert "<p>Note: after the code.</p>" in html and '<a href="/sources/src_a1' in html
    assert close_fences("```\nx\n```\n") == "```\nx\n```\n"  # closed ones stay as they are
    assert close_fences("~~~~\nx\n~~~\n") == "~~~~\nx\n~~~\n~~~~"  # a shorter fence does not close a longer one
    assert close_fences("inline ```code``` only") == "inline ```code``` only"


def test_the_excerpt_shows_the_supporting_lines_even_past_the_snippet() -> None:
    filler = [f"def report_{i}(jobs): return ', '.join(jobs)  # report number {i}" for i in range(30)]
    passage = "\n".join([*filler, "def retry_delay(attempt):", "    return 30 * 2 ** (attempt - 1)"])
    assert passage.index("retry_delay") > 400  # beyond the 400-character snippet a citation carries
    ex = excerpt(CODE, passage, ["The delay of retry_delay doubles for each attempt."], limit=300)
    assert "def retry_delay(attempt):" in ex.text and ex.cut_before and not ex.cut_after
    assert ex.text.startswith("def report_28") and ex.first_line == CODE.start_line + 28  # two lines lead in, numbered as in the file
    plain = excerpt(CODE, passage, [], limit=300)
    assert plain.text.startswith("def report_0") and plain.cut_after and not plain.cut_before


def test_cards_say_which_sentences_each_source_supports() -> None:
    sentences = [SentenceCheck("A failed job waits thirty seconds .", ["S2"], 1.0),
                 SentenceCheck("The delay doubles each time.", ["S1", "S2"], 0.8, added=True),
                 SentenceCheck("The dashboard is blue.", ["S1"], 0.2),
                 SentenceCheck("Nothing supports this.", [], 0.1)]
    ok = {"supported": True}
    assert supports_by_label(sentences, 0.6) == {
        "S2": [{"text": "A failed job waits thirty seconds.", **ok}, {"text": "The delay doubles each time.", **ok}],
        "S1": [{"text": "The delay doubles each time.", **ok}, {"text": "The dashboard is blue.", "supported": False}],
    }
    passages = {"S2": "We agreed that a failed job waits thirty seconds."}
    [code, talk] = cards([CODE, TALK], passages, sentences, text="It waits [S2].", threshold=0.6)
    assert (code["web"], code["web_name"], code["code"], code["cited"]) == (CODE.uri, "GitHub", True, False)
    assert talk["web"] is None and talk["label"] == "IS1001a @ 01:10" and talk["kind_name"] == "transcript"
    assert talk["excerpt"] == "We agreed that a failed job waits thirty seconds." and talk["cited"]
    assert talk["viewer"] == "/sources/src_b2?t=70-95&cite=S2#cited"
    assert card(TALK)["supports"] == [] and "cited" not in card(TALK)


def test_a_summarys_moments_become_chips_to_the_transcript() -> None:
    html = _html(link_times("- Retries double [01:10]\n- `[02:00]` stays code\n\n# At [03:00]", TALK))
    assert '<a href="/sources/src_b2?t=70&amp;cite=01:10#cited" title="IS1001a @ 01:10">01:10</a>' in html
    assert "<code>[02:00]</code>" in html and "<h1>At [03:00]</h1>" in html
