"""Go to definition: the chunks that define a name the question writes as code.

A question that names ``pytester.runpytest_subprocess()`` or ``TestAccesses`` is most often
answered where that name is defined, while BM25 and the embedder both prefer the many places that
call or test it (a test file mentions the name more often than its one definition does). So a
code chunk the chunker cut at a definition is indexed by its defined name (the last part of its
qualified symbol, lowercased), and a question's code names look it up.

Only names written as code count: inside backticks, called (``name(``), dotted (``a.b``), or shaped
like an identifier (``snake_case``, ``camelCase``, ``PascalCase`` with an inner capital). A plain
word ("fixture", "Source") is prose and is left to BM25. A name defined in several files is
ambiguous: each of its definitions weighs 1/n for n files (``__init__`` weighs next to nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_BACKTICKED = re.compile(r"`([^`\n]+)`")
_NAME = re.compile(r"[A-Za-z_]\w*")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(\()?")
_INNER_CAPITAL = re.compile(r"[a-z0-9][A-Z]")


def code_names(question: str) -> list[str]:
    """The names ``question`` writes as code, lowercased, in order of first mention."""
    found: list[tuple[int, list[str]]] = []
    for m in _BACKTICKED.finditer(question):
        found.append((m.start(), _NAME.findall(m.group(1))))
    # blanked, not cut out, so positions keep the order of mention
    prose = _BACKTICKED.sub(lambda m: " " * len(m.group(0)), question)
    for m in _DOTTED.finditer(prose):
        parts = m.group(1).split(".")
        if m.group(2) or len(parts) > 1 or any(_looks_like_code(p) for p in parts):
            found.append((m.start(), parts))
    names = [n.lower() for _, ns in sorted(found, key=lambda f: f[0]) for n in ns]
    # one letter ("e.g.", a loop's ``i``) names nothing worth finding
    return list(dict.fromkeys(n for n in names if len(n) > 1))


def _looks_like_code(word: str) -> bool:
    return "_" in word.strip("_") or word.startswith("__") or bool(_INNER_CAPITAL.search(word))


def defined_name(kind: str, meta: dict[str, Any] | None) -> str | None:
    """The name a chunk defines (lowercased), or None: only code cut at a definition defines one."""
    meta = meta or {}
    symbol = meta.get("symbol")
    if kind != "code" or not symbol or meta.get("symbol_kind") == "module":
        return None
    return str(symbol).rsplit(".", 1)[-1].lower()


class DefinitionIndex:
    """Defined name -> the chunks defining it and their sources. Built whole, never edited."""

    def __init__(self, rows: Iterable[tuple[int, str, str | None]] = ()) -> None:
        """``rows``: (chunk id, source id, defined name or None) of every chunk."""
        chunks: dict[str, list[int]] = {}
        sources: dict[str, list[str]] = {}
        for cid, sid, name in rows:
            if name:
                chunks.setdefault(name, []).append(int(cid))
                sources.setdefault(name, []).append(str(sid))
        self._by_name = {n: (np.asarray(chunks[n], dtype=np.int64), np.asarray(sources[n], dtype=object)) for n in chunks}

    def __len__(self) -> int:
        return len(self._by_name)

    def weights(self, names: Sequence[str], allowed: np.ndarray | None = None) -> dict[int, float]:
        """Each chunk (within ``allowed``) defining one of ``names``: 1/n for a name defined in n
        files there, the largest over the names it defines."""
        out: dict[int, float] = {}
        for name in names:
            found = self._by_name.get(name)
            if found is None:
                continue
            chunks, sources = found
            if allowed is not None:
                keep = np.isin(chunks, allowed)
                chunks, sources = chunks[keep], sources[keep]
            if chunks.size == 0:
                continue
            w = 1.0 / len(set(sources.tolist()))
            for cid in chunks.tolist():
                out[cid] = max(out.get(cid, 0.0), w)
        return out
