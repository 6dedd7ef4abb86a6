"""Commits as sources: message, author, date, files changed and trimmed diff hunks.

History is read with one streaming ``git log -p`` process; +/- counts come from the patch
itself, so no second pass over the history is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from lorebase.ingest.git.gitcli import git_stream, is_sha
from lorebase.ingest.records import ChunkDraft, SourceDraft
from lorebase.store.models import SourceKind

MAX_FILES_LISTED = 100  # files named in a commit's text and meta; the rest are counted
MIN_FILE_SHARE = 20  # diff lines each file gets before the budget runs out, when there are many files

_START = b"\x1e\x1fC\x1f"
_END = b"\x1e\x1fE"
LOG_FORMAT = "%x1e%x1fC%x1f%H%x1f%P%x1f%an%x1f%aI%n%B%x1e%x1fE"


@dataclass
class FileChange:
    path: str
    old_path: str | None = None
    status: str = "M"  # A added, M modified, D deleted, R renamed, C copied
    added: int = 0
    deleted: int = 0
    binary: bool = False
    left_out: bool = False  # vendored or generated: hunks not kept
    hunk_lines: list[str] = field(default_factory=list)  # kept lines (at most the budget)
    total_lines: int = 0  # all hunk lines, kept or not


@dataclass
class CommitRecord:
    sha: str
    parents: list[str]
    author: str
    authored_at: datetime
    message: str
    files: list[FileChange]

    @property
    def subject(self) -> str:
        first = self.message.strip().split("\n", 1)[0].strip()
        return first or "(no message)"


def log_args(revision: str, max_count: int) -> list[str]:
    """``git log`` arguments for the commits reachable from ``revision`` (a sha or ``old..new``)."""
    for part in revision.split(".."):
        if not is_sha(part):
            raise ValueError(f"not a commit id: {part!r}")
    return [
        "log", "--no-color", "--no-ext-diff", "--no-textconv", "--no-notes", "-p", "-M", "--unified=3",
        "--src-prefix=a/", "--dst-prefix=b/", f"--format={LOG_FORMAT}", f"--max-count={max_count}",
        "--end-of-options", revision, "--",
    ]  # fmt: skip


def read_commits(
    git_dir: Path, revision: str, max_count: int, leave_out: Callable[[str], bool], max_diff_lines: int
) -> Iterator[CommitRecord]:
    """Commits reachable from ``revision``, newest first, read from one streaming ``git log``.
    ``leave_out(path)`` says whose hunks to drop (vendored, generated)."""
    with git_stream(log_args(revision, max_count), git_dir) as out:
        yield from parse_log(out, leave_out, max_diff_lines)


def parse_log(out: IO[bytes], leave_out: Callable[[str], bool], max_diff_lines: int) -> Iterator[CommitRecord]:
    store_cap = max(10 * max_diff_lines, 1000)  # hunk lines kept in memory per commit
    rec: CommitRecord | None = None
    msg: list[bytes] = []
    in_msg = False
    cur: FileChange | None = None
    in_hunks = False
    stored = 0
    for raw in out:
        if raw.startswith(_START):
            if rec is not None:
                yield rec
            fields = raw[len(_START) :].rstrip(b"\n").split(b"\x1f")
            sha, parents, author, date = (f.decode("utf-8", "replace") for f in fields[:4])
            rec = CommitRecord(sha, parents.split(), author, datetime.fromisoformat(date), "", [])
            msg, in_msg, cur, in_hunks, stored = [], True, None, False, 0
            continue
        if rec is None:
            continue
        if in_msg:
            line = raw.rstrip(b"\n")
            if line.endswith(_END):  # a message without a final newline ends on the marker's line
                msg.append(line[: -len(_END)])
                rec.message = b"".join(msg).decode("utf-8", "replace").rstrip()
                in_msg = False
            else:
                msg.append(raw)
            continue
        if raw.startswith(b"diff --git "):
            cur = FileChange(path=_path_from_diff_line(raw))
            rec.files.append(cur)
            in_hunks = False
            continue
        if cur is None:
            continue
        if in_hunks:
            c = raw[:1]
            if c in (b"+", b"-", b" ", b"\\") or raw.startswith(b"@@"):
                if c == b"+":
                    cur.added += 1
                elif c == b"-":
                    cur.deleted += 1
                cur.total_lines += 1
                if not cur.left_out and stored < store_cap and len(cur.hunk_lines) < max_diff_lines:
                    cur.hunk_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                    stored += 1
            continue
        _header_line(cur, raw, leave_out)
        if raw.startswith(b"@@"):
            in_hunks = True
            cur.left_out = cur.left_out or leave_out(cur.path)
            cur.total_lines = 1
            if not cur.left_out and max_diff_lines > 0 and stored < store_cap:
                cur.hunk_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                stored += 1
    if rec is not None:
        yield rec


def _header_line(cur: FileChange, raw: bytes, leave_out: Callable[[str], bool]) -> None:
    line = raw.rstrip(b"\n")
    if line.startswith(b"new file mode"):
        cur.status = "A"
    elif line.startswith(b"deleted file mode"):
        cur.status = "D"
    elif line.startswith(b"rename from "):
        cur.status, cur.old_path = "R", _unquote(line[12:])
    elif line.startswith(b"rename to "):
        cur.path = _unquote(line[10:])
    elif line.startswith(b"copy from "):
        cur.status, cur.old_path = "C", _unquote(line[10:])
    elif line.startswith(b"copy to "):
        cur.path = _unquote(line[8:])
    elif line[4:] != b"/dev/null" and (line.startswith(b"+++ ") or (line.startswith(b"--- ") and cur.status == "D")):
        cur.path = _strip_prefix(_unquote(line[4:].rstrip(b"\t")))
    elif line.startswith(b"Binary files ") or line == b"GIT binary patch":
        cur.binary = True
        cur.left_out = cur.left_out or leave_out(cur.path)


def _strip_prefix(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


def _path_from_diff_line(raw: bytes) -> str:
    """The path in ``diff --git a/P b/P``; renames are corrected by the header lines that follow."""
    rest = raw[len(b"diff --git ") :].rstrip(b"\n")
    if rest.startswith(b'"'):
        end = _quoted_end(rest)
        second = rest[end + 1 :].lstrip(b" ")
        return _strip_prefix(_unquote(second if second else rest[: end + 1]))
    n = (len(rest) - 5) // 2
    if n > 0 and rest[2 + n :] == b" b/" + rest[2 : 2 + n]:
        return rest[2 : 2 + n].decode("utf-8", "replace")
    i = rest.rfind(b" b/")
    return _strip_prefix(_unquote(rest[i + 1 :] if i >= 0 else rest))


def _quoted_end(s: bytes) -> int:
    i = 1
    while i < len(s):
        if s[i] == 0x5C:
            i += 2
            continue
        if s[i] == 0x22:
            return i
        i += 1
    return len(s) - 1


_ESCAPES = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("v"): 11, 0x5C: 0x5C, 0x22: 0x22}


def _unquote(s: bytes) -> str:
    """Undo git's C-style quoting of a path ("a\\tb", octal escapes)."""
    if not (len(s) >= 2 and s.startswith(b'"') and s.endswith(b'"')):
        return s.decode("utf-8", "replace")
    body, out, i = s[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == 0x5C and i + 1 < len(body):
            nxt = body[i + 1]
            if 0x30 <= nxt <= 0x37 and i + 3 < len(body):
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


# --- commit -> source draft ---------------------------------------------------------------------


def allocate(lengths: list[int], budget: int) -> list[int]:
    """Diff lines to keep per file within ``budget``: a fair share each (small files keep all,
    what they leave goes to the larger ones); with many files, the first ones in diff order."""
    n = len(lengths)
    if n == 0 or budget <= 0:
        return [0] * n
    if n * MIN_FILE_SHARE > budget:
        out, left = [], budget
        for length in lengths:
            take = min(length, MIN_FILE_SHARE, left)
            out.append(take)
            left -= take
        return out
    give = [0] * n
    left = budget
    order = sorted(range(n), key=lambda i: lengths[i])
    for k, i in enumerate(order):
        share = left // (n - k)
        give[i] = min(lengths[i], share)
        left -= give[i]
    return give


def commit_draft(rec: CommitRecord, repo: str, web_base: str | None, max_diff_lines: int, max_chunk_lines: int) -> SourceDraft:
    short = rec.sha[:7]
    files_listed = rec.files[:MAX_FILES_LISTED]
    head = [
        rec.message.strip() or "(no message)",
        "",
        f"Author: {rec.author}",
        f"Date: {rec.authored_at.isoformat()}",
        f"Commit: {rec.sha}",
    ]
    if rec.files:
        head += ["", f"Files changed ({len(rec.files)}):"]
        head += [f"  {_file_line(f)}" for f in files_listed]
        if len(rec.files) > len(files_listed):
            head.append(f"  ... and {len(rec.files) - len(files_listed)} more files")
    chunks = [ChunkDraft(text="\n".join(head), meta={"part": "message"})]

    diffable = [f for f in rec.files if not f.binary and not f.left_out and f.total_lines]
    keep = allocate([min(f.total_lines, len(f.hunk_lines)) for f in diffable], max_diff_lines)
    sections: list[str] = []
    shown = 0
    context = f"commit {short}: {rec.subject}"
    for f, k in zip(diffable, keep, strict=True):
        if k == 0:
            continue
        body = [f"--- a/{f.old_path or f.path}" if f.status != "A" else "--- /dev/null"]
        body.append(f"+++ b/{f.path}" if f.status != "D" else "+++ /dev/null")
        body += f.hunk_lines[:k]
        if k < f.total_lines:
            body.append(f"[... {f.total_lines - k} more diff lines of {f.path} trimmed]")
        shown += k
        sections.append("\n".join(body))
        for i in range(0, len(body), max_chunk_lines):
            part = body[i : i + max_chunk_lines]
            chunks.append(ChunkDraft(text="\n".join([context, *part]), meta={"part": "diff", "path": f.path}))
    total = sum(f.total_lines for f in rec.files if not f.binary and not f.left_out)
    trimmed = total - shown
    text = "\n".join(head)
    if sections:
        text += "\n\n" + "\n".join(sections)
    if trimmed > 0:
        text += f"\n\n[{trimmed} diff lines trimmed]"
    left_out = [f.path for f in rec.files if f.binary or f.left_out]
    meta: dict[str, Any] = {
        "author": rec.author,
        "parents": rec.parents,
        "files": [_file_meta(f) for f in files_listed],
        "files_total": len(rec.files),
        "diff_lines": total,
        "diff_lines_trimmed": trimmed,
    }
    if left_out:
        meta["diff_left_out"] = left_out[:MAX_FILES_LISTED]
    return SourceDraft(
        key=f"commit:{repo}:{rec.sha}",
        kind=SourceKind.commit,
        title=rec.subject,
        text=text,
        chunks=chunks,
        repo=repo,
        commit=rec.sha,
        url=f"{web_base}/commit/{rec.sha}" if web_base else None,
        authored_at=rec.authored_at,
        meta=meta,
    )


def _file_line(f: FileChange) -> str:
    name = f"{f.old_path} -> {f.path}" if f.old_path and f.status in ("R", "C") else f.path
    if f.binary:
        return f"{f.status} {name} (binary)"
    return f"{f.status} {name} (+{f.added} -{f.deleted})"


def _file_meta(f: FileChange) -> dict[str, Any]:
    m: dict[str, Any] = {"path": f.path, "status": f.status}
    if f.old_path:
        m["old_path"] = f.old_path
    if f.binary:
        m["binary"] = True
    else:
        m["added"], m["deleted"] = f.added, f.deleted
    return m
