"""Plain-text transcript parsing and chunking, 100 KB to 50 MB: this code against a baseline commit.

    .venv/bin/python bench/bench_transcript_parse.py --baseline 9cc6734 --out /tmp/bench_transcript.md

Two shapes of .txt transcript with no timestamps and no blank lines (one paragraph, as a careless
export gives): `wrapped`, sentences of 5-25 words one per line; `run-on`, words with no sentence end
at all. Each size is timed for parse_transcript + chunk_segments (medians of --repeat runs up to
5 MB, one run above), and for the whole TranscriptReader (decode, parse, chunk, the source draft)
with ingest.max_transcript_bytes raised past the file. The baseline runs the two modules as they were
at --baseline, in a child process killed after --timeout seconds; sizes after its first timeout are
not tried. Prints a Markdown table with the load average and date.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from machine import cpu_name  # bench/machine.py (scripts run from bench/ on sys.path)

REPO = Path(__file__).resolve().parent.parent
SIZES = [100_000, 300_000, 1_000_000, 5_000_000, 20_000_000, 50_000_000]
WORDS = ("the scheduler retries a failed job three times with exponential backoff while we study gradient "
         "descent and reciprocal rank fusion on the loss surface of our course project").split()


def make_text(size: int, shape: str, seed: int = 0) -> str:
    rng = random.Random(seed)
    out: list[str] = []
    n = 0
    while n < size:
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25)))
        line = words.capitalize() + ".\n" if shape == "wrapped" else words + "\n"
        out.append(line)
        n += len(line)
    return "".join(out)


# The child that times one size; it imports the modules from the folder given (this tree or the baseline's).
CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from transcript_formats import parse_transcript
from transcript_chunks import chunk_segments
text = open(sys.argv[2], encoding="utf-8").read()
t = time.perf_counter()
parsed = parse_transcript(text, ".txt")
chunks = chunk_segments(parsed.segments, min_s=45.0, max_s=90.0)
print(time.perf_counter() - t, len(chunks))
"""


def module_dir(ref: str | None) -> Path:
    """`transcript_formats` and `transcript_chunks` as top-level modules: for this tree, two lines that import
    from lorebase.ingest.transcripts; for `ref`, the two files as they were there (before ingest/ had folders)."""
    out = Path(tempfile.mkdtemp(prefix="bench-transcript-mods-"))
    if ref is None:
        (out / "transcript_formats.py").write_text("from lorebase.ingest.transcripts.formats import parse_transcript\n")
        (out / "transcript_chunks.py").write_text("from lorebase.ingest.transcripts.chunks import chunk_segments\n")
        return out
    for name in ("transcript_formats", "transcript_chunks"):
        path = f"lorebase/ingest/{name}.py"
        src = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:{path}"], capture_output=True, text=True, check=True).stdout
        (out / f"{name}.py").write_text(src.replace("from lorebase.ingest.transcript_formats import", "from transcript_formats import"))
    return out


def time_child(mods: Path, file: Path, timeout: float) -> tuple[float | None, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(mods), str(file)], capture_output=True, text=True,
                           timeout=timeout, check=True, env=env)
    except subprocess.TimeoutExpired:
        return None, 0
    seconds, chunks = r.stdout.split()
    return float(seconds), int(chunks)


def time_reader(file: Path, home: Path) -> float:
    from lorebase.ingest.records import ReadContext, Upsert
    from lorebase.ingest.transcripts.reader import TranscriptReader
    from lorebase.settings import load_settings

    settings = load_settings(home=home, ingest={"max_transcript_bytes": file.stat().st_size + 1})
    t = time.perf_counter()
    events = list(TranscriptReader([file], settings, progress=False).read(ReadContext(lambda n: None, lambda k: None)))
    seconds = time.perf_counter() - t
    assert isinstance(events[0], Upsert), events
    return seconds


def fmt(s: float | None) -> str:
    return "—" if s is None else (f"{s:.2f} s" if s < 100 else f"{s:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="git ref of the code to compare with (e.g. the commit before the fix)")
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    ap.add_argument("--shapes", nargs="*", default=["wrapped", "run-on"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds the baseline may take per size")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-transcript-"))
    here = module_dir(None)
    base = module_dir(args.baseline) if args.baseline else None
    load_before = os.getloadavg()
    rows = []
    for shape in args.shapes:
        base_alive = base is not None
        for size in args.sizes:
            file = work / f"{shape}-{size}.txt"
            file.write_text(make_text(size, shape), encoding="utf-8")
            runs = args.repeat if size <= 5_000_000 else 1
            times = [time_child(here, file, 3600) for _ in range(runs)]
            now = statistics.median(t for t, _ in times if t is not None)
            chunks = times[0][1]
            reader = time_reader(file, work / "home")
            if base is None:
                old_s, ratio = "—", "—"
            elif not base_alive:
                old_s, ratio = "not tried (timed out on a smaller file)", "—"
            else:
                old, _ = time_child(base, file, args.timeout)
                base_alive = old is not None
                old_s = fmt(old) if old is not None else f"> {args.timeout:.0f} s (killed)"
                ratio = f"{old / now:.0f}x" if old is not None else f"> {args.timeout / now:.0f}x"
            rows.append((shape, size, now, runs, chunks, reader, old_s, ratio))
            print(rows[-1], flush=True)
            file.unlink()
    load_after = os.getloadavg()
    lines = [
        f"Transcript parse + chunk (plain .txt, no times), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpu_name()}, "
        f"load average {load_before[0]:.2f} before / {load_after[0]:.2f} after; baseline {args.baseline or 'none'}",
        "",
        "| shape | size | parse + chunk (median of n) | chunks | whole reader | baseline parse + chunk | baseline / now |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, size, now, runs, chunks, reader, old_s, ratio in rows:
        lines.append(f"| {shape} | {size / 1e6:g} MB | {fmt(now)} (n={runs}) | {chunks} | {fmt(reader)} | {old_s} | {ratio} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
