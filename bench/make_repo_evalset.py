"""A retrieval evaluation set made automatically from a real repository's history.

Each question is the subject line of a past commit ("Fix netrc lookup for proxies"); its gold is
the Python functions that commit changed, located in the repository's current HEAD by file name
and qualified name ({"path": ..., "lines": [first, last]}). Nobody here wrote the questions,
so the set cannot be tuned to lorebase.

Run (a few seconds on psf/requests):

    .venv/bin/python bench/make_repo_evalset.py /tmp/requests --skip-newest 300 \\
        --out datasets/eval/requests-commits.jsonl

Then ingest the same slice and evaluate:

    LOREBASE_INGEST__MAX_COMMITS=300 lorebase ingest /tmp/requests
    lorebase eval retrieval datasets/eval/requests-commits.jsonl

``--skip-newest`` must equal the ``ingest.max_commits`` of that ingest: the newest commits are
ingested as commit sources, and a question taken from one of them would be answered by its own
commit text (not gold here, and trivial). Questions come only from older commits, so the
ingested commits are realistic distractors, never the answer's own text.

Kept: non-merge commits with a subject of at least 4 words that is not housekeeping (release,
typo, lint, merge, revert, ...) nor meaningful only beside a review or an issue ("fixes based on
review", "Possible fix for #4945?"), touching 1 to 3 functions of non-test Python files that still
exist at HEAD under the same file name and qualified name. Old commits whose Python does not
parse with today's ``ast`` are skipped.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

HOUSEKEEPING = re.compile(
    r"^(merge|release|bump|version|v?\d+(\.\d+)+|prepare|update (history|changelog|authors|readme|docs?)|"
    r"changelog|history|typo|fix(ed)? typos?|pep ?8|flake8|lint|linting|whitespace|style|black|isort|format|"
    r"revert|wip|cleanup|clean up|minor|tweak|docs?\b|documentation|readme|authors|tests?\b|ci\b|"
    r"add (a )?test|more tests|py3|python 3|\d)",
    re.IGNORECASE,
)
# Subjects that only make sense next to a review thread or an issue ("fixes based on review",
# "Possible fix for #4945?"): no question can be asked from them alone.
CONTEXT_ONLY = re.compile(r"\b(review|as suggested|as discussed|suggestions?)\b|\?\s*$|^(possible |simplify )?fix(es)? for #\d+", re.IGNORECASE)
MAX_GOLD = 3
MIN_WORDS = 4


@dataclass
class Function:
    path: str
    qualname: str
    first: int
    last: int


@dataclass
class Commit:
    sha: str
    subject: str
    # path at that commit -> changed line numbers on the new side (and pure-deletion anchors)
    changed: dict[str, set[int]] = field(default_factory=dict)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, errors="replace"
    ).stdout


def library_file(path: str) -> bool:
    p = PurePosixPath(path)
    return p.suffix == ".py" and not any(part in ("tests", "test", "docs", "ext") for part in p.parts) and not p.name.startswith("test")


def functions_of(source: str, path: str) -> list[Function]:
    """Every function and method with its qualified name (Class.method) and line span, decorators included."""
    tree = ast.parse(source)
    out: list[Function] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    out.append(Function(path, name, first, child.end_lineno or child.lineno))
                walk(child, name + ".")

    walk(tree, "")
    return out


def innermost(functions: list[Function], line: int) -> Function | None:
    inside = [f for f in functions if f.first <= line <= f.last]
    return min(inside, key=lambda f: f.last - f.first) if inside else None


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def read_commits(repo: Path, skip: set[str]) -> Iterator[Commit]:
    """Non-merge commits, newest first, with the new-side lines each library Python file changed."""
    out = subprocess.Popen(
        ["git", "-C", str(repo), "log", "--no-merges", "--no-color", "--no-ext-diff", "-p", "--unified=0",
         "--format=%x1eC %H %s", "HEAD", "--", "*.py"],
        stdout=subprocess.PIPE, text=True, errors="replace",
    )  # fmt: skip
    assert out.stdout is not None
    cur: Commit | None = None
    path: str | None = None
    for line in out.stdout:
        if line.startswith("\x1eC "):
            if cur is not None and cur.sha not in skip:
                yield cur
            sha, _, subject = line[3:].rstrip("\n").partition(" ")
            cur, path = Commit(sha, subject.strip()), None
        elif cur is None:
            continue
        elif line.startswith("+++ "):
            name = line[4:].rstrip("\n")
            path = name[2:] if name.startswith("b/") and library_file(name[2:]) else None
        elif path is not None and (m := _HUNK.match(line)):
            start, count = int(m.group(1)), int(m.group(2) or "1")
            lines = cur.changed.setdefault(path, set())
            # count 0: a pure deletion after line `start`; anchor it on the next line
            lines.update(range(start, start + count) if count else (start + 1,))
    out.wait()
    if cur is not None and cur.sha not in skip:
        yield cur


def clean_subject(subject: str) -> str:
    s = re.sub(r"\s*\((?:#|gh-)\d+\)\s*$", "", subject)  # "(#1234)" PR suffix
    s = re.sub(r"^\[[^\]]*\]\s*", "", s)  # "[docs] ..."
    return s.strip().rstrip(".")


def head_functions(repo: Path, head: str) -> dict[tuple[str, str], list[Function]]:
    """(file name, qualified name) -> functions with that name at HEAD (library files only)."""
    index: dict[tuple[str, str], list[Function]] = {}
    for path in git(repo, "ls-tree", "-r", "--name-only", head).splitlines():
        if not library_file(path):
            continue
        try:
            funcs = functions_of(git(repo, "show", f"{head}:{path}"), path)
        except SyntaxError:
            continue
        for f in funcs:
            index.setdefault((PurePosixPath(path).name, f.qualname), []).append(f)
    return index


def touched_functions(repo: Path, commit: Commit) -> list[tuple[str, str]] | None:
    """(file name, qualified name) of each function the commit changed.

    None when the gold would be incomplete: a file does not parse, or the commit changed code
    outside any function (class attributes, module constants); imports, comments and blank
    lines outside functions are ignored.
    """
    names: list[tuple[str, str]] = []
    for path, lines in commit.changed.items():
        try:
            text = git(repo, "show", f"{commit.sha}:{path}")
            funcs = functions_of(text, path)
        except (SyntaxError, subprocess.CalledProcessError, ValueError):
            return None
        rows = text.splitlines()
        for line in sorted(lines):
            f = innermost(funcs, line)
            if f is None:
                stripped = rows[line - 1].strip() if 0 < line <= len(rows) else ""
                if stripped and not stripped.startswith(("import ", "from ", "#")):
                    return None
                continue
            if (PurePosixPath(path).name, f.qualname) not in names:
                names.append((PurePosixPath(path).name, f.qualname))
    return names


def make_questions(repo: Path, skip_newest: int, limit: int, repo_name: str | None) -> tuple[list[dict[str, object]], str]:
    head = git(repo, "rev-parse", "HEAD").strip()
    skip = set(git(repo, "log", f"--max-count={skip_newest}", "--format=%H", head).split()) if skip_newest else set()
    at_head = head_functions(repo, head)
    questions: list[dict[str, object]] = []
    seen: set[str] = set()
    for commit in read_commits(repo, skip):
        subject = clean_subject(commit.subject)
        key = subject.lower()
        if len(subject.split()) < MIN_WORDS or HOUSEKEEPING.match(subject) or CONTEXT_ONLY.search(subject):
            continue
        if key in seen or not commit.changed:
            continue
        names = touched_functions(repo, commit)
        if not names or len(names) > MAX_GOLD:
            continue
        gold: list[dict[str, object]] = []
        for name in names:
            found = at_head.get(name, [])
            if len(found) != 1:  # gone, or ambiguous by file name
                gold = []
                break
            f = found[0]
            item: dict[str, object] = {"path": f.path, "lines": [f.first, f.last]}
            if repo_name:
                item["repo"] = repo_name
            gold.append(item)
        if not gold:
            continue
        seen.add(key)
        questions.append(
            {"id": f"req-{commit.sha[:10]}", "kind": "code", "category": "code.commit-subject", "question": subject, "gold": gold}
        )
        if len(questions) >= limit:
            break
    return questions, head


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("repo", type=Path, help="a local clone (its HEAD is what gets ingested)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--skip-newest", type=int, default=300, help="the ingest.max_commits of the ingest this set is scored against")
    p.add_argument("--limit", type=int, default=150, help="at most this many questions, newest commits first")
    p.add_argument("--repo-name", default=None, help="add this repo name to gold items (the ingested folder's name)")
    args = p.parse_args(argv)
    questions, head = make_questions(args.repo, args.skip_newest, args.limit, args.repo_name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    print(f"{len(questions)} questions from {args.repo} at {head} (skipping the newest {args.skip_newest} commits) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
