"""Other languages cut with llama-index's CodeSplitter over a tree-sitter parser, when the grammar package is
installed; the pieces are mapped back to exact line ranges and named by the symbols they define."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

from lorebase.ingest.files.spans import WINDOW_LINES, make_chunk, split_span, text_lines
from lorebase.ingest.records import ChunkDraft

log = logging.getLogger(__name__)

SPLITTER_MAX_CHARS = 2000  # CodeSplitter's chunk size; max_chunk_lines still caps each chunk


# Grammar packages whose entry point is not simply tree_sitter_<language>.language().
_GRAMMAR_MODULES: dict[str, tuple[str, str]] = {
    "csharp": ("tree_sitter_c_sharp", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "php": ("tree_sitter_php", "language_php"),
}


@functools.cache
def tree_sitter_parser(language: str) -> Any | None:
    """A tree-sitter Parser for ``language`` from what is installed, or None. Never downloads:
    a grammar package (tree-sitter-<language>) is tried first, then tree-sitter-language-pack,
    whose 1.x releases fetch grammars at run time and so are used only for cached grammars."""
    try:
        from tree_sitter import Language, Parser
    except ImportError:
        return None
    module_name, attr = _GRAMMAR_MODULES.get(language, (f"tree_sitter_{language}", "language"))
    try:
        module = importlib.import_module(module_name)
        return Parser(Language(getattr(module, attr)()))
    except Exception as err:  # missing package or a grammar built for another tree-sitter ABI
        log.debug("no grammar package for %s: %s", language, err)
    try:
        import tree_sitter_language_pack as pack
    except ImportError:
        return None
    try:
        downloaded: Callable[[], list[str]] | None = getattr(pack, "downloaded_languages", None)
        if downloaded is not None and language not in downloaded():
            return None
        parser = pack.get_parser(language)
        return parser if hasattr(parser, "parse") else None
    except Exception:
        return None


@functools.cache
def _splitter(language: str) -> Any | None:
    parser = tree_sitter_parser(language)
    if parser is None:
        return None
    from llama_index.core.node_parser import CodeSplitter

    # A tokenizer is passed only so the splitter does not load tiktoken: counting is by characters.
    return CodeSplitter(language=language, parser=parser, max_chars=SPLITTER_MAX_CHARS, tokenizer=str.split)


def tree_sitter_chunks(text: str, language: str, max_lines: int) -> list[ChunkDraft] | None:
    """CodeSplitter's chunks with their line ranges recovered, gaps filled and long ones cut;
    None when no parser is installed or the file does not parse."""
    splitter = _splitter(language)
    if splitter is None:
        return None
    try:
        pieces: list[str] = splitter.split_text(text)
    except Exception as err:  # ValueError for unparsable code; anything else is the splitter's bug
        log.debug("CodeSplitter failed on a %s file: %s", language, err)
        return None
    ranges = _recover_ranges(text, pieces)
    if ranges is None:
        return None
    lines = text_lines(text)
    spans = _cover(lines, ranges, max_lines)
    symbols = _ts_symbols(tree_sitter_parser(language), text)
    chunks = []
    for s, e in spans:
        meta: dict[str, Any] = {"language": language, "chunker": "tree-sitter"}
        inside = [(name, kind) for line, name, kind in symbols if s <= line <= e]
        if inside:
            meta["symbol"], meta["symbol_kind"] = inside[0]
            meta["symbols"] = [name for name, _ in inside]
        else:
            meta["symbol_kind"] = "module"
        chunks.append(make_chunk(lines, s, e, meta))
    return chunks


def _recover_ranges(text: str, pieces: list[str]) -> list[tuple[int, int]] | None:
    """The splitter's chunks are consecutive, stripped slices of the text: find each in turn."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    line = 1  # line number at ``pos``
    for piece in pieces:
        if not piece:
            continue
        idx = text.find(piece, pos)
        if idx < 0:
            return None
        line += text.count("\n", pos, idx)
        start = line
        end = start + piece.count("\n")
        ranges.append((start, end))
        line = end
        pos = idx + len(piece)
    return ranges


def _cover(lines: list[str], ranges: list[tuple[int, int]], max_lines: int) -> list[tuple[int, int]]:
    """Whole-line spans from ``ranges``: no overlap (pieces can share a line), gaps with content
    kept as spans of their own, long spans cut to ``max_lines``."""
    out: list[tuple[int, int]] = []
    last = 0
    for start, end in ranges:
        start = max(start, last + 1)
        if end < start:
            continue
        out += split_span(lines, last + 1, start - 1, max_lines, WINDOW_LINES)
        out += split_span(lines, start, end, max_lines)
        last = end
    out += split_span(lines, last + 1, len(lines), max_lines, WINDOW_LINES)
    return out


_CLASS_WORDS = ("class", "struct", "interface", "trait", "impl", "enum", "type", "module", "namespace", "object")


def _ts_symbols(parser: Any, text: str) -> list[tuple[int, str, str]]:
    """(line, name, kind) of the top-level definitions, for chunk meta."""
    if parser is None:
        return []
    data = text.encode("utf-8")
    out: list[tuple[int, str, str]] = []
    try:
        root = parser.parse(data).root_node
        for node in root.named_children:
            candidates = [node, *node.named_children]
            for cand in candidates:
                name_node = cand.child_by_field_name("name")
                if name_node is None:
                    continue
                name = data[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
                kind = "class" if any(w in cand.type for w in _CLASS_WORDS) else "function"
                if "function" in cand.type or "method" in cand.type:
                    kind = "function"
                out.append((node.start_point[0] + 1, name, kind))
                break
    except Exception:
        return []
    return out
