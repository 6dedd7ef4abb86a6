from __future__ import annotations

import textwrap

from lorebase.ingest.files.doc_chunks import chunk_doc, doc_format
from lorebase.ingest.records import ChunkDraft

MD = textwrap.dedent(
    """\
    ---
    title: Widgets
    # not a heading: front matter
    ---
    Widgets make things.

    # Install

    ## From source

    Clone it, then:

    ```bash
    # not a heading: a shell comment
    make install
    ```

    ## With pip ##

    pip install widgets

    Usage
    =====

    Call `widget()`.

    Options and
    flags
    -----

    ~~~
    ## still code
    ~~~
    See above.
    """
)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _assert_exact_cover(text: str, chunks: list[ChunkDraft]) -> None:
    lines = _lines(text)
    covered: set[int] = set()
    prev = 0
    for c in chunks:
        assert c.start_line is not None and c.end_line is not None and c.start_line > prev
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line])
        covered.update(range(c.start_line, c.end_line + 1))
        prev = c.end_line
    assert {i for i, x in enumerate(lines, 1) if x.strip()} <= covered


def _line_of(text: str, needle: str) -> int:
    return next(i for i, x in enumerate(text.split("\n"), 1) if needle in x)


def test_markdown_sections_follow_headings() -> None:
    chunks = chunk_doc(MD, "markdown", 120)
    _assert_exact_cover(MD, chunks)
    paths = [c.meta["heading_path"] for c in chunks]
    assert paths == [[], ["Install", "From source"], ["Install", "With pip"], ["Usage"], ["Usage", "Options and flags"]]
    preamble, source, pip, usage, options = chunks
    assert preamble.start_line == 1 and "Widgets make things." in preamble.text
    # "# Install" has no text of its own: it opens the chunk of its first subsection.
    assert source.start_line == _line_of(MD, "# Install")
    assert "# not a heading: a shell comment" in source.text and source.end_line == _line_of(MD, "make install") + 1
    assert pip.start_line == _line_of(MD, "## With pip")
    assert usage.start_line == _line_of(MD, "Usage")  # setext: the text line, not the underline
    assert options.start_line == _line_of(MD, "Options and")  # a two-line setext title
    assert "## still code" in options.text


def test_long_markdown_section_splits_at_paragraphs_not_in_fences() -> None:
    paras = [f"Paragraph {i} first line.\nParagraph {i} second line." for i in range(12)]
    fence = "```python\n" + "\n\n".join(f"x_{i} = {i}" for i in range(4)) + "\n```"
    body = "\n\n".join(paras[:5] + [fence] + paras[5:])
    text = f"# Guide\n\nIntro.\n\n## Details\n\n{body}\n"
    chunks = chunk_doc(text, "markdown", 12)
    _assert_exact_cover(text, chunks)
    details = [c for c in chunks if c.meta["heading_path"] == ["Guide", "Details"]]
    assert len(details) > 2
    assert [c.meta["part"] for c in details] == list(range(1, len(details) + 1))
    for c in chunks:
        assert c.start_line is not None and c.end_line is not None
        assert c.end_line - c.start_line + 1 <= 12
        assert c.text.count("```") % 2 == 0, "a fenced block was cut"
        first = c.text.split("\n")[0]
        assert first.startswith(("Paragraph", "```", "#", "Intro")), first


def test_rst_titles_with_over_and_underlines() -> None:
    rst = textwrap.dedent(
        """\
        =======
         Tools
        =======

        Intro text.

        Setup
        -----

        Run it::

            Not a title
            -----------

        Advanced
        ~~~~~~~~

        Details.

        API
        ---

        Calls.
        """
    )
    chunks = chunk_doc(rst, "rst", 120)
    _assert_exact_cover(rst, chunks)
    assert [c.meta["heading_path"] for c in chunks] == [
        ["Tools"],
        ["Tools", "Setup"],
        ["Tools", "Setup", "Advanced"],
        ["Tools", "API"],
    ]
    assert "Not a title" in chunks[1].text
    assert chunks[0].start_line == 1


def test_plain_text_groups_paragraphs() -> None:
    paras = ["\n".join(f"para {p} line {i}" for i in range(9)) for p in range(12)]
    text = "\n\n".join(paras) + "\n"
    chunks = chunk_doc(text, "text", 120)
    _assert_exact_cover(text, chunks)
    assert 1 < len(chunks) < 12
    for c in chunks:
        assert c.text.startswith("para ") and c.text.split("\n")[0].endswith("line 0")
        assert c.meta["heading_path"] == []


def test_doc_format_detection() -> None:
    assert doc_format("docs/index.md") == "markdown"
    assert doc_format("docs/index.rst") == "rst"
    assert doc_format("notes.txt") == "text"
    assert doc_format("README") == "markdown"
    assert doc_format("CHANGELOG") == "markdown"
    assert doc_format("src/main.py") is None
    assert doc_format("Makefile") is None
