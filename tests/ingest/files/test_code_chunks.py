from __future__ import annotations

import itertools
import textwrap

import pytest

from lorebase.ingest.files.code_chunks import chunk_code, code_language
from lorebase.ingest.files.spans import split_span
from lorebase.ingest.files.tree_sitter_chunks import tree_sitter_parser
from lorebase.ingest.records import ChunkDraft

PY = textwrap.dedent(
    '''\
    """Module docstring."""

    import os
    from typing import Any

    LIMIT = 10


    # Loads things from disk.
    @cached
    @other(arg=1)
    def load(path: str, *, strict: bool = False) -> dict[str, Any]:
        """Load a file.

        More words.
        """
        return {}


    class Store(Base, metaclass=Meta):
        """Keeps things."""

        size = 3

        def get(self, key):
            return key

        async def put(self, key, value=None):
            """Put one."""
            pass

        # trailing comment inside the class


    if __name__ == "__main__":
        load("x")
    '''
)


def _line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _assert_exact_cover(text: str, chunks: list[ChunkDraft], max_lines: int) -> None:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    covered: set[int] = set()
    prev_end = 0
    for c in chunks:
        assert c.start_line is not None and c.end_line is not None
        assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line]), "chunk text must be the file's own lines"
        assert c.start_line > prev_end, "chunks are in order and do not overlap"
        assert c.end_line - c.start_line + 1 <= max_lines
        prev_end = c.end_line
        covered.update(range(c.start_line, c.end_line + 1))
    non_blank = {i for i, line in enumerate(lines, 1) if line.strip()}
    assert non_blank <= covered, f"lines not in any chunk: {sorted(non_blank - covered)}"


def test_python_top_level_definitions_get_exact_chunks() -> None:
    chunks = chunk_code(PY, "pkg/mod.py", "python", 120)
    _assert_exact_cover(PY, chunks, 120)
    by_symbol = {c.meta.get("symbol"): c for c in chunks}

    load = by_symbol["load"]
    # The comment above and both decorators belong to the function.
    assert load.start_line == _line_of(PY, "# Loads things")
    assert load.end_line == _line_of(PY, "return {}")
    assert load.meta["symbol_kind"] == "function"
    assert load.meta["signature"] == "def load(path: str, *, strict: bool=False) -> dict[str, Any]:"
    assert load.meta["docstring"] == "Load a file."

    store = by_symbol["Store"]
    assert store.start_line == _line_of(PY, "class Store")
    assert store.end_line == _line_of(PY, "pass")
    assert store.meta["symbol_kind"] == "class"
    assert store.meta["signature"] == "class Store(Base, metaclass=Meta):"

    modules = [c for c in chunks if c.meta["symbol_kind"] == "module"]
    assert all(c.meta["symbol"] == "pkg.mod" for c in modules)
    assert "import os" in modules[0].text and "LIMIT = 10" in modules[0].text
    assert any('if __name__ == "__main__":' in c.text for c in modules)
    assert any("# trailing comment" in c.text for c in chunks)


def test_long_class_is_split_into_methods() -> None:
    chunks = chunk_code(PY, "pkg/mod.py", "python", 8)  # Store is 13 lines: longer than 8
    _assert_exact_cover(PY, chunks, 8)
    by_symbol = {c.meta.get("symbol"): c for c in chunks}
    get, put = by_symbol["Store.get"], by_symbol["Store.put"]
    assert get.meta["symbol_kind"] == put.meta["symbol_kind"] == "method"
    assert get.meta["context"] == "class Store(Base, metaclass=Meta):"
    assert (get.start_line, get.end_line) == (_line_of(PY, "def get"), _line_of(PY, "return key"))
    assert (put.start_line, put.end_line) == (_line_of(PY, "async def put"), _line_of(PY, "pass"))
    assert put.meta["signature"] == "async def put(self, key, value=None):"
    assert put.meta["docstring"] == "Put one."
    header = next(c for c in chunks if c.meta.get("symbol") == "Store" and "class Store" in c.text)
    assert header.start_line == _line_of(PY, "class Store") and "size = 3" in header.text


def test_long_function_is_cut_into_parts_within_the_limit() -> None:
    body = "\n".join(f"    x{i} = {i}" + ("\n" if i % 7 == 0 else "") for i in range(60))
    src = f"def big():\n{body}\n    return x1\n"
    chunks = chunk_code(src, "big.py", "python", 20)
    _assert_exact_cover(src, chunks, 20)
    assert len(chunks) >= 4
    assert {c.meta["symbol"] for c in chunks} == {"big"}
    assert [c.meta["part"] for c in chunks] == list(range(1, len(chunks) + 1))


def test_python_that_does_not_parse_falls_back_to_windows() -> None:
    src = "def broken(:\n    pass\n\n" + "\n".join(f"value_{i} = {i}" for i in range(150)) + "\n"
    chunks = chunk_code(src, "bad.py", "python", 120)
    _assert_exact_cover(src, chunks, 120)
    assert all(c.meta["chunker"] == "lines" for c in chunks)
    assert len(chunks) >= 3  # windows of about 60 lines


def test_windows_cut_at_blank_lines() -> None:
    blocks = ["\n".join(f"line {b}.{i}" for i in range(25)) for b in range(6)]
    src = "\n\n".join(blocks) + "\n"
    chunks = chunk_code(src, "notes.hs", "haskell", 120)
    _assert_exact_cover(src, chunks, 120)
    for c in chunks:  # every window starts at the first line of a block
        assert c.text.split("\n")[0].endswith(".0")


def test_split_span_respects_limit_without_blank_lines() -> None:
    lines = [f"l{i}" for i in range(1, 251)]
    spans = split_span(lines, 1, 250, 100, 60)
    assert spans[0] == (1, 60)
    assert spans[-1][1] == 250
    assert all(e - s + 1 <= 100 for s, e in spans)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(spans))


def test_language_detection() -> None:
    assert code_language("src/a.py") == "python"
    assert code_language("web/App.tsx") == "tsx"
    assert code_language("Makefile") == "make"
    assert code_language("CMakeLists.txt") == "cmake"
    assert code_language("deploy/Dockerfile.prod") == "dockerfile"
    assert code_language("conf/settings.yaml") == "yaml"
    assert code_language("requirements-dev.txt") == "requirements"
    assert code_language("README.md") is None
    assert code_language("notes.txt") is None


JS = textwrap.dedent(
    """\
    import { x } from "./x.js";

    // Adds two numbers.
    function add(a, b) {
      return a + b;
    }

    class Counter {
      constructor() {
        this.n = 0;
      }
      inc() {
        this.n += 1;
      }
    }
    """
) + "\n".join(f"function helper{i}(v) {{\n  return v * {i};\n}}\n" for i in range(80))


@pytest.mark.skipif(tree_sitter_parser("javascript") is None, reason="no JavaScript tree-sitter grammar installed")
def test_tree_sitter_chunks_have_exact_ranges() -> None:
    chunks = chunk_code(JS, "src/app.js", "javascript", 40)
    _assert_exact_cover(JS, chunks, 40)
    assert all(c.meta["chunker"] == "tree-sitter" for c in chunks)
    assert len(chunks) > 3
    names = [n for c in chunks for n in c.meta.get("symbols", [])]
    assert names[:3] == ["add", "Counter", "helper0"]
    assert "helper79" in names
    # No function is cut in two: each chunk starts at a statement, not inside a body.
    for c in chunks:
        first = c.text.split("\n")[0]
        assert not first.startswith(" "), first


def test_unknown_grammar_falls_back_to_windows() -> None:
    src = "\n".join(f"(defn f{i} [] {i})" for i in range(130)) + "\n"
    chunks = chunk_code(src, "x.zzz", "no-such-language", 50)
    _assert_exact_cover(src, chunks, 50)
    assert {c.meta["chunker"] for c in chunks} == {"lines"}
