"""Cutting source files into retrievable chunks with exact 1-based line ranges.

Python is cut with ``ast`` (one chunk per top-level function or class, module code between them in
its own chunks); other languages with llama-index's CodeSplitter over a tree-sitter parser when
one is installed; anything else in windows of about 60 lines cut at blank lines. Chunk text is
always the file's own lines ``start_line..end_line``, and together the chunks cover every
non-blank line, so a citation shows exactly what was retrieved.
"""

from __future__ import annotations

import ast
import functools
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from lorebase.ingest.records import ChunkDraft

log = logging.getLogger(__name__)

WINDOW_LINES = 60  # target size of a plain line window
SPLITTER_MAX_CHARS = 2000  # CodeSplitter's chunk size; max_chunk_lines still caps each chunk

PYTHON = "python"
# Extension -> language name (tree-sitter's names where tree-sitter knows the language).
CODE_EXTENSIONS: dict[str, str] = {
    ".py": PYTHON, ".pyi": PYTHON, ".pyw": PYTHON,
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".swift": "swift", ".m": "objc", ".mm": "objc",
    ".lua": "lua", ".r": "r", ".jl": "julia", ".pl": "perl", ".pm": "perl", ".hs": "haskell",
    ".ml": "ocaml", ".mli": "ocaml", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".clj": "clojure",
    ".dart": "dart", ".vue": "vue", ".svelte": "svelte", ".sql": "sql", ".sh": "bash", ".bash": "bash",
    ".zsh": "bash", ".ps1": "powershell", ".html": "html", ".htm": "html", ".css": "css", ".scss": "scss",
    ".less": "css", ".proto": "proto", ".graphql": "graphql", ".gql": "graphql", ".cmake": "cmake",
    ".mk": "make", ".tf": "hcl", ".nix": "nix", ".zig": "zig", ".f90": "fortran", ".groovy": "groovy",
    ".gradle": "groovy",
}  # fmt: skip
CODE_FILENAMES: dict[str, str] = {
    "Makefile": "make", "makefile": "make", "GNUmakefile": "make", "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile", "CMakeLists.txt": "cmake", "Rakefile": "ruby", "Gemfile": "ruby",
    "Jenkinsfile": "groovy", "Vagrantfile": "ruby", "BUILD": "starlark", "WORKSPACE": "starlark",
}  # fmt: skip
# Configuration and small data files: kept as code, cut in line windows.
CONFIG_EXTENSIONS: dict[str, str] = {
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json", ".jsonc": "json", ".ini": "ini",
    ".cfg": "ini", ".conf": "conf", ".xml": "xml", ".properties": "properties",
}  # fmt: skip
CONFIG_LANGUAGES = frozenset({*CONFIG_EXTENSIONS.values(), "requirements"})
# Languages whose grammar has no useful structure to cut at, or that tree-sitter lacks.
_NO_TREE_SITTER = frozenset({"make", "dockerfile", "starlark", *CONFIG_LANGUAGES})


def code_language(path: str) -> str | None:
    """The language of a code or config file, or None when it is neither."""
    p = PurePosixPath(path)
    if p.name in CODE_FILENAMES:
        return CODE_FILENAMES[p.name]
    if p.name.startswith(("Dockerfile.", "Containerfile.")):
        return "dockerfile"
    lower = p.name.lower()
    if lower.startswith("requirements") and lower.endswith((".txt", ".in")):
        return "requirements"
    for ext, lang in CONFIG_EXTENSIONS.items():
        if lower.endswith(ext):
            return lang
    return CODE_EXTENSIONS.get(p.suffix.lower())


# --- lines and spans ----------------------------------------------------------------------------


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


# --- entry point --------------------------------------------------------------------------------


def chunk_code(text: str, path: str, language: str, max_lines: int) -> list[ChunkDraft]:
    """Chunks of one code or config file (``text`` with '\\n' line ends)."""
    lines = text_lines(text)
    base = {"language": language}
    if language == PYTHON:
        chunks = python_chunks(text, path, max_lines)
        if chunks is not None:
            return chunks
    elif language not in _NO_TREE_SITTER:
        chunks = tree_sitter_chunks(text, language, max_lines)
        if chunks is not None:
            return chunks
    return window_chunks(lines, max_lines, {**base, "chunker": "lines"})


# --- Python -------------------------------------------------------------------------------------

_DefNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


@dataclass
class _Span:
    start: int
    end: int
    meta: dict[str, Any] = field(default_factory=dict)


def python_chunks(text: str, path: str, max_lines: int) -> list[ChunkDraft] | None:
    """One chunk per top-level function and class; None when the file does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = text_lines(text)
    module = _module_name(path)
    spans = _body_spans(tree.body, lines, 1, len(lines), max_lines, module, None)
    return [make_chunk(lines, sp.start, sp.end, sp.meta) for sp in spans]


def _module_name(path: str) -> str:
    p = PurePosixPath(path)
    parts = list(p.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or p.stem


def _body_spans(
    stmts: list[ast.stmt],
    lines: list[str],
    lo: int,
    hi: int,
    max_lines: int,
    prefix: str,
    owner: ast.ClassDef | None,
) -> list[_Span]:
    """Spans covering every non-blank line of ``lo..hi``: definitions among ``stmts`` on their own,
    the code between them as filler. ``owner`` is the class whose body this is, if any."""
    spans: list[_Span] = []
    if owner is None:
        filler = {"language": PYTHON, "chunker": "python-ast", "symbol": prefix, "symbol_kind": "module"}
    else:
        filler = _def_meta(owner, prefix, "class", None)
    cursor = lo
    for node in stmts:
        if not isinstance(node, _DefNode):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        end = node.end_lineno or node.lineno
        # Comment lines directly above a definition describe it.
        while start - 1 >= cursor and lines[start - 2].lstrip().startswith("#"):
            start -= 1
        spans += [_Span(s, e, dict(filler)) for s, e in split_span(lines, cursor, start - 1, max_lines)]
        spans += _def_spans(node, lines, start, end, max_lines, prefix, owner)
        cursor = end + 1
    spans += [_Span(s, e, dict(filler)) for s, e in split_span(lines, cursor, hi, max_lines)]
    return spans


def _def_spans(
    node: _DefNode, lines: list[str], start: int, end: int, max_lines: int, prefix: str, owner: ast.ClassDef | None
) -> list[_Span]:
    qual = f"{prefix}.{node.name}" if owner is not None else node.name
    if isinstance(node, ast.ClassDef):
        kind = "class"
    else:
        kind = "method" if owner is not None else "function"
    meta = _def_meta(node, qual, kind, owner)
    if end - start + 1 <= max_lines:
        return [_Span(start, end, meta)]
    if isinstance(node, ast.ClassDef):
        # A long class becomes its header and attributes, then one chunk per method.
        return _body_spans(node.body, lines, start, end, max_lines, qual, node)
    pieces = split_span(lines, start, end, max_lines)
    return [_Span(s, e, {**meta, "part": i + 1, "parts": len(pieces)}) for i, (s, e) in enumerate(pieces)]


def _def_meta(node: _DefNode, qual: str, kind: str, owner: ast.ClassDef | None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "language": PYTHON,
        "chunker": "python-ast",
        "symbol": qual,
        "symbol_kind": kind,
        "signature": _signature(node),
    }
    doc = (ast.get_docstring(node, clean=True) or "").strip()
    if doc:
        meta["docstring"] = doc.splitlines()[0]
    if owner is not None:
        # Chunk text stays the file's exact lines; the enclosing class travels here.
        meta["context"] = _signature(owner)
    return meta


def _signature(node: _DefNode) -> str:
    if isinstance(node, ast.ClassDef):
        bases = [ast.unparse(b) for b in node.bases] + [ast.unparse(k) for k in node.keywords]
        return f"class {node.name}({', '.join(bases)}):" if bases else f"class {node.name}:"
    head = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    sig = f"{head} {node.name}({ast.unparse(node.args)})"
    if node.returns is not None:
        sig += f" -> {ast.unparse(node.returns)}"
    return sig + ":"


# --- tree-sitter via llama-index's CodeSplitter -------------------------------------------------

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
