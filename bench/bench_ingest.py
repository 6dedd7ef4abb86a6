"""Ingest throughput: full ingest (reading, chunking, storing and embedding) and an unchanged re-ingest.

    .venv/bin/python bench/bench_ingest.py . /path/to/a/larger/repo --out /tmp/bench_ingest.md

Each repository gets a fresh data home, so runs do not share caches. Targets (issue: ingest): a
20k-line repository with 2k commits fully ingested in under 3 minutes; an unchanged re-ingest in
under 10 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)
from sqlalchemy import func, select


def repo_size(path: Path) -> tuple[int, int]:
    """(lines in tracked text files, commits)."""
    files = subprocess.run(["git", "-C", str(path), "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    lines = 0
    for f in files:
        p = path / f.decode("utf-8", "replace")
        if f and p.is_file() and not p.is_symlink():
            try:
                lines += p.read_bytes().count(b"\n")
            except OSError:
                pass
    commits = int(subprocess.run(["git", "-C", str(path), "rev-list", "--count", "HEAD"], capture_output=True, text=True,
                                 check=True).stdout)
    return lines, commits


def bench(repo: Path) -> dict[str, object]:
    from lorebase.services import Services
    from lorebase.settings import load_settings
    from lorebase.store.models import Chunk, Source

    home = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    svc = Services.build(load_settings(home=home))
    try:
        t0 = time.perf_counter()
        first = svc.ingest.ingest([str(repo)])
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = svc.ingest.ingest([str(repo)])
        unchanged_s = time.perf_counter() - t0
        with svc.store.session() as s:
            files = s.scalar(select(func.count(Source.id)).where(Source.kind.in_(("code", "doc")))) or 0
            commits = s.scalar(select(func.count(Source.id)).where(Source.kind == "commit")) or 0
            chunks = s.scalar(select(func.count(Chunk.id))) or 0
    finally:
        svc.store.close()
    lines, all_commits = repo_size(repo)
    assert first.failed == 0, first.errors
    assert again.added == again.updated == again.removed == 0, "an unchanged re-ingest changed something"
    return {"repo": repo.resolve().name, "lines": lines, "commits_in_repo": all_commits, "files": files, "commits": commits,
            "chunks": chunks, "full_s": full_s, "files_per_s": files / full_s, "chunks_per_s": chunks / full_s,
            "unchanged_s": unchanged_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repos", nargs="+", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    load0 = os.getloadavg()
    rows = [bench(r) for r in args.repos]
    cpu = cpu_name()
    out = [
        "## Ingest throughput",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f}.",
        "Full ingest = read, chunk, store and embed (all-MiniLM-L6-v2) everything; unchanged = the same ingest again.",
        "",
        "| repo | lines | commits (ingested / in repo) | files | chunks | full ingest s | files/s | chunks/s | unchanged re-ingest s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(f"| {r['repo']} | {r['lines']:,} | {r['commits']:,} / {r['commits_in_repo']:,} | {r['files']:,} | "
                   f"{r['chunks']:,} | {r['full_s']:.1f} | {r['files_per_s']:.1f} | {r['chunks_per_s']:.1f} | "
                   f"{r['unchanged_s']:.2f} |")
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
