"""Cutting source files into retrievable chunks with exact 1-based line ranges.

Python is cut with ``ast`` (one chunk per top-level function or class, module code between them in
its own chunks); other languages with llama-index's CodeSplitter over a tree-sitter parser when
one is installed; anything else in windows of about 60 lines cut at blank lines. Chunk text is
always the file's own lines ``start_line..end_line``, and together the chunks cover every
non-blank line, so a citation shows exactly what was retrieved.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from lorebase.ingest.files.python_chunks import PYTHON, python_chunks
from lorebase.ingest.files.spans import text_lines, window_chunks
from lorebase.ingest.files.tree_sitter_chunks import tree_sitter_chunks
from lorebase.ingest.records import ChunkDraft

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
