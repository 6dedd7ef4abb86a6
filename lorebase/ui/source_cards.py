"""How citations look in the chat.

- In the answer text, each `[S#]` of a known source becomes a Markdown link to the source viewer;
  the chat's script and style turn those links into chips that open the source's card. Code (fenced,
  indented or inline) and headings are left as written, and a fence the model never closed is
  closed, so it cannot run over what follows.
- The cards are plain data for the answer's element (LorebaseAnswer.jsx), never Markdown: nothing
  in a title (`IS1001a`) or a snippet is read as markup or as a citation, and nothing the model
  writes can swallow them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lorebase.citations import Citation
from lorebase.generation.grounding import content_words
from lorebase.source_view import viewer_path

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s")
_INDENTED = re.compile(r"^(?: {4}|\t)")
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
_CITE = re.compile(r"\[(S\d+)\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_SPACE_BEFORE_STOP = re.compile(r"\s+([.,;:!?])")
_TIMESTAMP = re.compile(r"\[((?:\d+:)?\d{1,2}:\d{2})\]")
KIND_NAMES = {"transcript": "transcript", "code": "code", "doc": "doc", "commit": "commit", "issue": "issue",
              "pull_request": "pull request"}
_LINE_KINDS = ("code", "doc", "commit")  # excerpts cut at lines (and keep line numbers) rather than sentences
EXCERPT_CHARS = 700
SUPPORT_CHARS = 220


def web_link(c: Citation) -> str | None:
    """The citation's URL when a browser can open it (lorebase:// and file:// references cannot)."""
    return c.uri if c.uri and c.uri.startswith(("https://", "http://")) else None


def web_name(c: Citation) -> str:
    url = web_link(c) or ""
    if url.startswith("https://github.com/"):
        return "GitHub"
    return "recording" if c.kind == "transcript" else "web"


# --- the answer text --------------------------------------------------------------------------------


def close_fences(text: str) -> str:
    """`text` with a code fence that is still open at the end closed."""
    fence = _open_fence(text)
    return text if fence is None else text.rstrip("\n") + "\n" + fence


def _open_fence(text: str) -> str | None:
    fence: str | None = None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is None:
            # a backtick fence's info string may not hold a backtick (then it is inline code)
            if m and not (m[1][0] == "`" and "`" in m[2]):
                fence = m[1]
        elif m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not m[2].strip():
            fence = None
    return fence


def link_citations(text: str, sources: Sequence[Citation]) -> str:
    """The answer's Markdown with each `[S#]` of a known source turned into a link to the viewer.
    Unknown labels stay visible as text; code and headings are not touched."""
    known = {c.id: c for c in sources}

    def chip(m: re.Match[str]) -> str:
        c = known.get(m[1])
        if c is None:
            return f"\\[{m[1]}\\]"
        title = f"{c.id} · {c.label}".replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        return f'[{c.id}](<{viewer_path(c)}> "{title}")'

    return _in_prose(text, lambda prose: _CITE.sub(chip, prose))


def link_times(text: str, recording: Citation) -> str:
    """A summary of one transcript refers to moments as [mm:ss]: each becomes a chip that opens the
    transcript at that moment in the source viewer. Code and headings are left alone."""

    def chip(m: re.Match[str]) -> str:
        parts = [int(p) for p in m[1].split(":")]
        seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[0] if len(parts) == 3 else 0)
        title = f"{recording.title} @ {m[1]}".replace("\\", "\\\\").replace('"', '\\"')
        return f'[{m[1]}](</sources/{recording.source_id}?t={seconds}&cite={m[1]}#cited> "{title}")'

    return _in_prose(text, lambda prose: _TIMESTAMP.sub(chip, prose))


def _in_prose(text: str, change: Callable[[str], str]) -> str:
    """`text` with `change` applied to its prose only: not to fenced, indented or inline code, nor
    to headings."""
    out: list[str] = []
    fence: str | None = None
    in_list = False
    prev_blank = True
    prev_indented_code = False
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m[1][0] == fence[0] and len(m[1]) >= len(fence) and not m[2].strip():
                fence = None
            out.append(line)
            continue
        if m and not (m[1][0] == "`" and "`" in m[2]):
            fence = m[1]
            out.append(line)
            continue
        blank = not line.strip()
        if _LIST_ITEM.match(line):
            in_list = True
        elif not blank and not _INDENTED.match(line) and prev_blank:
            in_list = False
        indented_code = not blank and bool(_INDENTED.match(line)) and (prev_blank or prev_indented_code) and not in_list
        if indented_code or _HEADING.match(line):
            out.append(line)
        else:
            pieces: list[str] = []
            pos = 0
            for span in _CODE_SPAN.finditer(line):
                pieces += [change(line[pos:span.start()]), span.group(0)]
                pos = span.end()
            out.append("".join([*pieces, change(line[pos:])]))
        prev_indented_code = indented_code or (prev_indented_code and blank)
        prev_blank = blank
    return "\n".join(out)


# --- the cards ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excerpt:
    text: str
    first_line: int | None  # the line number of its first line, for code and docs
    cut_before: bool
    cut_after: bool


def excerpt(c: Citation, passage: str, focus: Sequence[str] = (), limit: int = EXCERPT_CHARS) -> Excerpt:
    """The part of the cited passage a card shows: the window of lines (code) or sentences (prose)
    that shares the most words with the sentences the source supports, else its start."""
    by_lines = c.kind in _LINE_KINDS
    units = passage.split("\n") if by_lines else [u for u in _SENTENCE.split(passage.strip()) if u]
    if not units:
        return Excerpt("", c.start_line, False, False)
    wanted = set(content_words(" ".join(focus)))
    scores = [len(wanted & set(content_words(u))) for u in units] if wanted else [0] * len(units)
    sep = "\n" if by_lines else " "
    windows: list[tuple[int, int, int]] = []  # score, start, end (exclusive)
    for i in range(len(units)):
        size, j, score = 0, i, 0
        while j < len(units) and (j == i or size + len(units[j]) + 1 <= limit):
            size += len(units[j]) + 1
            score += scores[j]
            j += 1
        windows.append((score, i, j))
    top = max(w[0] for w in windows)
    lead = 2 if by_lines else 1  # lines (sentences) of context kept before the first supporting one

    def off_centre(w: tuple[int, int, int]) -> int:
        first = next((k for k in range(w[1], w[2]) if scores[k]), w[1])
        return abs(first - w[1] - lead) if top else w[1]

    best = min((w for w in windows if w[0] == top), key=lambda w: (off_centre(w), w[1]))
    _, i, j = best
    text = sep.join(units[i:j])
    if len(text) > limit:  # one long unit on its own
        text = text[: limit - 1].rstrip() + "…"
    first = c.start_line + i if by_lines and c.start_line is not None else None
    return Excerpt(text, first, i > 0, j < len(units))


def supports_by_label(sentences: Sequence[Any], threshold: float = 0.0) -> dict[str, list[dict[str, Any]]]:
    """Which sentences of the answer cite each source, from the grounding check's sentences
    (objects with `text`, `labels` and `score`), each marked supported when its score reaches
    `threshold` (the check's own)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for s in sentences:
        text = _SPACE_BEFORE_STOP.sub(r"\1", " ".join(str(getattr(s, "text", "")).split()))
        if len(text) > SUPPORT_CHARS:
            text = text[: SUPPORT_CHARS - 1].rstrip() + "…"
        supported = float(getattr(s, "score", 1.0)) >= threshold
        for label in getattr(s, "labels", []) or []:
            items = out.setdefault(label, [])
            if text and all(i["text"] != text for i in items):
                items.append({"text": text, "supported": supported})
    return out


def card(c: Citation, *, passage: str | None = None, supports: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The data of one source card (see LorebaseAnswer.jsx); `supports`: the sentences citing it."""
    ex = excerpt(c, passage if passage is not None else c.snippet,
                 [s["text"] for s in supports if s.get("supported", True)] or [s["text"] for s in supports])
    where = [x for x in (c.repo, c.title if c.kind not in ("transcript", "code", "doc") else None) if x]
    return {
        "id": c.id,
        "kind": c.kind,
        "kind_name": KIND_NAMES.get(c.kind, c.kind),
        "label": c.label,
        "where": " · ".join(where),
        "viewer": viewer_path(c),
        "web": web_link(c),
        "web_name": web_name(c),
        "excerpt": ex.text,
        "first_line": ex.first_line,
        "cut_before": ex.cut_before,
        "cut_after": ex.cut_after,
        "code": c.kind in _LINE_KINDS,
        "supports": list(supports),
    }


def cards(sources: Sequence[Citation], passages: Mapping[str, str] | None = None, sentences: Sequence[Any] = (),
          text: str | None = None, threshold: float = 0.0) -> list[dict[str, Any]]:
    """The cards of an answer's sources; with the answer's `text`, each says whether it is cited."""
    support = supports_by_label(sentences, threshold)
    cited = set(_CITE.findall(text)) if text is not None else None
    out = []
    for c in sources:
        data = card(c, passage=(passages or {}).get(c.id), supports=support.get(c.id, []))
        if cited is not None:
            data["cited"] = c.id in cited
        out.append(data)
    return out
