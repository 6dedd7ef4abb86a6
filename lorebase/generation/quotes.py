"""Quoting evidence in an answer: which sources an extractive answer quotes, and how a quote reads.

Most code answers are quotes (the 0.5B model's own sentences rarely pass the support check), so a
quote must read as code: under its path and lines, in a fenced block that keeps its line breaks and
indentation. Squeezed onto one line, Python loses the indentation that is part of its meaning.
Speech and prose stay one quoted line each.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

from lorebase.generation.evidence import Selection, Unit
from lorebase.ingest.files.code_chunks import code_language
from lorebase.verdict import SentenceSupport

EXTRACTIVE_LEAD = "The sources say:"
TOP_QUOTE_LEAD = "The top source says:"

_QUOTE = "> "
_SPEAKER = re.compile(r"^[^:\n]{1,40}: ")
_CAPTION = re.compile(r"^`[^`\n]+`(?: lines? [\d-]+)? \[S\d+\]:$")
_FENCE = re.compile(r"^(`{3,})")


def quotable(selections: Sequence[Selection], bar: float, *, most: int = 3, share: float = 0.6,
             one_per_file: bool = False) -> list[Selection]:
    """The sources an extractive answer quotes, in retrieval order: those whose best line scores at
    least ``bar`` and at least ``share`` of the best one's, at most ``most`` of them
    (`answer.quotes`, `answer.quote_share`). With ``one_per_file`` a code or doc file is quoted once,
    its second source giving way to the next file's; measured and not the default
    (bench/bench_extractive_quotes.py, docs/benchmarks.md): on dev a second line of the gold file
    gives way to a line of a file that is not."""
    strong = [s for s in selections if s.score >= bar]
    top = max((s.score for s in strong), default=0.0)
    out: list[Selection] = []
    files: set[str] = set()
    for s in strong:
        if s.score < share * top:
            continue
        if one_per_file and s.citation.kind in ("code", "doc"):
            if s.citation.source_id in files:
                continue
            files.add(s.citation.source_id)
        out.append(s)
    return out[:most]


def quote(s: Selection, reason: str = "quoted from the source") -> tuple[str, SentenceSupport]:
    """The best unit of ``s`` as the answer shows it, with its citation, and its entry in the verdict.
    Code: a caption with its path and lines, then the lines in a fenced block, dedented, with the
    kept lines around them (``_run_around``); anything else: one quoted line."""
    c, unit = s.citation, s.best
    if c.kind == "code" and unit.start_line is not None and c.path:
        run = _run_around(s)
        first, last = run[0].start_line, run[-1].end_line
        code = textwrap.dedent("\n".join(u.text for u in run)).strip("\n")
        lines = f"line {first}" if last in (None, first) else f"lines {first}-{last}"
        longest = max((len(m) for m in re.findall(r"`{3,}", code)), default=2)
        fence = "`" * max(3, longest + 1)  # a fence the code itself cannot close
        text = f"`{c.path}` {lines} [{c.id}]:\n{fence}{code_language(c.path) or ''}\n{code}\n{fence}"
        return text, SentenceSupport(text=code, labels=[c.id], supported=True, reason=reason)
    said = " ".join(unit.text.split())
    return f"{_QUOTE}{said} [{c.id}]", SentenceSupport(text=said, labels=[c.id], supported=True, reason=reason)


def _run_around(s: Selection) -> list[Unit]:
    """The best unit and the kept units next to it with no line between them: the lines the model
    was shown around the best match (`evidence.select` keeps a neighbour on each side), so the quote
    shows the code around the matching lines, not three lines cut from the middle."""
    units = [u for u in s.units if u.start_line is not None and u.end_line is not None]
    if s.best not in units:
        return [s.best]
    i = j = units.index(s.best)
    while i > 0 and units[i - 1].end_line == (units[i].start_line or 0) - 1:
        i -= 1
    while j + 1 < len(units) and units[j + 1].start_line == (units[j].end_line or 0) + 1:
        j += 1
    return units[i:j + 1]


def extractive(selections: Sequence[Selection]) -> tuple[str, list[SentenceSupport]]:
    """Quote the best unit of each source given: the whole text of an extractive answer."""
    parts = [EXTRACTIVE_LEAD]
    sentences: list[SentenceSupport] = []
    for s in selections:
        text, support = quote(s)
        # a block after a quoted line needs a blank line, or Markdown reads it as part of the quote
        parts.append(("\n" + text) if not text.startswith(_QUOTE) else text)
        sentences.append(support)
    return "\n".join(parts), sentences


def quoted_text(answer: str) -> str:
    """What an extractive answer quotes, without its lead, quote marks and speaker labels: quoted
    lines joined as one text ("> Ann: it landed [S1]" -> "it landed [S1]"), a code quote kept whole
    with its caption and fence."""
    pieces: list[str] = []
    said: list[str] = []
    lines = answer.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(lines[i + 1]) if i + 1 < len(lines) and _CAPTION.match(line) else None
        if fence is not None:
            end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == fence[1]), len(lines) - 1)
            if said:
                pieces.append(" ".join(said))
                said = []
            pieces.append("\n".join(lines[i:end + 1]))
            i = end + 1
            continue
        if line.startswith(_QUOTE):
            said.append(_SPEAKER.sub("", line[len(_QUOTE):]))
        i += 1
    if said:
        pieces.append(" ".join(said))
    return "\n".join(pieces)
