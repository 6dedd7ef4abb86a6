"""Which files of a commit's tree are read, and as what: the tree and the changes between two commits as
git lists them, files left out (vendored, generated, binary by name, unsafe paths), a file's bytes as text,
and its kind (code in a language, or a doc format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lorebase.ingest.files.code_chunks import code_language
from lorebase.ingest.files.doc_chunks import doc_format
from lorebase.ingest.git.gitcli import GitError, is_sha, run_git
from lorebase.store.models import SourceKind

VENDORED_DIRS = frozenset(
    {"vendor", "vendors", "third_party", "third-party", "thirdparty", "3rdparty", "external", "node_modules",
     "bower_components", "jspm_packages", "dist", "build", "__pycache__", "site-packages", ".venv", "venv",
     ".tox", ".nox", ".eggs", ".mypy_cache", ".pytest_cache", ".yarn", "Pods", "Carthage", "htmlcov"}
)  # fmt: skip
VENDORED_SUFFIXES = (
    ".min.js", ".min.css", ".min.mjs", ".js.map", ".css.map", ".lock", "_pb2.py", "_pb2_grpc.py", ".pb.go",
    ".pb.cc", ".pb.h", ".generated.cs", ".designer.cs", ".bundle.js",
)  # fmt: skip
VENDORED_NAMES = frozenset({"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum", "bun.lockb"})
BINARY_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff", ".psd", ".xcf",
     ".ttf", ".otf", ".woff", ".woff2", ".eot", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z",
     ".rar", ".jar", ".war", ".whl", ".egg", ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx",
     ".odt", ".mp3", ".mp4", ".wav", ".ogg", ".flac", ".avi", ".mov", ".mkv", ".webm", ".m4a", ".exe",
     ".dll", ".so", ".dylib", ".o", ".a", ".obj", ".lib", ".class", ".pyc", ".pyo", ".pyd", ".bin", ".dat",
     ".db", ".sqlite", ".sqlite3", ".npy", ".npz", ".pkl", ".pickle", ".h5", ".hdf5", ".parquet", ".onnx",
     ".pt", ".pth", ".safetensors", ".ckpt", ".gguf", ".wasm", ".dmg", ".iso", ".deb", ".rpm", ".svgz"}
)  # fmt: skip


def vendored(path: str) -> bool:
    """Vendored, generated or lock files: not the project's own writing."""
    p = PurePosixPath(path)
    if any(part in VENDORED_DIRS or part.endswith(".egg-info") for part in p.parts[:-1]):
        return True
    return p.name in VENDORED_NAMES or p.name.lower().endswith(VENDORED_SUFFIXES)


def binary_by_name(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in BINARY_EXTENSIONS


def leave_out_of_diffs(path: str) -> bool:
    return vendored(path) or binary_by_name(path)


def safe_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\0" not in path and all(p not in ("", ".", "..") for p in parts)


def decode_text(data: bytes) -> tuple[str, str]:
    """Text and the encoding that read it: UTF-8, else cp1252, else latin-1 (which never fails).
    Line ends become '\\n' so line numbers agree with git, GitHub and Python's ast."""
    try:
        text, enc = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        try:
            text, enc = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, enc = data.decode("latin-1"), "latin-1"
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, enc


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob, tree, commit (a submodule)
    sha: str
    size: int | None
    path: str


def ls_tree(git_dir: Path, commit: str) -> list[TreeEntry]:
    """Every entry of the commit's tree, recursively (``git ls-tree -r -z -l``)."""
    if not is_sha(commit):
        raise GitError(f"not a commit id: {commit!r}")
    out = run_git(["ls-tree", "-r", "-z", "-l", "--full-tree", commit], git_dir).stdout
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, typ, sha, size = meta.split(None, 3)
        size_s = size.strip().decode()
        entries.append(
            TreeEntry(mode.decode(), typ.decode(), sha.decode(), int(size_s) if size_s.isdigit() else None,
                      raw_path.decode("utf-8", "replace"))
        )  # fmt: skip
    return entries


def diff_names(git_dir: Path, old: str, new: str) -> list[tuple[str, str | None, str]]:
    """(status letter, old path for renames, path) of the files changed from ``old`` to ``new``."""
    if not (is_sha(old) and is_sha(new)):
        raise GitError("diff needs two commit ids")
    out = run_git(["diff", "--name-status", "-z", "-M", "--no-ext-diff", "--no-textconv", old, new, "--"], git_dir).stdout
    tokens = [t.decode("utf-8", "replace") for t in out.split(b"\0")]
    changes: list[tuple[str, str | None, str]] = []
    i = 0
    while i < len(tokens) and tokens[i]:
        status = tokens[i][0]
        if status in ("R", "C"):
            changes.append((status, tokens[i + 1], tokens[i + 2]))
            i += 3
        else:
            changes.append((status, None, tokens[i + 1]))
            i += 2
    return changes


_INTERPRETERS = {"python": "python", "sh": "bash", "bash": "bash", "zsh": "bash", "dash": "bash", "node": "javascript",
                 "ruby": "ruby", "perl": "perl", "lua": "lua"}  # fmt: skip


def shebang_language(text: str) -> str | None:
    """The language a ``#!`` line names (``#!/usr/bin/env python3`` -> python), if any."""
    if not text.startswith("#!"):
        return None
    words = text[2 : text.find("\n") if "\n" in text else None].split()
    if words and words[0].endswith("/env"):
        words = [w for w in words[1:] if not w.startswith("-")]
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1].rstrip("0123456789.")
    return _INTERPRETERS.get(name)


def kind_of(path: str) -> tuple[SourceKind, str] | None:
    """(source kind, language or doc format) for a path, or None when it is neither code nor docs."""
    lang = code_language(path)
    if lang is not None:
        return SourceKind.code, lang
    fmt = doc_format(path)
    if fmt is not None:
        return SourceKind.doc, fmt
    return None
