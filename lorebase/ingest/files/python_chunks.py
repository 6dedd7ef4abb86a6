"""Python cut with ``ast``: one chunk per top-level function or class (split at blank lines when longer than
the limit), the module code between them in chunks of its own, each with its qualified name and signature."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from lorebase.ingest.files.spans import make_chunk, split_span, text_lines
from lorebase.ingest.records import ChunkDraft

PYTHON = "python"

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
