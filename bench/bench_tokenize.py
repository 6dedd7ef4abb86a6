"""What writing "C++" as ``cpp`` costs BM25's tokenizer (2026-12-07).

``lorebase/index/code_tokens.py`` rewrites "C++", "C#" and "F#" before it splits a text into
words, and most code chunks hold a ``#`` (a comment), so the rewrite's scan runs on most of them.
This tokenizes every chunk of a data home as the BM25 build does (``indexed_text``), in turn with
the rewrite and with its scan skipped (the same function, the pattern swapped for one that returns
the text as it is), and reports the median time of each side.

    .venv/bin/python bench/bench_tokenize.py [--home home] [--rounds 3]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class _Unchanged:
    """Stands in for the rewrite's pattern: hands the text back without scanning it."""

    @staticmethod
    def sub(_repl: Any, text: str) -> str:
        return text


def main() -> int:
    from bench.home_chunks import home_arguments, home_chunks
    from bench.machine import run_header
    from lorebase.index import code_tokens
    from lorebase.index.texts import indexed_text

    args = home_arguments(__doc__.split("\n\n")[0])
    settings, rows = home_chunks(args.evaldata, args.home)
    texts = [indexed_text(r[2], r[1]) for r in rows]

    shipped = code_tokens._MARKED_NAMES
    sides: dict[str, Any] = {"with the rewrite": shipped, "rewrite skipped": _Unchanged()}
    times: dict[str, list[float]] = {name: [] for name in sides}
    tokens: dict[str, int] = {}
    try:
        for _ in range(args.rounds):  # the two sides in turn, so load hits both alike
            for name, pattern in sides.items():
                code_tokens._MARKED_NAMES = pattern
                t = time.perf_counter()
                tokens[name] = sum(len(code_tokens.tokenize(x, settings.index.bm25_stemmer)) for x in texts)
                times[name].append(time.perf_counter() - t)
    finally:
        code_tokens._MARKED_NAMES = shipped
    report = {**run_header(), "home": args.home, "chunks": len(texts), "rounds": args.rounds,
              "with_marks": sum(1 for x in texts if "+" in x or "#" in x),
              "sides": {name: {"tokens": tokens[name], "median_s": statistics.median(ts)} for name, ts in times.items()}}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
