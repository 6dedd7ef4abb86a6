"""Cutting documentation (Markdown, reStructuredText, plain text) into chunks by section.

Each heading starts a chunk that runs to the next heading; ``meta["heading_path"]`` holds the
titles from the top level down (``["Install", "From source"]``). Headings inside fenced code
blocks are not headings. Long sections are cut at blank lines between paragraphs, never inside a
fence unless a fence alone is too long. Ranges are exact 1-based lines, and the chunks cover every
non-blank line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from lorebase.ingest.files.spans import make_chunk, split_span, text_lines, trim_span
from lorebase.ingest.records import ChunkDraft

DOC_MAX_CHARS = 2500  # a section longer than this (or than max_chunk_lines) is cut at paragraphs
TEXT_TARGET_LINES = 40

DOC_EXTENSIONS: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".mkd": "markdown",
    ".rst": "rst", ".rest": "rst", ".txt": "text", ".text": "text", ".adoc": "text", ".asciidoc": "text",
}  # fmt: skip
# Files usually named without an extension that are documentation.
DOC_NAMES = frozenset(
    {"readme", "changelog", "changes", "history", "news", "license", "licence", "copying", "authors",
     "contributing", "contributors", "notice", "install", "todo", "security", "maintainers", "code_of_conduct"}
)  # fmt: skip


def doc_format(path: str) -> str | None:
    """The format of a documentation file ("markdown", "rst" or "text"), else None."""
    p = PurePosixPath(path)
    fmt = DOC_EXTENSIONS.get(p.suffix.lower())
    if fmt is not None:
        return fmt
    if not p.suffix and p.name.lower() in DOC_NAMES:
        return "markdown"  # plain text reads the same, and "=====" underlines become headings
    return None


@dataclass
class _Heading:
    start: int  # first line of the heading (the overline, or the text line)
    end: int  # last line (the underline, or the same line for ATX)
    level: int
    title: str


def chunk_doc(text: str, fmt: str, max_lines: int) -> list[ChunkDraft]:
    lines = text_lines(text)
    if fmt == "markdown":
        headings, fenced = markdown_headings(lines)
    elif fmt == "rst":
        headings, fenced = rst_headings(lines), [False] * len(lines)
    else:
        return _text_chunks(lines, max_lines, fmt)
    chunks: list[ChunkDraft] = []
    for start, end, path in _sections(lines, headings):
        meta = {"format": fmt, "heading_path": path}
        pieces = _split_section(lines, fenced, start, end, max_lines)
        for i, (s, e) in enumerate(pieces):
            m: dict[str, Any] = dict(meta)
            if len(pieces) > 1:
                m["part"], m["parts"] = i + 1, len(pieces)
            chunks.append(make_chunk(lines, s, e, m))
    return chunks


def _sections(lines: list[str], headings: list[_Heading]) -> list[tuple[int, int, list[str]]]:
    """(start, end, heading_path) per section; a heading with no text of its own before a deeper
    heading is folded into that next section, so no chunk is a lone title."""
    out: list[tuple[int, int, list[str]]] = []
    stack: list[_Heading] = []
    bounds = [h.start for h in headings] + [len(lines) + 1]
    if headings and trim_span(lines, 1, headings[0].start - 1) is not None:
        out.append((1, headings[0].start - 1, []))
    elif not headings:
        return [(1, len(lines), [])] if lines else []
    pending: int | None = None  # start of folded headings waiting for a section with a body
    for i, h in enumerate(headings):
        while stack and stack[-1].level >= h.level:
            stack.pop()
        stack.append(h)
        end = bounds[i + 1] - 1
        start = pending if pending is not None else h.start
        has_body = trim_span(lines, h.end + 1, end) is not None
        last = i == len(headings) - 1
        if has_body or last or headings[i + 1].level <= h.level:
            out.append((start, end, [x.title for x in stack]))
            pending = None
        else:
            pending = start
    return out


def _split_section(lines: list[str], fenced: list[bool], start: int, end: int, max_lines: int) -> list[tuple[int, int]]:
    span = trim_span(lines, start, end)
    if span is None:
        return []
    start, end = span
    if end - start + 1 <= max_lines and _chars(lines, start, end) <= DOC_MAX_CHARS:
        return [span]
    return _group_paragraphs(lines, fenced, start, end, max_lines, max_lines)


def _chars(lines: list[str], start: int, end: int) -> int:
    return sum(len(x) + 1 for x in lines[start - 1 : end])


def _paragraphs(lines: list[str], fenced: list[bool], start: int, end: int) -> list[tuple[int, int]]:
    """Blocks separated by blank lines outside fences."""
    blocks: list[tuple[int, int]] = []
    cur: int | None = None
    for i in range(start, end + 1):
        if not lines[i - 1].strip() and not fenced[i - 1]:
            if cur is not None:
                blocks.append((cur, i - 1))
                cur = None
        elif cur is None:
            cur = i
    if cur is not None:
        blocks.append((cur, end))
    return blocks


def _group_paragraphs(
    lines: list[str], fenced: list[bool], start: int, end: int, max_lines: int, target_lines: int
) -> list[tuple[int, int]]:
    """Consecutive paragraphs gathered while they stay within the line and character limits."""
    out: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    for bs, be in _paragraphs(lines, fenced, start, end):
        if be - bs + 1 > max_lines or _chars(lines, bs, be) > DOC_MAX_CHARS * 2:
            if cur is not None:
                out.append(cur)
                cur = None
            out += split_span(lines, bs, be, max_lines)  # one huge block: cut it anyway
            continue
        if cur is None:
            cur = (bs, be)
        elif be - cur[0] + 1 <= target_lines and _chars(lines, cur[0], be) <= DOC_MAX_CHARS:
            cur = (cur[0], be)
        else:
            out.append(cur)
            cur = (bs, be)
    if cur is not None:
        out.append(cur)
    return out


def _text_chunks(lines: list[str], max_lines: int, fmt: str) -> list[ChunkDraft]:
    fenced = [False] * len(lines)
    target = min(TEXT_TARGET_LINES, max_lines)
    spans = _group_paragraphs(lines, fenced, 1, len(lines), max_lines, target)
    return [make_chunk(lines, s, e, {"format": fmt, "heading_path": []}) for s, e in spans]


# --- Markdown -----------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?:\s|$)")


def markdown_headings(lines: list[str]) -> tuple[list[_Heading], list[bool]]:
    """ATX and setext headings outside fenced code and front matter, and which lines are fenced."""
    headings: list[_Heading] = []
    fenced = [False] * len(lines)
    fence: tuple[str, int] | None = None
    para: int | None = None  # first line of the paragraph a setext underline would turn into a heading
    i = 1
    if lines and lines[0].strip() == "---":  # YAML front matter
        for j in range(2, len(lines) + 1):
            if lines[j - 1].strip() in ("---", "..."):
                i = j + 1
                break
    while i <= len(lines):
        line = lines[i - 1]
        if fence is not None:
            fenced[i - 1] = True
            m = _FENCE_OPEN.match(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= fence[1] and not m.group(2).strip():
                fence = None
            i += 1
            continue
        m = _FENCE_OPEN.match(line)
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            fence = (m.group(1)[0], len(m.group(1)))
            fenced[i - 1] = True
            para = None
        elif not line.strip():
            para = None
        elif (m := _ATX.match(line)) is not None:
            title = re.sub(r"(?:^|[ \t]+)#+$", "", m.group(2) or "").strip()
            headings.append(_Heading(i, i, len(m.group(1)), title))
            para = None
        elif para is not None and (m := _SETEXT.match(line)) is not None:
            title = " ".join(x.strip() for x in lines[para - 1 : i - 1])
            headings.append(_Heading(para, i, 1 if m.group(1)[0] == "=" else 2, title))
            para = None
        elif (
            para is None
            and not line.startswith("    ")
            and not _LIST_ITEM.match(line)
            and not line.lstrip().startswith((">", "|", "<"))
        ):
            para = i
        i += 1
    return headings, fenced


# --- reStructuredText ---------------------------------------------------------------------------

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}[ \t]*$")


def rst_headings(lines: list[str]) -> list[_Heading]:
    """Section titles: a text line underlined (and optionally overlined) with one punctuation
    character at least as long as the title. Levels follow the order styles first appear."""
    headings: list[_Heading] = []
    styles: list[tuple[str, bool]] = []
    n = len(lines)
    i = 1
    while i <= n:
        line = lines[i - 1]
        prev_blank = i == 1 or not lines[i - 2].strip()
        over = _ADORNMENT.match(line)
        if over and prev_blank and i + 2 <= n:
            title = lines[i].strip()
            under = _ADORNMENT.match(lines[i + 1])
            if title and under and under.group(1) == over.group(1) and len(line.rstrip()) >= len(title):
                headings.append(_Heading(i, i + 2, _level(styles, (over.group(1), True)), title))
                i += 3
                continue
        if line.strip() and not line[0].isspace() and not over and prev_blank and i + 1 <= n:
            under = _ADORNMENT.match(lines[i])
            if under and len(lines[i].rstrip()) >= len(line.rstrip()):
                headings.append(_Heading(i, i + 1, _level(styles, (under.group(1), False)), line.strip()))
                i += 2
                continue
        i += 1
    return headings


def _level(styles: list[tuple[str, bool]], style: tuple[str, bool]) -> int:
    if style not in styles:
        styles.append(style)
    return styles.index(style) + 1
