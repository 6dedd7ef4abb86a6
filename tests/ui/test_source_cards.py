"""Source cards render, through a real Markdown parser, as a link to the exact place (when the
origin is known) and the snippet as inert text."""

from __future__ import annotations

import pytest

from lorebase.citations import Citation
from lorebase.ui.source_cards import card, sources_line

markdown_it = pytest.importorskip("markdown_it")


def _html(md: str) -> str:
    return markdown_it.MarkdownIt("commonmark").render(md)


def test_a_code_card_links_path_lines_and_sha_to_github() -> None:
    uri = "https://github.com/o/r/blob/abc1234def/src/jobs.py#L10-L42"
    c = Citation(id="S1", source_id="s", kind="code", title="src/jobs.py", repo="o/r", path="src/jobs.py",
                 start_line=10, end_line=42, commit="abc1234def", uri=uri, snippet="x = '```'\nprint(x)")
    html = _html(card(c))
    assert f'<a href="{uri}">src/jobs.py:10-42@abc1234</a>' in html
    # the snippet stays one code block even though it holds a fence of its own
    assert html.count("<pre><code>") == 1 and "x = '```'\nprint(x)" in html


def test_a_lecture_card_names_title_and_time_and_links_the_recording_when_known() -> None:
    c = Citation(id="S2", source_id="s", kind="transcript", title="Lecture 2", start_time=195.4,
                 uri="https://example.org/lecture-2#t=195", snippet="Fusion adds 1/(60+rank).")
    assert '<a href="https://example.org/lecture-2#t=195">Lecture 2 @ 03:15</a>' in _html(card(c))
    local = c.model_copy(update={"uri": "lorebase://source/s#t=195"})
    html = _html(card(local))
    assert "Lecture 2 @ 03:15" in html and "<a " not in html  # a lorebase:// reference is no web link


def test_snippets_cannot_inject_links_html_or_lists() -> None:
    evil = "[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n1. one\n- two\n# big"
    c = Citation(id="S3", source_id="s", kind="issue", title="#5 t", number=5, snippet=evil)
    html = _html(card(c))
    assert "<a " not in html and "<img" not in html
    assert "<ol>" not in html and "<ul>" not in html and "<h1>" not in html
    assert "[click](javascript:alert(1))" in html  # shown as the text it is


def test_the_sources_line_names_every_source_by_its_element_name() -> None:
    cs = [Citation(id=f"S{i}", source_id="s", kind="issue", title="t", number=i) for i in (1, 2)]
    assert sources_line(cs) == "**Sources:** S1 \\#1 · S2 \\#2"
    assert sources_line([]) == ""
