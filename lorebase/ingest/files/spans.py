"""Lines and spans of a file: 1-based line ranges as git numbers them, trimmed of blank lines, cut at blank
lines into pieces of a bounded size, and the chunk that quotes exactly those lines."""

from __future__ import annotations

from typing import Any

from lorebase.ingest.records import ChunkDraft

WINDOW_LINES = 60  # target size of a plain line window


def text_lines(text: str) -> list[str]:
    """Lines as git and GitHub number them: split at '\\n' only, no empty last line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _blank(line: str) -> bool:
    return not line.strip()


def trim_span(lines: list[str], start: int, end: int) -> tuple[int, int] | None:
    """The span without leading and trailing blank lines, or None if nothing is left."""
    while start <= end and _blank(lines[start - 1]):
        start += 1
    while end >= start and _blank(lines[end - 1]):
        end -= 1
    return (start, end) if start <= end else None


def split_span(lines: list[str], start: int, end: int, max_lines: int, target: int | None = None) -> list[tuple[int, int]]:
    """Cut lines ``start..end`` into trimmed pieces of at most ``max_lines`` lines, each close to
    ``target`` lines and ending at a blank line where there is one to cut at."""
    target = max(1, min(target or max_lines, max_lines))
    out: list[tuple[int, int]] = []
    while True:
        span = trim_span(lines, start, end)
        if span is None:
            return out
        start, end = span
        if end - start + 1 <= target:
            out.append(span)
            return out
        hard = start + max_lines - 1
        cut = None
        # The last blank line in the second half of the target window, else the first beyond it.
        for i in range(start + target - 1, start + target // 2 - 1, -1):
            if _blank(lines[i - 1]):
                cut = i
                break
        if cut is None:
            for i in range(start + target, min(hard, end) + 1):
                if _blank(lines[i - 1]):
                    cut = i
                    break
        if cut is None:
            piece_end = min(start + target - 1, end)
            out.append((start, piece_end))
            start = piece_end + 1
        else:
            piece = trim_span(lines, start, cut - 1)
            if piece is not None:
                out.append(piece)
            start = cut + 1


def make_chunk(lines: list[str], start: int, end: int, meta: dict[str, Any]) -> ChunkDraft:
    return ChunkDraft(text="\n".join(lines[start - 1 : end]), start_line=start, end_line=end, meta=meta)


def window_chunks(lines: list[str], max_lines: int, meta: dict[str, Any], target: int = WINDOW_LINES) -> list[ChunkDraft]:
    """Plain windows of about ``target`` lines cut at blank lines."""
    return [make_chunk(lines, s, e, dict(meta)) for s, e in split_span(lines, 1, len(lines), max_lines, target)]
